//! The readiness gate's wake-up, end to end: a gated pod's containers turn ready while its
//! EndpointSlice stays as it was (Ready waits on the gate), and only the forwarder's pod watch
//! can tell the functions; the same for a pod's `network-disabled` annotation. Hand-made pods (testbed::pod_fixtures) are in no slice at all, so
//! every `Endpoints Changed` after the Services settled comes from the pod watch.

use std::time::Duration;

use testbed::kube_fixtures::{self, PortSpec};
use testbed::pod_fixtures;
use testbed::{Bed, unique_name};

use crate::support::{self, Forwarder, Inbox, Options};

const ARRIVE: Duration = Duration::from_secs(15);
/// Long enough for anything the forwarder would send to reach the queue.
const QUIET: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_gated_pod_whose_containers_turn_ready_wakes_its_service() {
    // GIVEN a forwarder, an opted-in Service (selector app=room) and a plain one (app=plain)
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("fwd-pods");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("fwd-bus");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    let fwd = Forwarder::start(&admin, &support::test_dir(&ns), &Options::new(&bus, &ns)).await;
    fwd.wait_leading(ARRIVE).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "room", &ports),
    )
    .await;
    kube_fixtures::create(&admin, &kube_fixtures::service(&ns, "plain", &[], &ports)).await;
    inbox.wait_for("Service Changed", "room", 1, ARRIVE).await;
    // An EndpointSlice controller, where one runs, writes the Services' (empty) slices: count
    // from what that sent.
    inbox.collect(QUIET).await;
    let before = inbox.of("Endpoints Changed", "room").len();

    // WHEN a gated pod of the room starts running, its containers not ready yet
    let not_ready = ("10.0.0.5", false, false);
    pod_fixtures::run_pod(&admin, &ns, "room-0", "room", true, not_ready).await;
    // THEN the room is woken (a new target candidate)
    inbox
        .wait_for("Endpoints Changed", "room", before + 1, ARRIVE)
        .await;
    inbox.collect(QUIET).await;

    // WHEN its containers turn ready, Ready staying False (the gate waits)
    pod_fixtures::set_status(&admin, &ns, "room-0", "10.0.0.5", true, false).await;
    // THEN the room is woken again: the functions register the pod and set the gate
    inbox
        .wait_for("Endpoints Changed", "room", before + 2, ARRIVE)
        .await;
    fwd.wait_metric("forwarder_gated_pods", ARRIVE, |v| v == 1.0)
        .await;

    // WHEN a pod without the gate, and a gated pod of the plain Service, run and turn ready
    let ready = ("10.0.0.6", true, true);
    pod_fixtures::run_pod(&admin, &ns, "room-x", "room", false, ready).await;
    let gated_ready = ("10.0.0.7", true, false);
    pod_fixtures::run_pod(&admin, &ns, "plain-0", "plain", true, gated_ready).await;
    // THEN nothing more is sent: a slice speaks for the first, nobody needs the second
    inbox.collect(QUIET).await;
    assert_eq!(
        inbox.of("Endpoints Changed", "room").len(),
        before + 2,
        "{:?}",
        inbox.summary()
    );
    assert!(
        !inbox.events.iter().any(|e| e["detail"]["name"] == "plain"),
        "{:?}",
        inbox.summary()
    );

    // WHEN the pod without the gate is network-disabled (its slice does not change)
    let disabled = nlb_port_pool::contract::annotations::NETWORK_DISABLED;
    pod_fixtures::annotate(&admin, &ns, "room-x", disabled, Some("true")).await;
    // THEN the room is woken: the functions take its target out
    inbox
        .wait_for("Endpoints Changed", "room", before + 3, ARRIVE)
        .await;
    // AND once more when the annotation goes (the target comes back)
    pod_fixtures::annotate(&admin, &ns, "room-x", disabled, None).await;
    inbox
        .wait_for("Endpoints Changed", "room", before + 4, ARRIVE)
        .await;

    // WHEN the gated pod is deleted
    pod_fixtures::delete_pod(&admin, &ns, "room-0").await;
    // THEN the room is woken to deregister it
    inbox
        .wait_for("Endpoints Changed", "room", before + 5, ARRIVE)
        .await;

    // The Cleanup removes Services only: leave no pod for later all-namespace forwarders.
    for pod in ["room-x", "plain-0"] {
        pod_fixtures::delete_pod(&admin, &ns, pod).await;
    }
}
