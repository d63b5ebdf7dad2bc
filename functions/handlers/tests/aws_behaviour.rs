//! AWS behaviours moto does not show, given to the functions through the fault proxy's rules
//! (testbed::aws_rules): each test names the difference it covers (DESIGN.md section 10). And
//! what AWS lets others do behind the system's back: foreign listeners, NLBs deleted out of
//! band or taken out of the pool.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::Stack;
use nlb_port_pool::contract::annotations::{ADDRESS, STATUS};
use testbed::Bed;
use testbed::aws_rules::{DescribeLoadBalancersLimit, DrainingTargets, ElbRule, FullNlbs};
use testbed::fault_proxy::{FaultPlan, FaultProxy};

/// A proxy in front of the bed with `rules` and no random faults, and SDK configuration
/// through it signing as `stack`'s functions.
async fn proxy(stack: &Stack, rules: Vec<Arc<dyn ElbRule>>) -> (FaultProxy, aws_config::SdkConfig) {
    let bed = Bed::get();
    let proxy = FaultProxy::start_with(bed.aws_endpoint(), FaultPlan::none(), rules).await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    (proxy, sdk)
}

#[tokio::test]
async fn a_pod_back_within_the_deregistration_delay_is_registered_again() {
    // GIVEN AWS's draining (moto drops a deregistered target at once; AWS lists it as
    // `draining` for the deregistration delay) and an allocated Service with one ready pod
    let draining = Arc::new(DrainingTargets::default());
    let stack = Stack::new("drain", 1, "30000-30099", 50).await;
    let (_proxy, sdk) = proxy(&stack, vec![draining.clone()]).await;
    let stack = stack.with_function_sdk(&sdk);
    stack.create_room("room").await;
    stack.room_pod("room", "10.3.0.1", true).await;
    stack.changed("room").await.expect("allocates");
    let (_, _, tg, _) = stack.listeners().await.pop().expect("a listener");
    assert_eq!(stack.targets(&tg).await.len(), 1);

    // WHEN the pod goes NotReady and is back within the deregistration delay
    stack.room_pod("room", "10.3.0.1", false).await;
    stack.endpoints_changed("room").await.expect("deregisters");
    assert!(stack.targets(&tg).await.is_empty(), "deregistered");
    stack.room_pod("room", "10.3.0.1", true).await;
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
    stack.create_room("room").await;
    stack.room_pod("room", "10.3.0.1", true).await;

    // WHEN the Service is allocated
    stack.changed("room").await.expect("allocates");

    // THEN it has its listener and address, and no call asked for more than 20 NLBs
    let ann = stack.annotations("room").await;
    assert_eq!(
        ann.get(nlb_port_pool::contract::annotations::STATUS)
            .map(String::as_str),
        Some("Allocated")
    );
    assert_eq!(stack.listeners().await.len(), 1);
    assert_eq!(limit.refused.load(Ordering::Relaxed), 0);
}

async fn opted_in(stack: &Stack, name: &str) {
    stack.create_room(name).await;
    stack.room_pod(name, "10.3.0.1", true).await;
}

/// The address of Service `name`'s one listener: (DNS name, port).
async fn address(stack: &Stack, name: &str) -> (String, u16) {
    let ann = stack.annotations(name).await;
    let address = ann
        .get(ADDRESS)
        .unwrap_or_else(|| panic!("{name} has no address: {ann:?}"));
    let (dns, port) = address.rsplit_once(':').expect("host:port");
    (dns.to_owned(), port.parse().expect("a port"))
}

async fn status(stack: &Stack, name: &str) -> Option<String> {
    stack.annotations(name).await.get(STATUS).cloned()
}

/// Deletes NLB `arn` as someone outside the system would (with its listeners).
async fn delete_nlb(stack: &Stack, arn: &str) {
    stack
        .elb
        .delete_load_balancer()
        .load_balancer_arn(arn)
        .send()
        .await
        .expect("deleting the NLB");
}

