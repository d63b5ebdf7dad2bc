//! A bus that refuses the events (it does not exist yet): they are retried, not lost.

use std::time::Duration;

use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, unique_name};

use crate::support::{self, Forwarder, Inbox, Options};

#[tokio::test]
async fn events_for_a_missing_bus_are_retried_until_it_exists() {
    // GIVEN a forwarder sending to a bus that does not exist
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    let sdk = bed.sdk_config().await;
    let ns = unique_name("fwd-retry");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let bus = unique_name("fwd-bus");
    let mut opts = Options::new(&bus, &ns);
    // Long enough that pausing the process below does not cost it the Lease.
    opts.extra.extend(["--lease-duration".into(), "60s".into()]);
    let fwd = Forwarder::start(&admin, &support::test_dir(&ns), &opts).await;
    fwd.wait_leading(Duration::from_secs(15)).await;

    // WHEN an opted-in Service is created
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    kube_fixtures::create(
        &admin,
        &kube_fixtures::without_selector(kube_fixtures::opted_in_service(&ns, "room", &ports)),
    )
    .await;

    // THEN PutEvents is refused and the event is retried, not dropped
    let wait = Duration::from_secs(15);
    fwd.wait_metric("forwarder_events_retried_total", wait, |v| v >= 2.0)
        .await;
    assert!(fwd.metric("forwarder_events_failed_total").await >= Some(2.0));
    assert_eq!(fwd.metric("forwarder_queue_depth").await, Some(1.0));

    // WHEN the bus and a queue behind it are created (the forwarder is paused meanwhile, so
    // its next retry cannot reach the bus before the rule to the queue exists)
    fwd.signal("STOP");
    support::create_bus(&sdk, &bus).await;
    let mut inbox = Inbox::new(&sdk, &bus, &ns).await;
    fwd.signal("CONT");

    // THEN the event arrives, exactly once, and nothing was dropped
    inbox
        .wait_for("Service Changed", "room", 1, Duration::from_secs(20))
        .await;
    inbox.collect(Duration::from_secs(2)).await;
    assert_eq!(inbox.events.len(), 1, "{:?}", inbox.summary());
    assert_eq!(
        fwd.metric("forwarder_events_dropped_total").await,
        Some(0.0)
    );
    fwd.wait_metric("forwarder_queue_depth", wait, |v| v == 0.0)
        .await;
    let sent = "forwarder_events_sent_total{detail_type=\"Service Changed\"}";
    assert_eq!(fwd.metric(sent).await, Some(1.0));
}
