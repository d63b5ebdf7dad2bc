//! Nothing that happens while the forwarder is down is lost: its first list re-sends it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use nlb_port_pool::contract::annotations::{FINALIZER, POOL};
use serde_json::json;
use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, unique_name};

use crate::support::{self, DEPLOY_NAMESPACE, Forwarder, Inbox, Options};

const ARRIVE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_restarted_forwarder_resends_what_changed_while_it_was_down() {
    // GIVEN a forwarder that announced two opted-in Services, one of them allocated
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("fwd-resync");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("fwd-bus");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    let dir = support::test_dir(&ns);
    let opts = Options::new(&bus, &ns);
    let first = Forwarder::start(&admin, &dir, &opts).await;
    first.wait_leading(ARRIVE).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    for name in ["kept", "doomed"] {
        kube_fixtures::create(
            &admin,
            &kube_fixtures::without_selector(kube_fixtures::opted_in_service(&ns, name, &ports)),
        )
        .await;
        inbox.wait_for("Service Changed", name, 1, ARRIVE).await;
    }
    support::patch_service(
        &admin,
        &ns,
        "doomed",
        json!({"metadata": {"finalizers": [FINALIZER]}}),
    )
    .await;

    // WHEN it stops on SIGTERM
    let status = first.terminate(Duration::from_secs(25)).await;
    // THEN it exits cleanly and gives the Lease up
    assert!(status.success(), "{status:?}");
    let lease = Api::<Lease>::namespaced(admin.clone(), DEPLOY_NAMESPACE)
        .get(&opts.lease)
        .await
        .expect("the Lease");
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert!(
        holder.as_deref().is_none_or(str::is_empty),
        "still held by {holder:?}"
    );

    // WHEN, while nothing watches, Services change, get deleted and get created
    let kept = support::patch_service(
        &admin,
        &ns,
        "kept",
        json!({"metadata": {"annotations": {POOL: "blue"}}}),
    )
    .await;
    support::delete_service(&admin, &ns, "doomed").await;
    let born = kube_fixtures::create(
        &admin,
        &kube_fixtures::without_selector(kube_fixtures::opted_in_service(&ns, "born", &ports)),
    )
    .await;
    kube_fixtures::create(
        &admin,
        &kube_fixtures::without_selector(kube_fixtures::service(&ns, "plain", &[], &ports)),
    )
    .await;
    inbox.collect(Duration::from_secs(1)).await;
    assert_eq!(
        inbox.events.len(),
        2,
        "nothing is sent while down: {:?}",
        inbox.summary()
    );

    // AND a forwarder starts again (a new pod: another identity)
    let second = Forwarder::start(
        &admin,
        &dir,
        &Options {
            identity: unique_name("fwd"),
            ..opts.clone()
        },
    )
    .await;
    // THEN it takes the released Lease at once
    second.wait_leading(Duration::from_secs(5)).await;

    // AND its resync covers every change, with the current facts
    let event = inbox.wait_for("Service Changed", "kept", 2, ARRIVE).await;
    assert_eq!(
        event["detail"]["resourceVersion"],
        support::identity_of(&kept).1.as_str()
    );
    let event = inbox.wait_for("Service Deleted", "doomed", 1, ARRIVE).await;
    assert_eq!(event["detail"]["deleting"], true);
    let event = inbox.wait_for("Service Changed", "born", 1, ARRIVE).await;
    assert_eq!(
        event["detail"]["uid"],
        support::identity_of(&born).0.as_str()
    );
    inbox.collect(Duration::from_secs(2)).await;
    assert!(
        inbox.of("Service Changed", "plain").is_empty(),
        "{:?}",
        inbox.summary()
    );
    assert_eq!(inbox.events.len(), 5, "{:?}", inbox.summary());
    second.terminate(Duration::from_secs(25)).await;
}
