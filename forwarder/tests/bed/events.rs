//! The events of the contract, end to end: Service and EndpointSlice writes in
//! kube-apiserver -> forwarder (as its ServiceAccount) -> EventBridge bus -> rule -> SQS.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use nlb_port_pool::contract::annotations::{ALLOCATED_PORT, AUTO_ASSIGN, FINALIZER, POOL, STATUS};
use serde_json::json;
use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, unique_name};

use crate::support::{self, Forwarder, Inbox, Options};

const ARRIVE: Duration = Duration::from_secs(15);
/// Long enough for anything the forwarder would send to reach the queue.
const QUIET: Duration = Duration::from_secs(3);

#[tokio::test]
async fn service_changes_that_matter_are_announced_and_others_are_not() {
    // GIVEN a forwarder watching all namespaces (as deployed), a bus and a queue
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("fwd-svc");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("fwd-bus");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    let dir = support::test_dir(&ns);
    let mut opts = Options::new(&bus, &ns);
    opts.namespaces.clear();
    let fwd = Forwarder::start(&admin, &dir, &opts).await;
    fwd.wait_leading(ARRIVE).await;

    // WHEN an opted-in, a plain, an opted-out and a mis-annotated Service are created
    let ports = [PortSpec::udp("game", 7777, 7777)];
    let room = kube_fixtures::create(
        &admin,
        &kube_fixtures::without_selector(kube_fixtures::opted_in_service(&ns, "room", &ports)),
    )
    .await;
    for (name, annotations) in [
        ("plain", vec![]),
        ("off", vec![(AUTO_ASSIGN, "false")]),
        ("typo", vec![(AUTO_ASSIGN, "yes")]),
    ] {
        kube_fixtures::create(
            &admin,
            &kube_fixtures::without_selector(kube_fixtures::service(
                &ns,
                name,
                &annotations,
                &ports,
            )),
        )
        .await;
    }

    // THEN the opted-in one is announced with the contract's detail
    let event = inbox.wait_for("Service Changed", "room", 1, ARRIVE).await;
    let (uid, rv) = support::identity_of(&room);
    assert_eq!(event["source"], "nlb-port-pool.forwarder");
    assert_eq!(
        event["detail"],
        json!({
            "version": 1, "cluster": "bed-cluster", "namespace": ns, "name": "room",
            "uid": uid, "resourceVersion": rv, "deleting": false,
            "observedAt": event["detail"]["observedAt"],
        })
    );
    let observed = event["detail"]["observedAt"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(observed).is_ok(),
        "{observed}"
    );
    nlb_port_pool::contract::event::ServiceEvent::from_value(&event)
        .expect("a valid contract event");
    // AND the mis-annotated one too: the function tells the user what is wrong
    inbox.wait_for("Service Changed", "typo", 1, ARRIVE).await;

    // WHEN an input annotation changes, then the ports
    support::patch_service(
        &admin,
        &ns,
        "room",
        json!({"metadata": {"annotations": {POOL: "blue"}}}),
    )
    .await;
    inbox.wait_for("Service Changed", "room", 2, ARRIVE).await;
    let ported = support::patch_service(
        &admin,
        &ns,
        "room",
        json!({"spec": {"ports": [{"name": "game", "port": 7778, "protocol": "UDP", "targetPort": 7777}]}}),
    )
    .await;
    // THEN each is announced, with the resourceVersion of the write
    let event = inbox.wait_for("Service Changed", "room", 3, ARRIVE).await;
    assert_eq!(
        event["detail"]["resourceVersion"],
        support::identity_of(&ported).1.as_str()
    );

    // WHEN the functions write their outputs and finalizer, another controller annotates,
    // and the status changes
    support::patch_service(
        &admin,
        &ns,
        "room",
        json!({"metadata": {"finalizers": [FINALIZER], "annotations": {STATUS: "Allocated", ALLOCATED_PORT: "30001"}}}),
    )
    .await;
    support::patch_service(
        &admin,
        &ns,
        "room",
        json!({"metadata": {"annotations": {"example.com/owner": "x"}}}),
    )
    .await;
    let status = json!({"status": {"conditions": [{"type": "Probe", "status": "True", "reason": "Test",
        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    Api::<Service>::namespaced(admin.clone(), &ns)
        .patch_status("room", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status patch");
    // AND the plain Services change and go
    support::patch_service(
        &admin,
        &ns,
        "plain",
        json!({"metadata": {"annotations": {"example.com/x": "1"}}}),
    )
    .await;
    support::delete_service(&admin, &ns, "plain").await;
    support::delete_service(&admin, &ns, "off").await;

    // THEN nothing more is sent: no event loop with the functions, nothing for plain Services
    inbox.collect(QUIET).await;
    assert_eq!(
        inbox.of("Service Changed", "room").len(),
        3,
        "{:?}",
        inbox.summary()
    );
    for name in ["plain", "off"] {
        assert!(
            !inbox.events.iter().any(|e| e["detail"]["name"] == name),
            "{name} produced {:?}",
            inbox.summary()
        );
    }
    assert_eq!(inbox.events.len(), 4, "{:?}", inbox.summary());
}

#[tokio::test]
async fn deletion_and_opt_out_of_a_held_service_are_announced_once() {
    // GIVEN a forwarder and an opted-in Service the functions allocated (finalizer)
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("fwd-del");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("fwd-bus");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    let fwd = Forwarder::start(&admin, &support::test_dir(&ns), &Options::new(&bus, &ns)).await;
    fwd.wait_leading(ARRIVE).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    for name in ["held", "leaving", "pending"] {
        kube_fixtures::create(&admin, &kube_fixtures::opted_in_service(&ns, name, &ports)).await;
    }
    for name in ["held", "leaving"] {
        support::patch_service(
            &admin,
            &ns,
            name,
            json!({"metadata": {"finalizers": [FINALIZER]}}),
        )
        .await;
        inbox.wait_for("Service Changed", name, 1, ARRIVE).await;
    }

    // WHEN "held" is deleted (the finalizer holds it)
    support::delete_service(&admin, &ns, "held").await;
    // THEN "Service Deleted" is sent with deleting=true
    let event = inbox.wait_for("Service Deleted", "held", 1, ARRIVE).await;
    assert_eq!(event["detail"]["deleting"], true);

    // WHEN the release removes the finalizer and the Service goes
    support::patch_service(
        &admin,
        &ns,
        "held",
        json!({"metadata": {"finalizers": null}}),
    )
    .await;

    // WHEN "leaving" opts out while holding the finalizer
    support::patch_service(
        &admin,
        &ns,
        "leaving",
        json!({"metadata": {"annotations": {AUTO_ASSIGN: null}}}),
    )
    .await;
    // THEN "Service Changed" is sent, so the function releases its port
    inbox
        .wait_for("Service Changed", "leaving", 2, ARRIVE)
        .await;
    // AND the release removing the finalizer sends nothing more
    support::patch_service(
        &admin,
        &ns,
        "leaving",
        json!({"metadata": {"finalizers": null}}),
    )
    .await;

    // WHEN "pending" (opted in, not allocated yet) is deleted
    support::delete_service(&admin, &ns, "pending").await;
    // THEN its disappearance is announced, so a half-done allocation is released
    inbox
        .wait_for("Service Deleted", "pending", 1, ARRIVE)
        .await;

    inbox.collect(QUIET).await;
    assert_eq!(
        inbox.of("Service Deleted", "held").len(),
        1,
        "{:?}",
        inbox.summary()
    );
    assert_eq!(
        inbox.of("Service Changed", "held").len(),
        1,
        "{:?}",
        inbox.summary()
    );
    assert_eq!(
        inbox.of("Service Changed", "leaving").len(),
        2,
        "{:?}",
        inbox.summary()
    );
    assert!(
        inbox.of("Service Deleted", "leaving").is_empty(),
        "{:?}",
        inbox.summary()
    );
}

#[tokio::test]
async fn endpoint_slice_changes_are_coalesced_per_opted_in_service() {
    // GIVEN a forwarder, an opted-in and a plain Service
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("fwd-eps");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("fwd-bus");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    let fwd = Forwarder::start(&admin, &support::test_dir(&ns), &Options::new(&bus, &ns)).await;
    fwd.wait_leading(ARRIVE).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    let room = kube_fixtures::create(
        &admin,
        &kube_fixtures::without_selector(kube_fixtures::opted_in_service(&ns, "room", &ports)),
    )
    .await;
    kube_fixtures::create(&admin, &kube_fixtures::service(&ns, "plain", &[], &ports)).await;
    inbox.wait_for("Service Changed", "room", 1, ARRIVE).await;

    // WHEN EndpointSlices appear for both
    let slice = |name: &str, svc: &str, ips: &[(&str, bool)]| {
        kube_fixtures::endpoint_slice(&ns, name, svc, &[("game", 7777, "TCP")], ips)
    };
    kube_fixtures::create(&admin, &slice("room-a", "room", &[("10.0.0.1", true)])).await;
    kube_fixtures::create(&admin, &slice("plain-a", "plain", &[("10.0.1.1", true)])).await;
    // THEN the opted-in Service's endpoints are announced, with its uid
    let event = inbox.wait_for("Endpoints Changed", "room", 1, ARRIVE).await;
    assert_eq!(
        event["detail"]["uid"],
        support::identity_of(&room).0.as_str()
    );

    // WHEN its slice changes three times in quick succession (a rollout)
    let slices: Api<EndpointSlice> = Api::namespaced(admin.clone(), &ns);
    for (i, ready) in [("10.0.0.2", true), ("10.0.0.3", false), ("10.0.0.4", true)] {
        let mut s = slices.get("room-a").await.expect("slice");
        s.endpoints = slice("room-a", "room", &[("10.0.0.1", true), (i, ready)]).endpoints;
        slices
            .replace("room-a", &PostParams::default(), &s)
            .await
            .expect("replace");
    }
    // THEN one event covers them
    inbox.wait_for("Endpoints Changed", "room", 2, ARRIVE).await;
    inbox.collect(QUIET).await;
    assert_eq!(
        inbox.of("Endpoints Changed", "room").len(),
        2,
        "{:?}",
        inbox.summary()
    );

    // WHEN a label-only change touches it (nothing target registration reads)
    let label = json!({"metadata": {"labels": {"example.com/x": "1"}}});
    slices
        .patch("room-a", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label");
    // AND then it is deleted
    inbox.collect(QUIET).await;
    assert_eq!(
        inbox.of("Endpoints Changed", "room").len(),
        2,
        "{:?}",
        inbox.summary()
    );
    slices
        .delete("room-a", &DeleteParams::default())
        .await
        .expect("delete slice");
    // THEN only the deletion is announced
    inbox.wait_for("Endpoints Changed", "room", 3, ARRIVE).await;

    // AND the plain Service's slice never produced anything
    inbox.collect(QUIET).await;
    assert!(
        inbox.of("Endpoints Changed", "plain").is_empty(),
        "{:?}",
        inbox.summary()
    );
    assert!(!inbox.events.iter().any(|e| e["detail"]["name"] == "plain"));
    assert_eq!(
        inbox.of("Endpoints Changed", "room").len(),
        3,
        "{:?}",
        inbox.summary()
    );
}
