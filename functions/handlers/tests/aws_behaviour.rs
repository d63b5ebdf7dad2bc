//! AWS behaviours moto does not show, given to the functions through the fault proxy's rules
//! (testbed::aws_rules): each test names the difference it covers (DESIGN.md section 10).

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::Stack;
use testbed::Bed;
use testbed::aws_rules::{DescribeLoadBalancersLimit, DrainingTargets, ElbRule};
use testbed::fault_proxy::{FaultPlan, FaultProxy};
use testbed::kube_fixtures::{PortSpec, endpoint_slice, opted_in_service};

/// A proxy in front of the bed with `rules` and no random faults, and SDK configuration
/// through it signing as `stack`'s functions.
async fn proxy(stack: &Stack, rules: Vec<Arc<dyn ElbRule>>) -> (FaultProxy, aws_config::SdkConfig) {
    let bed = Bed::get();
    let proxy = FaultProxy::start_with(bed.aws_endpoint(), FaultPlan::none(), rules).await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    (proxy, sdk)
}

async fn room(stack: &Stack, name: &str, ready: bool) {
    let ns = &stack.namespace;
    stack
        .put_slice(&endpoint_slice(
            ns,
            &format!("{name}-a"),
            name,
            &[("game", 8000, "TCP")],
            &[("10.3.0.1", ready)],
        ))
        .await;
}

#[tokio::test]
async fn a_pod_back_within_the_deregistration_delay_is_registered_again() {
    // GIVEN AWS's draining (moto drops a deregistered target at once; AWS lists it as
    // `draining` for the deregistration delay) and an allocated Service with one ready pod
    let draining = Arc::new(DrainingTargets::default());
    let stack = Stack::new("drain", 1, "30000-30099", 50).await;
    let (_proxy, sdk) = proxy(&stack, vec![draining.clone()]).await;
    let stack = stack.with_function_sdk(&sdk);
    stack
        .create_service(&opted_in_service(
            &stack.namespace,
            "room",
            &[PortSpec::tcp("game", 7777, 8000)],
        ))
        .await;
    room(&stack, "room", true).await;
    stack.changed("room").await.expect("allocates");
    let (_, _, tg, _) = stack.listeners().await.pop().expect("a listener");
    assert_eq!(stack.targets(&tg).await.len(), 1);

    // WHEN the pod goes NotReady and is back within the deregistration delay
    room(&stack, "room", false).await;
    stack.endpoints_changed("room").await.expect("deregisters");
    assert!(stack.targets(&tg).await.is_empty(), "deregistered");
    room(&stack, "room", true).await;
    stack.endpoints_changed("room").await.expect("registers");

    // THEN it is registered again, though ELBv2 still listed it (as draining)
    assert!(
        draining.reported.load(Ordering::Relaxed) > 0,
        "draining was shown"
    );
    assert_eq!(
        stack.targets(&tg).await.into_iter().collect::<Vec<_>>(),
        ["10.3.0.1:8000"]
    );
}

#[tokio::test]
async fn a_pool_of_more_than_twenty_nlbs_allocates() {
    // GIVEN a pool of 21 NLBs and AWS's limit of 20 ARNs per DescribeLoadBalancers (moto has
    // none)
    let limit = Arc::new(DescribeLoadBalancersLimit::default());
    let stack = Stack::new("many", 21, "30000-30099", 50).await;
    let (_proxy, sdk) = proxy(&stack, vec![limit.clone()]).await;
    let stack = stack.with_function_sdk(&sdk);
    stack
        .create_service(&opted_in_service(
            &stack.namespace,
            "room",
            &[PortSpec::tcp("game", 7777, 8000)],
        ))
        .await;
    room(&stack, "room", true).await;

    // WHEN the Service is allocated
    stack.changed("room").await.expect("allocates");

    // THEN it has its listener and address, and no call asked for more than 20 NLBs
    let ann = stack.annotations("room").await;
    assert_eq!(
        ann.get(nlb_port_pool::annotations::STATUS)
            .map(String::as_str),
        Some("Allocated")
    );
    assert_eq!(stack.listeners().await.len(), 1);
    assert_eq!(limit.refused.load(Ordering::Relaxed), 0);
}
