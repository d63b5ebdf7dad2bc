//! The pool function's limits against the in-memory doubles: pools tended at once (one pool's
//! provisioning wait holds up no other), an NLB stuck provisioning given up on (after the tags
//! check) and replaced, and the region's NLB quota (counted, and AWS's `TooManyLoadBalancers`).

use std::sync::Arc;
use std::time::Duration;

use super::super::elastic_tests::{
    POOL_ID, World, pool_function, pools, quick, reconciler, spec, world,
};
use super::super::{Outcome, PoolTender, TendSettings};
use crate::adapters::memory::{MemoryClaimStore, MemoryCluster, MemoryLoadBalancing};
use crate::contract::annotations::POOL;
use crate::model::claims::{NlbState, PoolMember, PoolRecords, now_epoch};
use crate::model::elb::{ElbError, ElbErrorKind};
use crate::model::pool::{PoolSet, managed_nlb_name};

/// Managed pools `slow` (min 1) and `fast` (min 0, spare 0: it grows only for waiting
/// Services), 10 listeners per NLB each.
fn two_pools() -> PoolSet {
    PoolSet::from_json(
        r#"{"slow":{"ports":"7000-7099","listenerQuota":10,"managed":{"min":1,"max":3,
            "spare":0,"subnets":["subnet-0123abcd"]}},
           "fast":{"ports":"8000-8099","listenerQuota":10,"managed":{"min":0,"max":3,
            "spare":0,"subnets":["subnet-0123abcd"]}}}"#,
    )
    .expect("pools")
}

/// Member 1 of `default`, added `age` seconds ago, recorded with an NLB tagged as sequence
/// `tagged_seq` (1: the member's own). Returns the NLB's ARN.
async fn recorded_member(w: &World, age: i64, tagged_seq: u64) -> String {
    let name = managed_nlb_name("default", POOL_ID, 1);
    let member = PoolMember {
        seq: 1,
        name: name.clone(),
        arn: None,
        created_at: now_epoch() - age,
    };
    assert!(
        w.store
            .add_members("default", 0, POOL_ID, &[member])
            .await
            .expect("adds")
    );
    let arn = w.elb.add_made_nlb(&spec(&name, tagged_seq, "prod"));
    assert!(
        w.store
            .record_member_arn("default", 1, &arn, now_epoch())
            .await
            .expect("records")
    );
    arn
}

