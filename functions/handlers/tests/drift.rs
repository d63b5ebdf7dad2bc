//! Resyncs cost nothing when nothing changed, and what others change behind the system's back
//! on its own resources is repaired by the sweep (events trust what they made).

mod common;

use std::sync::Arc;

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, TargetDescription};
use common::{Stack, schedule_event};
use testbed::Bed;
use testbed::aws_rules::CountElbCalls;
use testbed::fault_proxy::{FaultPlan, FaultProxy};

const ROOMS: usize = 6;

/// Rooms `room-0..` with one ready pod each, allocated and their targets synced by events.
async fn allocated_rooms(stack: &Stack) -> Vec<String> {
    let names: Vec<String> = (0..ROOMS).map(|i| format!("room-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        stack.create_room(name).await;
        stack
            .room_pod(name, &format!("10.4.0.{}", i + 1), true)
            .await;
        stack.changed(name).await.expect("allocates");
        stack.endpoints_changed(name).await.expect("syncs");
    }
    names
}

#[tokio::test]
async fn a_resync_of_allocated_services_makes_no_elbv2_call() {
    // GIVEN allocated rooms, the functions' ELBv2 calls counted on their way to moto
    let counter = Arc::new(CountElbCalls::default());
    let proxy = FaultProxy::start_with(
        Bed::get().aws_endpoint(),
        FaultPlan::none(),
        vec![counter.clone()],
    )
    .await;
    let stack = Stack::new("resync", 1, "30000-30099", 50).await;
    let sdk = stack.function_sdk_at(&proxy.url, None).await;
    let stack = stack.with_function_sdk(&sdk);
    let names = allocated_rooms(&stack).await;
    assert!(
        !counter.take().is_empty(),
        "the allocations went through the counter"
    );

    // WHEN the forwarder resyncs: Service Changed and Endpoints Changed for every room, twice
    for _ in 0..2 {
        for name in &names {
            stack.changed(name).await.expect("resync");
            stack.endpoints_changed(name).await.expect("resync");
        }
    }

    // THEN not one ELBv2 call was made
    let calls = counter.take();
    assert!(calls.is_empty(), "{calls:?}");
}

#[tokio::test]
async fn drift_behind_the_systems_back_is_repaired_by_one_sweep_run() {
    // GIVEN allocated rooms, then by hand: room-0's listener pointed at another target group,
    // room-1's listener deleted, room-2's target deregistered
    let stack = Stack::new("drift", 1, "30000-30099", 50).await;
    let names = allocated_rooms(&stack).await;
    let before = stack.listeners().await;
    let (port0, tg0, l0) = advertised(&stack, &names[0]).await;
    let (port1, tg1, l1) = advertised(&stack, &names[1]).await;
    let (_, tg2, _) = advertised(&stack, &names[2]).await;
    let elsewhere = stack.foreign_target_group().await;
    stack
        .elb
        .modify_listener()
        .listener_arn(&l0)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&elsewhere)
                .build(),
        )
        .send()
        .await
        .expect("pointing a listener elsewhere");
    stack
        .elb
        .delete_listener()
        .listener_arn(&l1)
        .send()
        .await
        .expect("deleting a listener");
    stack
        .elb
        .deregister_targets()
        .target_group_arn(&tg2)
        .targets(
            TargetDescription::builder()
                .id("10.4.0.3")
                .port(8000)
                .build(),
        )
        .send()
        .await
        .expect("deregistering a target");

    // WHEN a resync comes (it trusts what it made) and then the sweep runs once
    for name in &names {
        stack.changed(name).await.expect("resync");
    }
    handlers::on_schedule(&stack.sweep, schedule_event())
        .await
        .expect("the sweep runs");

    // THEN every listener forwards to its room's target group on its port again, with its
    // pod registered
    let after = stack.listeners().await;
    assert_eq!(after.len(), before.len());
    let forwards_to = |port: u16| {
        after
            .iter()
            .find(|(p, ..)| *p == port)
            .map(|(_, _, tg, _)| tg.clone())
    };
    assert_eq!(forwards_to(port0), Some(tg0), "pointed back");
    assert_eq!(forwards_to(port1), Some(tg1), "made again on its port");
    assert!(
        stack.targets(&tg2).await.contains("10.4.0.3:8000"),
        "the deregistered pod is registered again"
    );
}

/// (port, target group, listener) advertised on room `name`.
async fn advertised(stack: &Stack, name: &str) -> (u16, String, String) {
    let svc = stack
        .services()
        .get(name)
        .await
        .expect("the room's Service");
    let records: Vec<nlb_port_pool::contract::annotations::AllocationRecord> =
        serde_json::from_str(
            &svc.metadata.annotations.unwrap_or_default()
                [nlb_port_pool::contract::annotations::ALLOCATIONS],
        )
        .expect("allocations");
    let r = &records[0];
    (r.port, r.target_group_arn.clone(), r.listener_arn.clone())
}
