//! Players reach a room from every zone of its NLB (issue 28): NLBs have cross-zone load
//! balancing off by default (moto's too), so a room's target group must have it on; `Ready`
//! means reachable from every zone, judged here by AWS's routing rule (`players_reach`) on
//! moto's state, with the zones AWS detects for pod IPs (`TargetZones`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Stack;
use common::pods::run_reachable;
use nlb_port_pool::contract::annotations::STATUS;
use nlb_port_pool::reconcile::ReachSettings;
use testbed::Bed;
use testbed::aws_rules::{TargetZones, players_reach};
use testbed::fault_proxy::{FaultPlan, FaultProxy};

const QUOTA: u32 = 50;

async fn cross_zone_attribute(stack: &Stack, group: &str) -> Option<String> {
    stack
        .elb
        .describe_target_group_attributes()
        .target_group_arn(group)
        .send()
        .await
        .expect("target group attributes")
        .attributes()
        .iter()
        .find(|a| a.key() == Some("load_balancing.cross_zone.enabled"))
        .and_then(|a| a.value().map(str::to_owned))
}

#[tokio::test]
async fn a_one_pod_room_is_reachable_from_every_zone_and_a_group_turned_off_is_not_ready() {
    // GIVEN an NLB in three zones with cross-zone off (AWS's default), functions that see the
    // zones AWS detects for pod IPs, and a one-pod room in zone a
    let bed = Bed::get();
    let stack = Stack::new("xzone", 1, "30000-30099", QUOTA).await;
    let zones = Arc::new(TargetZones::new(bed.region()));
    let proxy = FaultProxy::start_with(bed.aws_endpoint(), FaultPlan::none(), vec![zones]).await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    let mut stack = stack.with_function_sdk(&sdk);
    let mut reachable = stack.reachable_deps(&sdk);
    // Every check is at its deadline at once: a room not reachable is reported on its first.
    let at_once = ReachSettings {
        check_every: Duration::from_secs(1),
        timeout: Duration::ZERO,
        run_for: Duration::ZERO,
        concurrency: 8,
    };
    for deps in [&mut stack.deps, &mut stack.sync_targets, &mut reachable] {
        deps.reconciler.set_reach_settings(at_once);
    }
    let nlb = stack.nlbs[0].arn.clone();
    stack.create_room("room").await;
    stack.room_pod("room", "10.0.1.10", true).await;

    // WHEN it is allocated, before any sweep listed the NLB
    stack.changed("room").await.expect("allocates");
    let uid = stack.uid("room").await;
    let group = stack.target_groups_of(&uid).await.pop().expect("its group");

    // THEN its group balances across zones by its own attribute, so players from every zone
    // reach the pod, and the check calls it Ready
    assert_eq!(
        cross_zone_attribute(&stack, &group).await.as_deref(),
        Some("true")
    );
    assert!(players_reach(&stack.sdk, &nlb, &group).await.is_empty());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let report = run_reachable(&reachable).await;
    assert_eq!(report.ready, 1, "{report:?}");
    assert_eq!(
        stack
            .annotations("room")
            .await
            .get(STATUS)
            .map(String::as_str),
        Some("Ready")
    );

    // WHEN a second room's group is turned off by hand before its check
    stack.create_room("room-2").await;
    stack.room_pod("room-2", "10.0.1.11", true).await;
    stack.changed("room-2").await.expect("allocates");
    let uid = stack.uid("room-2").await;
    let group = stack.target_groups_of(&uid).await.pop().expect("its group");
    stack
        .elb
        .modify_target_group_attributes()
        .target_group_arn(&group)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("load_balancing.cross_zone.enabled")
                .value("false")
                .build(),
        )
        .send()
        .await
        .expect("turning cross-zone off");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    run_reachable(&reachable).await;

    // THEN players in zones b and c cannot reach it, and the check says so instead of Ready
    let region = bed.region();
    assert_eq!(
        players_reach(&stack.sdk, &nlb, &group).await,
        [format!("{region}b"), format!("{region}c")].into()
    );
    assert_eq!(
        stack
            .annotations("room-2")
            .await
            .get(STATUS)
            .map(String::as_str),
        Some("Allocated")
    );
    let events = stack.events_of("room-2").await;
    let (_, _, why) = events
        .iter()
        .find(|(_, reason, _)| reason == "NotReachable")
        .unwrap_or_else(|| panic!("a NotReachable Event: {events:?}"));
    assert!(why.contains("cross-zone load balancing is off"), "{why}");
    assert!(why.contains(&format!("{region}b, {region}c")), "{why}");
}

#[tokio::test]
async fn after_a_sweep_lists_an_nlb_with_cross_zone_on_a_room_costs_no_read_and_no_attribute() {
    // GIVEN an NLB with cross-zone on, another tool's listener on it, and a sweep run
    let stack = Stack::new("xzone-on", 1, "30000-30001", QUOTA).await;
    let nlb = stack.nlbs[0].arn.clone();
    testbed::moto::set_nlb_cross_zone(&stack.sdk, &nlb, true).await;
    let foreign_group = stack.foreign_target_group().await;
    stack
        .elb
        .create_listener()
        .load_balancer_arn(&nlb)
        .port(30000)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&foreign_group)
                .build(),
        )
        .send()
        .await
        .expect("another tool's listener");
    stack.run_sweep().await;

    // WHEN a room is allocated by a function counting its ELBv2 calls
    let counter = Arc::new(testbed::aws_rules::CountElbCalls::default());
    let proxy = FaultProxy::start_with(
        Bed::get().aws_endpoint(),
        FaultPlan::none(),
        vec![counter.clone()],
    )
    .await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    let stack = stack.with_function_sdk(&sdk);
    stack.create_room("room").await;
    stack.room_pod("room", "10.0.1.10", true).await;
    stack.changed("room").await.expect("allocates");

    // THEN it got the port the other listener does not hold, its group follows the NLB, and
    // ELBv2 was asked nothing but the DNS name and the three writes
    let address = stack
        .annotations("room")
        .await
        .get("nlb.port-manager/address")
        .cloned();
    assert!(
        address.as_deref().is_some_and(|a| a.ends_with(":30001")),
        "{address:?}"
    );
    let uid = stack.uid("room").await;
    let group = stack.target_groups_of(&uid).await.pop().expect("its group");
    assert_eq!(
        cross_zone_attribute(&stack, &group).await.as_deref(),
        Some("use_load_balancer_configuration")
    );
    let calls = counter.take();
    let expected: std::collections::BTreeMap<String, usize> = [
        ("CreateListener", 1),
        ("CreateTargetGroup", 1),
        ("DescribeLoadBalancers", 1),
        ("RegisterTargets", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(calls, expected);
    assert!(players_reach(&stack.sdk, &nlb, &group).await.is_empty());
}
