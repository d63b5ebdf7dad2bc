//! A run stopped at every step boundary of allocate and release (failpoints) is finished by
//! the next delivery of the same event, or by the sweep: no leak, no double port.

mod common;

use common::{Stack, schedule_event};
use nlb_port_pool::reconcile::failpoint;
use testbed::kube_fixtures::{PortSpec, endpoint_slice, opted_in_service};

/// How a stopped run is finished.
#[derive(Clone, Copy, Debug)]
enum Finisher {
    Redelivery,
    Sweep,
}

async fn sweep(stack: &Stack) {
    handlers::on_schedule(&stack.sweep, schedule_event())
        .await
        .expect("the sweep runs");
}

async fn opted_in_with_pods(stack: &Stack) -> String {
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[
                PortSpec::tcp("game", 7777, 7777),
                PortSpec::udp("voice", 9000, 9000),
            ],
        ))
        .await;
    stack
        .put_slice(&endpoint_slice(
            &ns,
            "room-a",
            "room",
            &[("game", 7777, "TCP"), ("voice", 9000, "UDP")],
            &[("10.1.0.1", true)],
        ))
        .await;
    stack.uid("room").await
}

async fn allocate_stopped_at(point: &'static str, finisher: Finisher) {
    // GIVEN an allocation stopped at `point`
    let stack = Stack::new("fault-a", 2, "30000-30099", 50).await;
    opted_in_with_pods(&stack).await;
    stack.arm(point);
    let err = stack.changed("room").await.expect_err("the run stops");
    assert!(err.to_string().contains(point), "{point}: {err}");
    stack.clear_failpoints();

    // WHEN it is finished by the next delivery or the sweep
    let started = std::time::Instant::now();
    match finisher {
        Finisher::Redelivery => {
            stack.changed("room").await.expect("redelivery");
        }
        Finisher::Sweep => sweep(&stack).await,
    }
    eprintln!(
        "converged: {point} by {finisher:?} in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // THEN the Service holds its two listeners, once each, and nothing else exists
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "{point} / {finisher:?}: {breaches:#?}");
    assert_eq!(stack.listeners().await.len(), 2, "{point} / {finisher:?}");
    assert_eq!(
        stack.annotations("room").await["nlb.port-manager/status"],
        "Allocated"
    );
}

async fn release_stopped_at(point: &'static str, finisher: Finisher) {
    // GIVEN an allocated Service, deleted, whose release stops at `point`
    let stack = Stack::new("fault-r", 2, "30000-30099", 50).await;
    let uid = opted_in_with_pods(&stack).await;
    stack.changed("room").await.expect("allocates");
    stack.delete_service("room").await;
    stack.arm(point);
    let err = stack
        .deleted("room", &uid)
        .await
        .expect_err("the run stops");
    assert!(err.to_string().contains(point), "{point}: {err}");
    stack.clear_failpoints();

    // WHEN it is finished
    let started = std::time::Instant::now();
    match finisher {
        Finisher::Redelivery => {
            stack.deleted("room", &uid).await.expect("redelivery");
        }
        Finisher::Sweep => sweep(&stack).await,
    }
    eprintln!(
        "converged: {point} by {finisher:?} in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // THEN the Service is gone and so is everything it held
    assert!(
        stack
            .services()
            .get_opt("room")
            .await
            .expect("get")
            .is_none(),
        "{point} / {finisher:?}"
    );
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "{point} / {finisher:?}: {breaches:#?}");
    assert!(stack.listeners().await.is_empty());
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

const ALLOCATE_POINTS: [&str; 4] = [
    failpoint::ENSURE_AFTER_CLAIM,
    failpoint::ENSURE_AFTER_LISTENERS,
    failpoint::ENSURE_AFTER_RECORD,
    failpoint::ENSURE_AFTER_OUTPUTS,
];

const RELEASE_POINTS: [&str; 4] = [
    failpoint::RELEASE_AFTER_LISTENERS,
    failpoint::RELEASE_AFTER_TARGET_GROUPS,
    failpoint::RELEASE_AFTER_CLAIMS,
    failpoint::RELEASE_AFTER_OUTPUTS,
];

#[tokio::test]
async fn allocate_stopped_anywhere_is_finished_by_redelivery() {
    for point in ALLOCATE_POINTS {
        allocate_stopped_at(point, Finisher::Redelivery).await;
    }
}

#[tokio::test]
async fn allocate_stopped_anywhere_is_finished_by_the_sweep() {
    for point in ALLOCATE_POINTS {
        allocate_stopped_at(point, Finisher::Sweep).await;
    }
}

#[tokio::test]
async fn release_stopped_anywhere_is_finished_by_redelivery() {
    for point in RELEASE_POINTS {
        release_stopped_at(point, Finisher::Redelivery).await;
    }
}

#[tokio::test]
async fn release_stopped_anywhere_is_finished_by_the_sweep() {
    for point in RELEASE_POINTS {
        release_stopped_at(point, Finisher::Sweep).await;
    }
}

#[tokio::test]
async fn a_service_deleted_while_its_allocation_stopped_after_claiming_is_released() {
    // GIVEN an allocation stopped after its claims and target groups were made, before their
    // ARNs were recorded on the claims; then the Service is deleted
    let stack = Stack::new("fault-d", 2, "30000-30099", 50).await;
    let uid = opted_in_with_pods(&stack).await;
    stack.arm(failpoint::ENSURE_AFTER_CLAIM);
    stack.changed("room").await.expect_err("the run stops");
    stack.clear_failpoints();
    assert_eq!(stack.target_groups_of(&uid).await.len(), 2);
    stack.delete_service("room").await;

    // WHEN the release function handles the deletion
    stack.deleted("room", &uid).await.expect("releases");

    // THEN it found the target groups by their names and deleted them with the claims, and
    // the Service is gone
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
    assert!(
        stack
            .services()
            .get_opt("room")
            .await
            .expect("get")
            .is_none()
    );
}

#[test]
fn every_failpoint_is_exercised() {
    let covered: Vec<&str> = ALLOCATE_POINTS
        .iter()
        .chain(RELEASE_POINTS.iter())
        .copied()
        .collect();
    assert_eq!(covered, failpoint::ALL);
}
