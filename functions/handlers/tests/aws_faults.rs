//! AWS misbehaving: throttling, 5xx and timeouts injected into a share of the DynamoDB and
//! ELBv2 calls (a fault proxy in front of moto). The SDK retries with backoff, failed
//! deliveries are delivered again (as EventBridge does), and the final state is correct.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::Stack;
use futures::StreamExt;
use nlb_port_pool::contract::event::DetailType;
use testbed::fault_proxy::FaultPlan;
use testbed::kube_fixtures::{PortSpec, endpoint_slice, opted_in_service};

const SERVICES: usize = 12;

/// Delivers until the handler succeeds, as EventBridge's retries would.
async fn deliver(stack: &Stack, dt: DetailType, name: &str, uid: &str) -> usize {
    for attempt in 0..20 {
        let event = stack.event(dt, name, uid, dt == DetailType::ServiceDeleted);
        let result = stack.handle(event).await.map(|_| ());
        match result {
            Ok(()) => return attempt,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("{name}: {dt} kept failing under injected faults");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_5xx_and_timeouts_are_retried_to_the_right_state() {
    // GIVEN the functions' AWS calls going through a proxy that fails 5% with throttling,
    // 5% with 503 and holds 3% past the client's 1 s attempt timeout
    let (stack, proxy) = Stack::new("awsfault", 2, "30000-30999", 50)
        .await
        .with_faults(FaultPlan {
            throttle: 0.05,
            server_error: 0.05,
            timeout: 0.03,
            hold: Duration::from_secs(2),
        })
        .await;
    let ns = stack.namespace.clone();
    let names: Vec<String> = (0..SERVICES).map(|i| format!("room-{i}")).collect();
    for n in &names {
        stack
            .create_service(&opted_in_service(
                &ns,
                n,
                &[PortSpec::udp("game", 7777, 7777)],
            ))
            .await;
        stack
            .put_slice(&endpoint_slice(
                &ns,
                &format!("{n}-a"),
                n,
                &[("game", 7777, "UDP")],
                &[("10.2.0.1", true)],
            ))
            .await;
    }
    let mut uids = Vec::new();
    for n in &names {
        uids.push(stack.uid(n).await);
    }
    let started = Instant::now();

    // WHEN every Service is allocated, its endpoints change, and it is deleted
    let redeliveries: usize = futures::stream::iter(names.iter().zip(&uids))
        .map(|(n, uid)| deliver(&stack, DetailType::ServiceChanged, n, uid))
        .buffer_unordered(8)
        .fold(0, |a, b| async move { a + b })
        .await;
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "after allocation: {breaches:#?}");
    for n in &names {
        stack
            .put_slice(&endpoint_slice(
                &ns,
                &format!("{n}-a"),
                n,
                &[("game", 7777, "UDP")],
                &[("10.2.0.2", true), ("10.2.0.3", true)],
            ))
            .await;
    }
    for (n, uid) in names.iter().zip(&uids) {
        deliver(&stack, DetailType::EndpointsChanged, n, uid).await;
    }
    for (_, _, tg, _) in stack.listeners().await {
        assert_eq!(
            stack.targets(&tg).await.len(),
            2,
            "targets followed the endpoints"
        );
    }
    for n in &names {
        stack.delete_service(n).await;
    }
    for (n, uid) in names.iter().zip(&uids) {
        deliver(&stack, DetailType::ServiceDeleted, n, uid).await;
    }

    // THEN nothing is left, and faults really were injected
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "after release: {breaches:#?}");
    let c = &proxy.counts;
    let (throttled, errors, timeouts, forwarded) = (
        c.throttled.load(Ordering::Relaxed),
        c.server_errors.load(Ordering::Relaxed),
        c.timeouts.load(Ordering::Relaxed),
        c.forwarded.load(Ordering::Relaxed),
    );
    eprintln!(
        "faults: {throttled} throttled, {errors} 5xx, {timeouts} timeouts over {forwarded} forwarded calls; \
         {redeliveries} allocation redeliveries; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        throttled > 0 && errors > 0 && timeouts > 0,
        "every fault class was injected"
    );
}
