//! Elastic pools on the bed: NLBs made in moto through the pool function's role, with AWS's
//! provisioning delay (the fault proxy's ProvisioningDelay). Every test ends with the
//! invariants: no double port, no NLB over quota, no claim on an NLB that is not active, no
//! NLB made for the pool that the pool does not record, no leak.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::elastic::{Managed, ManagedStack};
use futures::future::join_all;
use nlb_port_pool::model::claims::NlbState;

const SMALL: Managed = Managed {
    quota: 10,
    min: 1,
    max: 8,
    spare: 10,
    cross_zone: false,
    delay: Duration::from_secs(2),
    nlb_quota: None,
    provisioning_limit: Duration::from_secs(900),
    wait_active: None,
    second_pool: false,
};

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("room-{i}")).collect()
}

/// Waits until every Service of the stack is `Allocated`, for at most `within`; the statuses
/// that are not, when time is up.
async fn all_allocated(stack: &ManagedStack, within: Duration) -> Vec<(String, String)> {
    let started = Instant::now();
    loop {
        let not: Vec<(String, String)> = stack
            .statuses()
            .await
            .into_iter()
            .filter(|(_, s)| s != "Allocated")
            .collect();
        if not.is_empty() || started.elapsed() > within {
            return not;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Moves every made NLB's `emptySince` back by an hour, so idle ones are due for retirement.
async fn age_idle_nlbs(stack: &ManagedStack) {
    stack.run_pool().await; // notes emptySince on the idle ones
    for (arn, _) in stack.members().await {
        let _ = stack
            .dynamodb
            .update_item()
            .table_name(&stack.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("nlb#{arn}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("meta".into()),
            )
            .update_expression("SET emptySince = :old")
            .condition_expression("attribute_exists(emptySince)")
            .expression_attribute_values(
                ":old",
                aws_sdk_dynamodb::types::AttributeValue::N(
                    (nlb_port_pool::model::claims::now_epoch() - 3600).to_string(),
                ),
            )
            .send()
            .await;
    }
}

#[tokio::test]
async fn the_pool_grows_through_bursts_and_shrinks_back_to_min_without_a_leak() {
    // GIVEN a managed pool (10 listeners per NLB, spare 10, min 1, max 8) whose new NLBs
    // provision for 2 s, and EventBridge delivering Pool Low to the pool function
    let stack = ManagedStack::new("grow", SMALL).await;
    let runner = stack.pool_runner();
    let first = stack.run_pool().await;
    assert_eq!(first.pools[0].made.len(), 1, "min: {first:?}");
    assert_eq!(
        first.pools[0].promoted.len(),
        1,
        "active within the run: {first:?}"
    );

    // WHEN 60 rooms arrive in 4 bursts of 15, each burst allocated at once
    for burst in 0..4 {
        let rooms = names(burst * 15..(burst + 1) * 15);
        stack.create_rooms(&rooms).await;
        let results = join_all(rooms.iter().map(|r| stack.changed(r))).await;
        for (room, result) in rooms.iter().zip(results) {
            result.unwrap_or_else(|e| panic!("allocating {room}: {e}"));
        }
        // THEN every room is allocated, those that waited once a new NLB was active
        let waiting = all_allocated(&stack, Duration::from_secs(60)).await;
        assert!(waiting.is_empty(), "burst {burst}: {waiting:?}");
        let breaches = stack.breaches().await;
        assert!(breaches.is_empty(), "burst {burst}: {breaches:#?}");
    }
    // The last burst's Pool Low may still be on its way: the schedule's run (as a backstop)
    // makes the spare's NLB and waits for it; a run of the runner at the same time is a second
    // grower, which makes nothing more.
    stack.run_pool().await;
    let started = Instant::now();
    let mut members = stack.members().await;
    while members.iter().any(|(_, s)| *s != Some(NlbState::Active))
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        members = stack.members().await;
    }
    assert_eq!(
        members.len(),
        7,
        "60 rooms + spare 10 need 7 NLBs: {members:?}"
    );
    assert!(
        members.iter().all(|(_, s)| *s == Some(NlbState::Active)),
        "{members:?}"
    );

    // WHEN every room is deleted and released, and the idle NLBs' time has come
    runner.abort();
    for room in names(0..60) {
        let uid = stack.uid(&room).await;
        stack.delete(&room).await;
        stack.deleted(&room, &uid).await.expect("releases");
    }
    age_idle_nlbs(&stack).await;
    let mut rounds = 0;
    while stack.members().await.len() > 1 && rounds < 20 {
        stack.run_pool().await;
        rounds += 1;
    }

    // THEN the pool is back at min, and nothing is left: no claim, listener or stray NLB
    assert_eq!(stack.members().await.len(), 1, "after {rounds} runs");
    assert_eq!(stack.made_nlbs().await.len(), 1);
    let breaches = stack.breaches().await;
    assert!(breaches.is_empty(), "{breaches:#?}");
    assert_eq!(
        testbed::invariants::Claims::read(&stack.dynamodb, &stack.table)
            .await
            .held(),
        0
    );
}

#[tokio::test]
async fn two_growers_at_once_make_one_nlb_each_that_is_needed() {
    // GIVEN a managed pool with min 2 and two pool functions (two invocations) at once
    let stack = ManagedStack::new("growers", Managed { min: 2, ..SMALL }).await;
    let other = ManagedStack::pool_deps_like(&stack).await;

    // WHEN both run
    let (a, b) = tokio::join!(
        handlers::on_pool_event(&stack.pool, common::schedule_event()),
        handlers::on_pool_event(&other, common::schedule_event())
    );
    a.expect("first grower");
    b.expect("second grower");

    // THEN two NLBs exist, both recorded: neither grower made one the other had
    assert_eq!(stack.made_nlbs().await.len(), 2);
    assert_eq!(stack.members().await.len(), 2);
    let breaches = stack.breaches().await;
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[tokio::test]
async fn an_nlb_made_by_a_grower_killed_before_recording_it_is_adopted() {
    // GIVEN a pool function killed right after CreateLoadBalancer answered
    let stack = ManagedStack::new("adopt", SMALL).await;
    stack
        .pool
        .reconciler
        .failpoints()
        .arm(nlb_port_pool::reconcile::failpoint::POOL_AFTER_CREATE);
    let killed = handlers::on_pool_event(&stack.pool, common::schedule_event()).await;
    assert!(killed.is_err(), "the run stopped");
    let made = stack.made_nlbs().await;
    assert_eq!(made.len(), 1, "the NLB exists in AWS");
    assert!(stack.members().await.is_empty(), "but is not recorded");

    // WHEN the next run comes (past the grace, which is 0 here)
    stack.pool.reconciler.failpoints().clear();
    let report = stack.run_pool().await;

    // THEN it adopts that NLB by name and tags: still one NLB, recorded, active
    assert_eq!(report.pools[0].adopted.len(), 1, "{report:?}");
    assert!(report.pools[0].made.is_empty(), "{report:?}");
    assert_eq!(stack.made_nlbs().await, made);
    let members = stack.members().await;
    assert_eq!(members.len(), 1);
    assert!(made.contains(&members[0].0));
    assert_eq!(members[0].1, Some(NlbState::Active));
}

#[tokio::test]
async fn retirement_racing_allocations_never_leaves_a_claim_on_a_retired_nlb() {
    // GIVEN two made NLBs, both idle past their time (min 1, spare 10: one may go)
    let stack = ManagedStack::new("retire", Managed { min: 2, ..SMALL }).await;
    stack.run_pool().await;
    let stack = stack.with_min(1).await;
    age_idle_nlbs(&stack).await;
    let rooms = names(0..8);
    stack.create_rooms(&rooms).await;

    // WHEN the pool function retires while 8 rooms are allocated at once
    let (report, results) = tokio::join!(
        handlers::on_pool_event(&stack.pool, common::schedule_event()),
        join_all(rooms.iter().map(|r| stack.changed(r)))
    );
    report.expect("the pool function runs");
    for r in results {
        r.expect("allocates");
    }

    // THEN every room is allocated, on an active NLB; at most one NLB went, and only if no
    // claim had reached it
    for room in &rooms {
        stack.changed(room).await.expect("reconciles again");
    }
    let waiting = all_allocated(&stack, Duration::from_secs(30)).await;
    assert!(waiting.is_empty(), "{waiting:?}");
    assert!(!stack.members().await.is_empty());
    let breaches = stack.breaches().await;
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[tokio::test]
async fn a_made_nlb_deleted_out_of_band_is_replaced_and_its_rooms_move() {
    // GIVEN two made NLBs (min 2), cross-zone on, and 3 rooms allocated
    let stack = ManagedStack::new(
        "gone",
        Managed {
            min: 2,
            cross_zone: true,
            ..SMALL
        },
    )
    .await;
    stack.run_pool().await;
    let rooms = names(0..3);
    stack.create_rooms(&rooms).await;
    for r in &rooms {
        stack.changed(r).await.expect("allocates");
    }
    let claims = testbed::invariants::Claims::read(&stack.dynamodb, &stack.table).await;
    let (victim, _) = claims.ports.keys().next().cloned().expect("a claim");

    // WHEN that NLB is deleted behind the system's back
    stack
        .elb
        .delete_load_balancer()
        .load_balancer_arn(&victim)
        .send()
        .await
        .expect("deleting out of band");
    let report = stack.run_pool().await;

    // THEN the pool function notes it gone and makes a replacement (min 2); the sweep moves
    // its rooms; and the next run forgets it
    assert_eq!(report.pools[0].gone, vec![victim.clone()], "{report:?}");
    assert_eq!(report.pools[0].made.len(), 1, "{report:?}");
    stack.run_sweep().await;
    let waiting = all_allocated(&stack, Duration::from_secs(30)).await;
    assert!(waiting.is_empty(), "{waiting:?}");
    let claims = testbed::invariants::Claims::read(&stack.dynamodb, &stack.table).await;
    assert!(claims.ports.keys().all(|(nlb, _)| *nlb != victim));
    stack.run_pool().await;
    let members = stack.members().await;
    assert!(members.iter().all(|(a, _)| *a != victim), "{members:?}");
    assert_eq!(members.len(), 2);
    let breaches = stack.breaches().await;
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[tokio::test]
async fn two_pools_growing_at_once_both_get_active_nlbs_within_one_run() {
    // GIVEN two managed pools: `default` (min 1) whose NLBs provision for 12 s, and `fast`
    // (min 0, spare 0) whose NLBs take 2 s; one pool function run may wait 20 s
    let stack = ManagedStack::new(
        "twopools",
        Managed {
            second_pool: true,
            wait_active: Some(Duration::from_secs(20)),
            ..SMALL
        },
    )
    .await;
    stack
        .delay
        .delay_named("npp-default-", Duration::from_secs(12));

    // WHEN a Pool Low for `default` starts a run (which makes its slow NLB and waits), and
    // rooms arrive in `fast` meanwhile (their Pool Low would wait for this run: one at a time)
    let started = Instant::now();
    let run = handlers::on_pool_event(&stack.pool, common::elastic::pool_low_event("min"));
    let rooms = names(0..3);
    let fast_rooms = async {
        while stack.members().await.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stack.create_rooms_in("fast", &rooms).await;
        for r in &rooms {
            stack.changed(r).await.expect("allocates (or waits)");
        }
        let waiting = all_allocated(&stack, Duration::from_secs(8)).await;
        (waiting, started.elapsed())
    };
    let (summary, (waiting, fast_at)) = tokio::join!(run, fast_rooms);

    // THEN the same run grew `fast` and allocated its rooms while `default`'s NLB was still
    // provisioning, and ended with both pools' NLBs active, within its budget
    let summary = summary.expect("the pool function runs");
    assert!(waiting.is_empty(), "{waiting:?}");
    assert!(
        fast_at < Duration::from_secs(12),
        "fast's rooms waited for default's NLB: {fast_at:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(25), "{summary:?}");
    for pool in ["default", "fast"] {
        let members = stack.members_of(pool).await;
        assert_eq!(members.len(), 1, "{pool}: {members:?}");
        assert_eq!(members[0].1, Some(NlbState::Active), "{pool}: {summary:?}");
    }
    let breaches = stack.breaches().await;
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[tokio::test]
async fn an_nlb_stuck_provisioning_past_the_limit_is_deleted_and_replaced() {
    // GIVEN a pool (min 1) whose first NLB never leaves `provisioning`, and a limit of 3 s
    let stack = ManagedStack::new(
        "stuck",
        Managed {
            provisioning_limit: Duration::from_secs(3),
            wait_active: Some(Duration::from_secs(15)),
            ..SMALL
        },
    )
    .await;
    stack.delay.stick_next(1);

    // WHEN the pool function runs
    let summary = stack.run_pool().await;

    // THEN the stuck NLB is deleted (its tags proven the pool's), and its replacement is made
    // and active within the same run
    let report = &summary.pools[0];
    assert_eq!(report.stuck.len(), 1, "{report:?}");
    let stuck = &report.stuck[0];
    assert_eq!(report.made.len(), 2, "{report:?}");
    assert!(!stack.made_nlbs().await.contains(stuck), "{report:?}");
    let members = stack.members().await;
    assert_eq!(members.len(), 1, "{members:?}");
    assert_ne!(&members[0].0, stuck);
    assert_eq!(members[0].1, Some(NlbState::Active));
    let breaches = stack.breaches().await;
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[tokio::test]
async fn growth_stops_at_the_regions_nlb_quota_with_the_reason_named() {
    // GIVEN a pool (min 0, spare 0) in a region whose NLB quota is 2, known to the pool
    // function (NlbQuota 2)
    let stack = ManagedStack::new(
        "nlbquota",
        Managed {
            min: 0,
            spare: 0,
            nlb_quota: Some(2),
            ..SMALL
        },
    )
    .await;
    stack.quota.set_quota(2);

    // WHEN 25 rooms wait (3 NLBs' worth) and the pool function runs
    let rooms = names(0..25);
    stack.create_rooms(&rooms).await;
    for r in &rooms {
        stack.changed(r).await.expect("waits");
    }
    let summary = stack.run_pool().await;

    // THEN it made 2 NLBs, never asked AWS for a third, and says by name what holds it back
    let report = &summary.pools[0];
    assert_eq!(report.made.len(), 2, "{report:?}");
    assert_eq!(stack.quota.refused.load(Ordering::Relaxed), 0);
    let held = report.nlb_quota.clone().unwrap_or_default();
    assert!(held.contains("NLB quota reached"), "{report:?}");
    assert!(held.contains("L-69A177A2"), "{report:?}");
    assert_eq!(report.waiting, 5, "{report:?}");
    let statuses = stack.statuses().await;
    let pending = statuses
        .values()
        .filter(|s| s.starts_with("Pending"))
        .count();
    assert_eq!(pending, 5, "{statuses:?}");
    assert_eq!(stack.made_nlbs().await.len(), 2);
    // The 5 rooms that wait hold no port, as they should: every other invariant holds.
    let breaches: Vec<String> = stack
        .breaches()
        .await
        .into_iter()
        .filter(|b| !b.ends_with("wants ports {7777} but holds {}"))
        .collect();
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[tokio::test]
async fn too_many_load_balancers_from_aws_is_a_named_outcome() {
    // GIVEN a pool (min 2) whose pool function does not count the region's NLBs, in a region
    // where AWS lets the account make one more
    let stack = ManagedStack::new("toomany", Managed { min: 2, ..SMALL }).await;
    stack.quota.set_quota(1);

    // WHEN the pool function runs
    let summary = stack.run_pool().await;

    // THEN the run succeeds with one NLB; AWS's refusal is reported by name, not as an error,
    // and no member is left for the NLB that was not made
    let report = &summary.pools[0];
    assert_eq!(stack.quota.refused.load(Ordering::Relaxed), 1);
    assert_eq!(report.quota_refused, 1, "{report:?}");
    let held = report.nlb_quota.clone().unwrap_or_default();
    assert!(held.contains("TooManyLoadBalancers"), "{report:?}");
    assert_eq!(report.made.len(), 1, "{report:?}");
    let members = stack.members().await;
    assert_eq!(members.len(), 1, "{members:?}");
    let breaches = stack.breaches().await;
    assert!(breaches.is_empty(), "{breaches:#?}");
}