#[tokio::test]
async fn a_run_waiting_for_one_pools_nlb_allocates_services_waiting_in_another_meanwhile() {
    // GIVEN two managed pools, and NLBs that stay provisioning for now
    let (store, elb) = (
        Arc::new(MemoryClaimStore::new()),
        Arc::new(MemoryLoadBalancing::default().with_provisioning_polls(usize::MAX)),
    );
    let pools = two_pools();
    let pool_fn = pool_function(&pools, &store, &elb);
    let allocate = reconciler(&pools, &store, &elb);
    let cluster = MemoryCluster::new();
    let settings = TendSettings {
        wait_active: Duration::from_secs(3),
        poll: Duration::from_millis(10),
        ..quick()
    };
    let names = vec!["slow".to_owned(), "fast".to_owned()];

    // WHEN a run starts (pool `slow` makes its min, which provisions slowly) and, while it
    // waits, a room arrives in pool `fast` (which has no NLB: it waits), and NLBs made from
    // then on provision at once
    let tender = PoolTender::new(&pool_fn, &*elb);
    let run = tender.tend_pools(&cluster, &names, settings);
    let room = async {
        while store
            .pool_record("slow")
            .await
            .expect("r")
            .members
            .iter()
            .all(|m| m.arn.is_none())
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        elb.set_provisioning_polls(0);
        let mut svc = super::super::aws_behaviour_tests::opted_in("room-0", "u0");
        svc.annotations.insert(POOL.to_owned(), "fast".to_owned());
        cluster.put_service(svc);
        cluster.set_slices(
            "games",
            "room-0",
            super::super::aws_behaviour_tests::slice(&["10.0.0.5"]),
        );
        let outcome = allocate
            .reconcile_service(&cluster, "games", "room-0", None)
            .await
            .expect("reconciles");
        assert!(matches!(outcome, Outcome::Pending(_)), "{outcome:?}");
        // The run is still waiting for `slow` when the room is allocated.
        let started = std::time::Instant::now();
        while !annotation(&cluster, "room-0").starts_with("Allocated") {
            assert!(started.elapsed() < Duration::from_secs(2), "room-0 waits");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (reports, ()) = tokio::join!(run, room);

    // THEN the same run grew `fast` and allocated the room, while `slow` still provisions
    let reports = reports.expect("the run");
    let fast = reports
        .iter()
        .find(|(p, _)| p == "fast")
        .and_then(|(_, r)| r.as_ref().ok())
        .expect("fast's report");
    assert_eq!(fast.made.len(), 1, "{fast:?}");
    assert_eq!(fast.woken, 1, "{fast:?}");
    let slow = reports
        .iter()
        .find(|(p, _)| p == "slow")
        .and_then(|(_, r)| r.as_ref().ok())
        .expect("slow's report");
    assert_eq!(slow.provisioning, 1, "{slow:?}");
}

fn annotation(cluster: &MemoryCluster, name: &str) -> String {
    cluster
        .get("games", name)
        .and_then(|s| {
            s.annotations
                .get(crate::contract::annotations::STATUS)
                .cloned()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_nlb_provisioning_past_the_limit_is_deleted_after_the_tags_check_and_replaced() {
    // GIVEN a pool (min 1) whose one NLB was made 20 minutes ago and still provisions
    let w = world(pools(1, 3, 0, 3600), usize::MAX);
    let stuck = recorded_member(&w, 20 * 60, 1).await;
    w.elb.set_provisioning_polls(0);

    // WHEN the pool function runs (limit 15 minutes)
    let report = w.tend().await;

    // THEN the stuck NLB is deleted and forgotten, and a replacement is made and active
    assert_eq!(report.stuck, vec![stuck.clone()], "{report:?}");
    assert!(w.elb.made_nlbs().iter().all(|(a, _)| *a != stuck));
    assert_eq!(report.made.len(), 1, "{report:?}");
    let members = w.store.pool_record("default").await.expect("r").members;
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].seq, 2);
    assert_eq!(w.states().await, vec![Some(NlbState::Active)]);
}

#[tokio::test]
async fn an_nlb_provisioning_within_the_limit_is_waited_for() {
    // GIVEN a pool whose one NLB was made 10 minutes ago and still provisions
    let w = world(pools(1, 3, 0, 3600), usize::MAX);
    let arn = recorded_member(&w, 10 * 60, 1).await;

    // WHEN the pool function runs (limit 15 minutes)
    let report = w.tend().await;

    // THEN it still counts as coming: nothing deleted, nothing more made
    assert!(report.stuck.is_empty(), "{report:?}");
    assert!(report.made.is_empty(), "{report:?}");
    assert_eq!(w.elb.made_nlbs().len(), 1);
    assert_eq!(w.elb.made_nlbs()[0].0, arn);
}

#[tokio::test]
async fn a_stuck_nlb_whose_tags_are_not_the_members_is_never_deleted() {
    // GIVEN a member stuck provisioning whose NLB's tags name another sequence number
    let w = world(pools(1, 3, 0, 3600), usize::MAX);
    let stuck = recorded_member(&w, 20 * 60, 7).await;

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN the NLB stays, and the report says why it was not deleted
    assert!(w.elb.made_nlbs().iter().any(|(a, _)| *a == stuck));
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.contains("not deleting NLB") && f.contains("pool-seq")),
        "{report:?}"
    );
}

#[tokio::test]
async fn growth_stops_at_the_regions_nlb_quota_and_waiting_services_are_told() {
    // GIVEN a pool with no NLB, one other NLB in the region, and a quota of 2 NLBs
    let w = world(pools(0, 8, 0, 3600), 0);
    w.elb.add_made_nlb(&spec("someone-elses", 1, "other"));
    let settings = TendSettings {
        nlb_quota: Some(2),
        ..quick()
    };

    // WHEN 15 rooms wait (2 NLBs' worth) and the pool function runs
    let outcomes = w.rooms(0..15).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Pending(_))));
    let report = w
        .pool_tender()
        .tend_pool(&w.cluster, "default", settings)
        .await
        .expect("tends");

    // THEN it made one NLB (the quota's last), and says by name what holds the pool back
    assert_eq!(report.made.len(), 1, "{report:?}");
    let held = report.nlb_quota.clone().unwrap_or_default();
    assert!(
        held.contains("NLB quota reached") && held.contains("L-69A177A2"),
        "{report:?}"
    );
    assert_eq!(report.waiting, 5, "{report:?}");
    // AND the rooms still waiting got a Warning Event naming the quota
    let told: Vec<String> = w
        .cluster
        .notices()
        .into_iter()
        .filter(|(_, n)| n.reason == "NlbQuotaReached")
        .map(|(who, n)| {
            assert!(n.note.contains("L-69A177A2"), "{n:?}");
            who
        })
        .collect();
    assert_eq!(told.len(), 5, "only those no NLB is coming for: {told:?}");
    let pending = (0..15)
        .filter(|i| w.status(&format!("room-{i}")).starts_with("Pending"))
        .count();
    assert_eq!(pending, 5);
    // AND a waiting room's status, at its next allocation, names the quota too
    let waiting = (0..15)
        .map(|i| format!("room-{i}"))
        .find(|n| w.status(n).starts_with("Pending"))
        .expect("a waiting room");
    w.allocate
        .reconcile_service(&w.cluster, "games", &waiting, None)
        .await
        .expect("reconciles");
    let status = w.status(&waiting);
    assert!(
        status.contains("the pool cannot grow: NLB quota reached") && status.contains("L-69A177A2"),
        "{status}"
    );

    // AND the next run makes nothing more
    let again = w
        .pool_tender()
        .tend_pool(&w.cluster, "default", settings)
        .await
        .expect("tends");
    assert!(again.made.is_empty(), "{again:?}");
    assert_eq!(w.elb.made_nlbs().len(), 2);
}

