//! Two replicas: the Lease holder forwards, the standby does not, and takes over when the
//! holder dies without a word.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, unique_name};

use crate::support::{self, DEPLOY_NAMESPACE, Forwarder, Inbox, Options};

const ARRIVE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn one_replica_forwards_and_the_standby_takes_over_when_it_dies() {
    // GIVEN two replicas on one Lease (3 s)
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("fwd-ha");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("fwd-bus");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    let dir = support::test_dir(&ns);
    let opts = Options::new(&bus, &ns);
    let leader = Forwarder::start(&admin, &dir, &opts).await;
    leader.wait_leading(ARRIVE).await;
    let standby = Forwarder::start(
        &admin,
        &dir,
        &Options {
            identity: unique_name("fwd"),
            ..opts.clone()
        },
    )
    .await;
    // The standby is ready (nothing to sync) and does not lead.
    standby.wait_ready(ARRIVE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        standby.metric("forwarder_leader").await,
        Some(0.0),
        "{}",
        standby.log_tail()
    );
    assert_eq!(leader.metric("forwarder_leader").await, Some(1.0));

    // WHEN an opted-in Service is created
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "first", &ports),
    )
    .await;
    // THEN exactly one event arrives: only the leader forwards
    inbox.wait_for("Service Changed", "first", 1, ARRIVE).await;
    inbox.collect(Duration::from_secs(2)).await;
    assert_eq!(
        inbox.of("Service Changed", "first").len(),
        1,
        "{:?}",
        inbox.summary()
    );
    let changed = "forwarder_events_sent_total{detail_type=\"Service Changed\"}";
    assert_eq!(standby.metric(changed).await, Some(0.0));

    // WHEN the leader dies (SIGKILL: no release) and a Service is created meanwhile
    let leader_identity = leader.identity.clone();
    leader.kill().await;
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "second", &ports),
    )
    .await;

    // THEN the standby takes over once the Lease expires, and its resync sends what the
    // dead leader never saw
    standby.wait_leading(ARRIVE).await;
    inbox.wait_for("Service Changed", "second", 1, ARRIVE).await;
    inbox.wait_for("Service Changed", "first", 2, ARRIVE).await;
    let lease = Api::<Lease>::namespaced(admin.clone(), DEPLOY_NAMESPACE)
        .get(&opts.lease)
        .await
        .expect("the Lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(
        spec.holder_identity.as_deref(),
        Some(standby.identity.as_str())
    );
    assert_ne!(
        spec.holder_identity.as_deref(),
        Some(leader_identity.as_str())
    );
    assert_eq!(spec.lease_transitions, Some(1));

    // AND it forwards new changes from now on
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "third", &ports),
    )
    .await;
    inbox.wait_for("Service Changed", "third", 1, ARRIVE).await;
    standby.terminate(Duration::from_secs(25)).await;
}