#[tokio::test]
async fn a_listener_refused_for_the_nlb_quota_moves_to_another_nlb() {
    // GIVEN AWS's listener quota (moto has none): NLB 0 of the pool is full, of listeners the
    // view does not show (so the choice still falls on it)
    let stack = Stack::new("toomany", 2, "30000-30099", 50).await;
    let full = Arc::new(FullNlbs::of(&[stack.nlbs[0].arn.as_str()]));
    let (_proxy, sdk) = proxy(&stack, vec![full.clone()]).await;
    let stack = stack.with_function_sdk(&sdk);

    // WHEN Services are allocated until one was placed on the full NLB (each choice is random
    // over the two NLBs, so that comes within a few)
    let mut refused_room = None;
    for i in 0..30 {
        let name = format!("room-{i}");
        opted_in(&stack, &name).await;
        stack.changed(&name).await.expect("allocates");
        if full.refused.load(Ordering::Relaxed) > 0 {
            refused_room = Some(name);
            break;
        }
    }

    // THEN its claim moved to the other NLB, a Warning Event says why, and the full NLB has
    // no listener of the system's
    let name = refused_room.expect("a choice fell on the full NLB");
    assert_eq!(address(&stack, &name).await.0, stack.nlbs[1].dns_name);
    assert_eq!(status(&stack, &name).await.as_deref(), Some("Allocated"));
    assert!(
        stack
            .event_reasons(&name)
            .await
            .iter()
            .any(|r| r == "ListenerRefused"),
        "{:?}",
        stack.event_reasons(&name).await
    );
    let on_full = stack
        .elb
        .describe_listeners()
        .load_balancer_arn(&stack.nlbs[0].arn)
        .send()
        .await
        .expect("listeners");
    assert!(on_full.listeners().is_empty());
}

#[tokio::test]
async fn a_foreign_listener_on_the_port_moves_the_claim_to_another_port() {
    // GIVEN an allocated Service whose listener someone deleted, then made their own on its
    // port
    let stack = Stack::new("foreign", 1, "30000-30099", 50).await;
    opted_in(&stack, "room").await;
    stack.changed("room").await.expect("allocates");
    let (port, _, _, ours) = stack.listeners().await.pop().expect("a listener");
    stack
        .elb
        .delete_listener()
        .listener_arn(&ours)
        .send()
        .await
        .expect("deleting the listener");
    let tg_arn = stack.foreign_target_group().await;
    let foreign = stack
        .elb
        .create_listener()
        .load_balancer_arn(&stack.nlbs[0].arn)
        .port(i32::from(port))
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .expect("a foreign listener");
    let foreign = foreign.listeners()[0]
        .listener_arn()
        .expect("arn")
        .to_owned();

    // WHEN the sweep runs (events trust what they made; drift is the sweep's to find)
    handlers::on_schedule(&stack.sweep, common::schedule_event())
        .await
        .expect("the sweep runs");

    // THEN it has a listener on another port, the foreign one is untouched, and a Warning
    // Event says why
    let (_, moved) = address(&stack, "room").await;
    assert_ne!(moved, port);
    let listeners = stack.listeners().await;
    assert!(listeners.iter().any(|l| l.3 == foreign && l.0 == port));
    assert!(listeners.iter().any(|l| l.0 == moved));
    assert!(
        stack
            .event_reasons("room")
            .await
            .iter()
            .any(|r| r == "ListenerRefused")
    );
}

#[tokio::test]
async fn an_nlb_deleted_out_of_band_moves_its_services_and_the_pool_goes_on() {
    // GIVEN a pool of two NLBs and an allocated Service, whose NLB is then deleted out of band
    let stack = Stack::new("gone", 2, "30000-30099", 50).await;
    opted_in(&stack, "room").await;
    stack.changed("room").await.expect("allocates");
    let (dns, _) = address(&stack, "room").await;
    let (gone, other) = if dns == stack.nlbs[0].dns_name {
        (0, 1)
    } else {
        (1, 0)
    };
    delete_nlb(&stack, &stack.nlbs[gone].arn).await;

    // WHEN the sweep runs, and a new Service is allocated
    let summary = stack.run_sweep().await;
    opted_in(&stack, "late").await;
    stack
        .changed("late")
        .await
        .expect("allocates on the rest of the pool");

    // THEN the sweep named the NLB and moved the Service to the other NLB; the new Service is
    // there too
    assert_eq!(summary.nlbs_missing, [stack.nlbs[gone].arn.clone()]);
    assert_eq!((summary.services_moved, summary.failures), (1, 0));
    assert_eq!(address(&stack, "room").await.0, stack.nlbs[other].dns_name);
    assert_eq!(status(&stack, "room").await.as_deref(), Some("Allocated"));
    assert_eq!(address(&stack, "late").await.0, stack.nlbs[other].dns_name);
}