#[tokio::test]
async fn pools_growing_at_once_share_the_quotas_last_nlbs() {
    // GIVEN two pools that each need 2 NLBs, slow ELBv2 answers, and room for 3 NLBs
    let (store, elb) = (
        Arc::new(MemoryClaimStore::new()),
        Arc::new(MemoryLoadBalancing::default().with_latency(Duration::from_millis(5))),
    );
    let pools = PoolSet::from_json(
        r#"{"a":{"ports":"7000-7099","listenerQuota":10,"managed":{"min":2,"max":3,
            "spare":0,"subnets":["subnet-0123abcd"]}},
           "b":{"ports":"8000-8099","listenerQuota":10,"managed":{"min":2,"max":3,
            "spare":0,"subnets":["subnet-0123abcd"]}}}"#,
    )
    .expect("pools");
    let pool_fn = pool_function(&pools, &store, &elb);
    let settings = TendSettings {
        nlb_quota: Some(3),
        ..quick()
    };

    // WHEN one run tends both at once
    let reports = PoolTender::new(&pool_fn, &*elb)
        .tend_pools(
            &MemoryCluster::new(),
            &["a".to_owned(), "b".to_owned()],
            settings,
        )
        .await
        .expect("the run");

    // THEN 3 NLBs exist, not 4, and the pool left short says so
    assert_eq!(elb.made_nlbs().len(), 3);
    let held = reports
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .filter(|r| r.nlb_quota.is_some())
        .count();
    assert_eq!(held, 1, "{reports:?}");
}

#[tokio::test]
async fn too_many_load_balancers_from_aws_is_a_named_outcome_not_a_failed_run() {
    // GIVEN a pool whose min is 2 and an account whose NLB quota AWS says is reached
    let w = world(pools(2, 3, 0, 3600), 0);
    w.elb.fail_next(
        "CreateLoadBalancer",
        ElbError {
            operation: "CreateLoadBalancer",
            message: "TooManyLoadBalancers: Exceeded quota of account 123456789012".into(),
            retryable: false,
            kind: ElbErrorKind::TooManyLoadBalancers,
        },
    );

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN the run succeeds, names the quota, makes no second attempt (nor on later looks of
    // the run), and keeps no member
    assert_eq!(report.quota_refused, 1, "{report:?}");
    assert_eq!(w.elb.calls("CreateLoadBalancer"), 1);
    let held = report.nlb_quota.clone().unwrap_or_default();
    assert!(
        held.contains("TooManyLoadBalancers") && held.contains("L-69A177A2"),
        "{report:?}"
    );
    assert!(report.made.is_empty(), "{report:?}");
    assert!(w.elb.made_nlbs().is_empty());
    assert!(
        w.store
            .pool_record("default")
            .await
            .expect("r")
            .members
            .is_empty()
    );
}
