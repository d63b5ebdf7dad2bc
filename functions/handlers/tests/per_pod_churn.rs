//! Per-pod churn under AWS faults: a fleet scaled up and down at random, pods made again under
//! their names and flapping NotReady, each endpoint change delivered twice at once (EventBridge
//! delivers at least once), the functions' AWS calls throttled, failed with 503 and timed out
//! at random. Afterwards, with the faults gone, one more delivery converges, and the invariants
//! hold: no port held twice, nothing leaked, no pod advertising a port its own claim does not
//! hold, every pod of the fleet with its own listener, and no target but the IPs the fleet's
//! endpoints list (an IP a pod left behind is never still registered).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Stack;
use common::pods::pod_ip;
use futures::future::join;
use nlb_port_pool::contract::annotations::ADDRESS;
use testbed::fault_proxy::FaultPlan;
use testbed::rng::Rng;
use testbed::{Bed, pod_fixtures};

const ROUNDS: usize = 12;
const MOST_PODS: usize = 30;

/// Delivers Endpoints Changed until it succeeds (as EventBridge retries), at most 10 times.
async fn deliver(stack: &Stack) -> usize {
    for attempt in 0..10 {
        match stack.endpoints_changed("fleet").await {
            Ok(_) => return attempt,
            Err(e) => {
                eprintln!("delivery {attempt} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(100 * (attempt as u64 + 1))).await;
            }
        }
    }
    panic!("a delivery kept failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_churned_under_faults_converges_with_every_invariant() {
    // GIVEN the functions' AWS calls through a proxy failing 3% with throttling, 3% with 503,
    // holding 2% past the 1 s attempt timeout
    let (stack, proxy) = Stack::new("pod-churn", 1, "30000-30099", 50)
        .await
        .with_faults(FaultPlan {
            throttle: 0.03,
            server_error: 0.03,
            timeout: 0.02,
            hold: Duration::from_secs(2),
        })
        .await;
    let clean = stack.gate.sdk_config(Bed::get()).await;
    stack.create_per_pod_room("fleet", "0").await;
    let mut rng = Rng::from_env("POD_CHURN_SEED", 0x90d5_c4a1);
    eprintln!("seed {:#x} (POD_CHURN_SEED)", rng.seed());

    // WHEN the fleet churns
    let (mut retries, mut size) = (0, 0);
    for round in 0..ROUNDS {
        size = rng.below(MOST_PODS + 1);
        stack.scale_pods("fleet", size).await;
        if size > 0 && rng.below(2) == 0 {
            // A pod made again under its name, with another IP.
            let i = rng.below(size);
            let name = format!("fleet-{i}");
            pod_fixtures::delete_pod(&stack.admin, &stack.namespace, &name).await;
            let ip = format!("10.21.{round}.{i}");
            pod_fixtures::run_pod(
                &stack.admin,
                &stack.namespace,
                &name,
                "fleet",
                false,
                (&ip, true, true),
            )
            .await;
            let mut listed: Vec<(String, String, bool)> = (0..size)
                .map(|j| (format!("fleet-{j}"), pod_ip(j), true))
                .collect();
            listed[i].1 = ip;
            // And another one NotReady for a while.
            let flap = rng.below(size);
            listed[flap].2 = false;
            let refs: Vec<(&str, &str, bool)> = listed
                .iter()
                .map(|(n, ip, r)| (n.as_str(), ip.as_str(), *r))
                .collect();
            stack.put_pod_slice("fleet", &refs).await;
        }
        let (a, b) = join(deliver(&stack), deliver(&stack)).await;
        retries += a + b;
    }

    // THEN, the faults gone, one more delivery converges
    let stack = stack.with_function_sdk(&clean);
    stack.scale_pods("fleet", size).await;
    stack.endpoints_changed("fleet").await.expect("converges");
    eprintln!("{ROUNDS} rounds, {retries} deliveries retried, {size} pods at the end");
    let breaches = stack.invariant_breaches(&stack.namespaces, 50).await;
    assert!(breaches.is_empty(), "invariants broken: {breaches:#?}");
    let addresses: Vec<String> = stack
        .pods()
        .await
        .into_values()
        .filter_map(|p| p.metadata.annotations?.get(ADDRESS).cloned())
        .collect();
    assert_eq!(
        addresses.len(),
        size,
        "every pod of the fleet has an address"
    );
    let distinct: BTreeSet<&String> = addresses.iter().collect();
    assert_eq!(distinct.len(), size, "an address given twice");
    assert_eq!(stack.listeners().await.len(), size);
    let registered = stack.all_targets_of(&stack.uid("fleet").await).await;
    let listed: BTreeSet<String> = (0..size).map(|j| format!("{}:8000", pod_ip(j))).collect();
    assert_eq!(registered, listed, "a target that is no listed pod's IP");
    drop(proxy);
}