#[tokio::test]
async fn a_service_on_an_nlb_deleted_out_of_band_is_released() {
    // GIVEN an allocated Service whose NLB (the pool's only one) is deleted out of band
    let stack = Stack::new("gonedel", 1, "30000-30099", 50).await;
    opted_in(&stack, "room").await;
    stack.changed("room").await.expect("allocates");
    let uid = stack.uid("room").await;
    delete_nlb(&stack, &stack.nlbs[0].arn).await;

    // WHEN the Service is deleted
    stack.delete_service("room").await;
    stack.deleted("room", &uid).await.expect("releases");

    // THEN the release completed: the Service is gone (its finalizer removed), and nothing
    // of it is left
    assert!(
        stack
            .services()
            .get_opt("room")
            .await
            .expect("reads")
            .is_none(),
        "the Service is gone"
    );
    assert!(stack.target_groups_of(&uid).await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn an_nlb_taken_out_of_the_pool_has_its_services_moved_and_its_claims_released() {
    // GIVEN a Service allocated on NLB 0, swept once, then a redeploy whose pool is NLB 1
    let stack = Stack::new("repool", 2, "30000-30099", 50)
        .await
        .with_pool(&[0], "30000-30099", 50)
        .await;
    opted_in(&stack, "room").await;
    stack.changed("room").await.expect("allocates");
    stack.run_sweep().await;
    let stack = stack.with_pool(&[1], "30000-30099", 50).await;

    // WHEN the sweep runs, twice
    let first = stack.run_sweep().await;
    let second = stack.run_sweep().await;

    // THEN the first moved the Service to NLB 1 and deleted its listener on NLB 0; the second
    // found nothing left to move
    assert_eq!((first.services_moved, first.failures), (1, 0));
    assert_eq!(address(&stack, "room").await.0, stack.nlbs[1].dns_name);
    let listeners = stack.listeners().await;
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    assert_eq!(second.services_moved, 0);
}

#[tokio::test]
async fn a_shrunk_port_range_moves_the_claims_into_it() {
    // GIVEN a Service allocated in 30000-30099, then a redeploy with half the range
    let stack = Stack::new("shrunk", 1, "30000-30099", 50).await;
    opted_in(&stack, "room").await;
    stack.changed("room").await.expect("allocates");
    let (_, port) = address(&stack, "room").await;
    let (first, last) = if port < 30050 {
        (30050, 30099)
    } else {
        (30000, 30049)
    };
    let stack = stack.with_pool(&[0], &format!("{first}-{last}"), 50).await;

    // WHEN the Service is reconciled
    stack.changed("room").await.expect("reconciles");

    // THEN its one listener is in the new range
    let (_, moved) = address(&stack, "room").await;
    assert!((first..=last).contains(&moved), "{moved}");
    let ports: Vec<u16> = stack.listeners().await.iter().map(|l| l.0).collect();
    assert_eq!(ports, [moved]);
}

#[tokio::test]
async fn listeners_the_project_did_not_make_count_against_the_quota() {
    // GIVEN an NLB with 49 listeners someone else made (AWS's quota is 50 per NLB, which the
    // bed's IAM gate enforces where moto has none), outside the pool's port range
    let stack = Stack::new("quota", 1, "30000-30099", 50).await;
    let tg = stack.foreign_target_group().await;
    for port in 0..49 {
        stack
            .elb
            .create_listener()
            .load_balancer_arn(&stack.nlbs[0].arn)
            .port(40000 + port)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
            .default_actions(
                aws_sdk_elasticloadbalancingv2::types::Action::builder()
                    .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                    .target_group_arn(&tg)
                    .build(),
            )
            .send()
            .await
            .expect("a foreign listener");
    }
    opted_in(&stack, "one").await;
    opted_in(&stack, "two").await;

    // WHEN two Services are allocated
    stack.changed("one").await.expect("allocates");
    stack.changed("two").await.expect("waits");

    // THEN the first has the 50th listener, the second waits: it was never refused by AWS,
    // the functions counted the foreign listeners
    assert_eq!(status(&stack, "one").await.as_deref(), Some("Allocated"));
    let waiting = status(&stack, "two").await.unwrap_or_default();
    assert!(waiting.starts_with("Pending"), "{waiting}");
    assert!(
        !stack
            .event_reasons("two")
            .await
            .iter()
            .any(|r| r == "ListenerRefused")
    );
    assert_eq!(stack.listeners().await.len(), 50);
}
