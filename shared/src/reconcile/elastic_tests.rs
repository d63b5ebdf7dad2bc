//! Elastic pools against the in-memory doubles: growth, promotion, waking, two growers, a
//! grower that stopped, retirement and its races, the limit, and NLBs gone out of band.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::aws_behaviour_tests::{opted_in, slice};
use super::{GrowthSignal, Outcome, PoolReport, PoolTender, Reconciler, TendSettings};
use crate::adapters::memory::{MemoryClaimStore, MemoryCluster, MemoryLoadBalancing};
use crate::contract::annotations::STATUS;
use crate::model::claims::{ClaimStore, NlbState, PoolMember, PoolRecords, now_epoch};
use crate::model::elb::{
    LoadBalancing, NlbSpec, TAG_CLUSTER, TAG_MANAGED, TAG_POOL, TAG_POOL_ID, TAG_POOL_SEQ,
};
use crate::model::pool::{IpAddressType, PoolSet, Scheme, SubnetPlacement, managed_nlb_name};

/// The id of a pool's records in tests that write them by hand.
pub(super) const POOL_ID: &str = "0a1b2c3d4e5f";

#[derive(Default)]
pub(super) struct Signals(Mutex<Vec<String>>);

#[async_trait]
impl GrowthSignal for Signals {
    async fn pool_low(&self, _cluster: &str, pool: &str, reason: &str) -> Result<(), String> {
        self.0
            .lock()
            .expect("signals")
            .push(format!("{pool}: {reason}"));
        Ok(())
    }
}

pub(super) struct World {
    pub(super) store: Arc<MemoryClaimStore>,
    pub(super) elb: Arc<MemoryLoadBalancing>,
    pub(super) cluster: MemoryCluster,
    pub(super) signals: Arc<Signals>,
    pub(super) pools: PoolSet,
    /// The allocate function's reconciler.
    pub(super) allocate: Reconciler,
    /// The pool function's.
    pub(super) pool_fn: Reconciler,
}

/// A managed-only pool of 10 ports per NLB (quota 10), `min`..`max` NLBs, `spare` free.
pub(super) fn pools(min: u32, max: u32, spare: u32, retire_after: u64) -> PoolSet {
    PoolSet::from_json(&format!(
        r#"{{"default":{{"ports":"7000-7099","listenerQuota":10,"managed":{{"min":{min},"max":{max},
            "spare":{spare},"retireAfterSeconds":{retire_after},"subnets":["subnet-0123abcd"],
            "tags":{{"team":"games"}}}}}}}}"#
    ))
    .expect("pools")
}

pub(super) fn world(pools: PoolSet, provisioning_polls: usize) -> World {
    let store = Arc::new(MemoryClaimStore::new());
    store.set_identity(Some(crate::model::claims::TableIdentity {
        cluster_name: "prod".into(),
        cluster_uid: crate::adapters::memory::MEMORY_CLUSTER_UID.into(),
        stack_id: super::DEFAULT_STACK_ID.into(),
    }));
    let elb = Arc::new(MemoryLoadBalancing::default().with_provisioning_polls(provisioning_polls));
    let signals = Arc::new(Signals::default());
    World {
        allocate: reconciler(&pools, &store, &elb).with_growth_signal(signals.clone()),
        pool_fn: pool_function(&pools, &store, &elb),
        store,
        elb,
        cluster: MemoryCluster::new(),
        signals,
        pools,
    }
}

pub(super) fn reconciler(
    pools: &PoolSet,
    store: &Arc<MemoryClaimStore>,
    elb: &Arc<MemoryLoadBalancing>,
) -> Reconciler {
    Reconciler::new("prod", "vpc-1", pools.clone(), store.clone(), elb.clone())
        .with_claim_grace(Duration::from_secs(60))
        .with_pool_records(store.clone())
}

pub(super) fn pool_function(
    pools: &PoolSet,
    store: &Arc<MemoryClaimStore>,
    elb: &Arc<MemoryLoadBalancing>,
) -> Reconciler {
    reconciler(pools, store, elb)
}

pub(super) fn quick() -> TendSettings {
    TendSettings {
        wait_active: Duration::from_millis(200),
        poll: Duration::from_millis(1),
        retire_per_run: 1,
        wake_concurrency: 4,
        ..TendSettings::default()
    }
}

impl World {
    /// The pool function: its reconciler acting on the in-memory ELBv2 as its NLB fleet.
    pub(super) fn pool_tender(&self) -> PoolTender<'_> {
        PoolTender::new(&self.pool_fn, &*self.elb)
    }

    pub(super) async fn tend(&self) -> PoolReport {
        self.pool_tender()
            .tend_pool(&self.cluster, "default", quick())
            .await
            .expect("tends the pool")
    }

    /// Puts Services `room-<i>` for `range` in the cluster and allocates each.
    pub(super) async fn rooms(&self, range: std::ops::Range<usize>) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for i in range {
            let name = format!("room-{i}");
            self.cluster.put_service(opted_in(&name, &format!("u{i}")));
            self.cluster
                .set_slices("games", &name, slice(&["10.0.0.5"]));
            outcomes.push(
                self.allocate
                    .reconcile_service(&self.cluster, "games", &name, None)
                    .await
                    .expect("reconciles"),
            );
        }
        outcomes
    }

    pub(super) async fn states(&self) -> Vec<Option<NlbState>> {
        let record = self.store.pool_record("default").await.expect("record");
        let usage = self
            .store
            .nlb_usage(&record.member_arns())
            .await
            .expect("usage");
        usage.into_iter().map(|u| u.state).collect()
    }

    pub(super) fn status(&self, name: &str) -> String {
        self.cluster
            .get("games", name)
            .and_then(|s| s.annotations.get(STATUS).cloned())
            .unwrap_or_default()
    }

    /// No port is claimed twice, no NLB is over its quota, no claim is on a non-active NLB.
    async fn assert_invariants(&self) {
        let claims = self.store.all_claims();
        let mut seen = std::collections::BTreeSet::new();
        for c in &claims {
            assert!(
                seen.insert((c.nlb_arn.clone(), c.port)),
                "double port {c:?}"
            );
        }
        let nlbs: std::collections::BTreeSet<String> =
            claims.iter().map(|c| c.nlb_arn.clone()).collect();
        let usage = self
            .store
            .nlb_usage(&nlbs.into_iter().collect::<Vec<_>>())
            .await
            .expect("usage");
        for u in usage {
            assert!(u.ports.len() <= 10, "{} over quota", u.nlb_arn);
            assert!(u.active, "claims on {} in state {:?}", u.nlb_arn, u.state);
        }
    }
}

#[tokio::test]
async fn min_is_made_promoted_when_active_and_then_takes_claims() {
    // GIVEN a managed pool with min 1 and no NLB yet; AWS reports new NLBs provisioning twice
    let w = world(pools(1, 3, 0, 3600), 2);

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN it made one NLB, tagged as the pool's, and promoted it once AWS said active
    let id = w
        .store
        .pool_record("default")
        .await
        .expect("r")
        .id
        .expect("an id");
    assert_eq!(report.made, vec![managed_nlb_name("default", &id, 1)]);
    assert_eq!(report.promoted.len(), 1, "{report:?}");
    assert_eq!(w.states().await, vec![Some(NlbState::Active)]);
    let made = w.elb.made_nlbs();
    let tags: std::collections::HashMap<_, _> = made[0].1.tags.iter().cloned().collect();
    assert_eq!(tags.get(TAG_POOL_SEQ).map(String::as_str), Some("1"));
    assert_eq!(tags.get(TAG_POOL_ID), Some(&id));
    assert_eq!(tags.get("team").map(String::as_str), Some("games"));
    assert_eq!(made[0].1.spec.subnets[0].subnet_id, "subnet-0123abcd");
    // AND a room is allocated on it
    assert!(matches!(w.rooms(0..1).await[0], Outcome::Allocated { .. }));
    w.assert_invariants().await;
}

#[tokio::test]
async fn a_provisioning_nlb_takes_no_claim_and_the_run_returns_when_time_is_up() {
    // GIVEN an NLB that stays provisioning longer than the run waits
    let w = world(pools(1, 3, 0, 3600), 1_000_000);

    // WHEN the pool function runs, and a room arrives
    let report = w.tend().await;
    let outcome = w.rooms(0..1).await.remove(0);

    // THEN the NLB is made but not active, and the room waits, noted for the pool function
    assert_eq!((report.made.len(), report.provisioning), (1, 1));
    assert!(matches!(outcome, Outcome::Pending(_)), "{outcome:?}");
    assert!(
        w.status("room-0").contains("the pool is growing"),
        "{}",
        w.status("room-0")
    );
    let record = w.store.pool_record("default").await.expect("record");
    assert_eq!(record.waiting.len(), 1);
    assert!(
        !w.signals.0.lock().expect("signals").is_empty(),
        "the pool was asked to grow"
    );
}

#[tokio::test]
async fn rooms_beyond_the_pool_wait_and_are_allocated_when_the_new_nlb_is_active() {
    // GIVEN a pool of one active NLB (10 listeners), no spare
    let w = world(pools(1, 3, 0, 3600), 0);
    w.tend().await;

    // WHEN 14 rooms arrive
    let outcomes = w.rooms(0..14).await;
    let pending = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Pending(_)))
        .count();
    assert_eq!(pending, 4);

    // THEN the pool function makes one more NLB and allocates the 4 that waited in its run
    let report = w.tend().await;
    assert_eq!(report.made.len(), 1, "{report:?}");
    assert_eq!(report.woken, 4, "{report:?}");
    assert_eq!(report.waiting, 0);
    for i in 0..14 {
        assert_eq!(w.status(&format!("room-{i}")), "Allocated", "room-{i}");
    }
    w.assert_invariants().await;
}

#[tokio::test]
async fn the_spare_is_made_before_any_room_waits() {
    // GIVEN a pool keeping 5 listeners spare, one NLB of 10
    let w = world(pools(1, 3, 5, 3600), 0);
    w.tend().await;

    // WHEN 6 rooms take ports (4 free left), the allocation asks the pool to grow
    let outcomes = w.rooms(0..6).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Allocated { .. }))
    );
    assert!(!w.signals.0.lock().expect("signals").is_empty());
    let report = w.tend().await;

    // THEN a second NLB is made, and 10 more rooms never wait
    assert_eq!(report.made.len(), 1);
    let more = w.rooms(6..16).await;
    assert!(
        more.iter().all(|o| matches!(o, Outcome::Allocated { .. })),
        "{more:?}"
    );
}

#[tokio::test]
async fn two_growers_at_once_make_one_nlb() {
    // GIVEN two pool functions (two instances) on one table and ELBv2
    let w = world(pools(1, 5, 0, 3600), 0);
    let other = pool_function(&w.pools, &w.store, &w.elb);

    // WHEN both run at once
    let (first, second) = (w.pool_tender(), PoolTender::new(&other, &*w.elb));
    let (a, b) = tokio::join!(
        first.tend_pool(&w.cluster, "default", quick()),
        second.tend_pool(&w.cluster, "default", quick())
    );
    a.expect("a");
    b.expect("b");

    // THEN one NLB exists
    assert_eq!(w.elb.made_nlbs().len(), 1);
    assert_eq!(
        w.store
            .pool_record("default")
            .await
            .expect("record")
            .members
            .len(),
        1
    );
}

#[tokio::test]
async fn an_nlb_made_by_a_run_that_stopped_before_recording_it_is_adopted_not_made_again() {
    // GIVEN a member added and its NLB made, but the ARN never recorded (the run was killed),
    // longer ago than the grace
    let w = world(pools(1, 3, 0, 3600), 0);
    let name = managed_nlb_name("default", POOL_ID, 1);
    let member = PoolMember {
        seq: 1,
        name: name.clone(),
        arn: None,
        created_at: now_epoch() - 600,
    };
    assert!(
        w.store
            .add_members("default", 0, POOL_ID, &[member])
            .await
            .expect("adds")
    );
    let arn = w.elb.add_made_nlb(&spec(&name, 1, "prod"));

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN it adopted that NLB: one NLB, recorded, active
    assert_eq!(report.adopted, vec![name]);
    assert!(report.made.is_empty(), "{report:?}");
    assert_eq!(w.elb.made_nlbs().len(), 1);
    assert_eq!(
        w.store
            .pool_record("default")
            .await
            .expect("r")
            .member_arns(),
        vec![arn]
    );
    assert_eq!(w.states().await, vec![Some(NlbState::Active)]);
}

#[tokio::test]
async fn an_nlb_of_the_name_that_is_not_the_pools_is_never_adopted() {
    // GIVEN an NLB squatting on the member's name with another cluster's tags
    let w = world(pools(1, 3, 0, 3600), 0);
    let name = managed_nlb_name("default", POOL_ID, 1);
    let member = PoolMember {
        seq: 1,
        name: name.clone(),
        arn: None,
        created_at: now_epoch() - 600,
    };
    assert!(
        w.store
            .add_members("default", 0, POOL_ID, &[member])
            .await
            .expect("adds")
    );
    let squatter = w.elb.add_made_nlb(&spec(&name, 1, "staging"));

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN the squatter is neither adopted nor deleted, and the failure is reported
    assert!(report.adopted.is_empty());
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.contains("is not this pool's")),
        "{report:?}"
    );
    assert!(w.elb.made_nlbs().iter().any(|(a, _)| *a == squatter));
    assert!(
        !w.store
            .pool_record("default")
            .await
            .expect("r")
            .member_arns()
            .contains(&squatter)
    );
}

pub(super) fn spec(name: &str, seq: u64, cluster: &str) -> NlbSpec {
    NlbSpec {
        name: name.to_owned(),
        scheme: Scheme::InternetFacing,
        subnets: vec![SubnetPlacement {
            subnet_id: "subnet-0123abcd".into(),
            allocation_id: None,
        }],
        security_groups: vec![],
        ip_address_type: IpAddressType::Ipv4,
        tags: vec![
            (TAG_MANAGED.into(), "true".into()),
            (TAG_CLUSTER.into(), cluster.into()),
            (TAG_POOL.into(), "default".into()),
            (TAG_POOL_ID.into(), POOL_ID.into()),
            (TAG_POOL_SEQ.into(), seq.to_string()),
        ],
    }
}

/// A pool of two active made NLBs, min 1, retired after 60 s; room-0 on one of them.
async fn two_nlbs_one_room() -> World {
    let w = world(pools(2, 3, 0, 60), 0);
    w.tend().await;
    let w = World {
        pool_fn: pool_function(&pools(1, 3, 0, 60), &w.store, &w.elb),
        allocate: reconciler(&pools(1, 3, 0, 60), &w.store, &w.elb),
        ..w
    };
    w.rooms(0..1).await;
    w
}

/// Backdates every `emptySince` by `seconds`.
async fn age_empty(w: &World, seconds: i64) {
    w.tend().await; // notes emptySince
    let record = w.store.pool_record("default").await.expect("record");
    for u in w
        .store
        .nlb_usage(&record.member_arns())
        .await
        .expect("usage")
    {
        if u.empty_since.is_some() {
            w.store
                .set_empty_since(&u.nlb_arn, None)
                .await
                .expect("clears");
            w.store
                .set_empty_since(&u.nlb_arn, Some(now_epoch() - seconds))
                .await
                .expect("sets");
        }
    }
}

#[tokio::test]
async fn an_idle_nlb_above_min_is_retired_and_deleted_and_pre_made_ones_never() {
    // GIVEN two made NLBs, one holding room-0, the other idle for longer than retireAfter
    let w = two_nlbs_one_room().await;
    age_empty(&w, 120).await;

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN the idle one is deleted and forgotten; the room's stays
    assert_eq!(report.retired.len(), 1, "{report:?}");
    assert_eq!(w.elb.made_nlbs().len(), 1);
    assert_eq!(w.states().await, vec![Some(NlbState::Active)]);
    assert!(
        w.status("room-0").starts_with("Allocated"),
        "{}",
        w.status("room-0")
    );
    assert_eq!(w.elb.calls("DeleteLoadBalancer"), 1);
}

#[tokio::test]
async fn a_claim_that_wins_the_race_keeps_the_nlb_and_a_retired_nlb_takes_no_claim() {
    // GIVEN the idle NLB, read by the pool function as idle
    let w = two_nlbs_one_room().await;
    age_empty(&w, 120).await;
    let record = w.store.pool_record("default").await.expect("record");
    let usage = w
        .store
        .nlb_usage(&record.member_arns())
        .await
        .expect("usage");
    let idle = usage
        .iter()
        .find(|u| u.ports.is_empty())
        .expect("idle")
        .nlb_arn
        .clone();

    // WHEN a claim lands on it first, the retirement's condition refuses
    let token = crate::model::claims::RunToken::random();
    let claim = crate::model::claims::Claim {
        nlb_arn: idle.clone(),
        port: 7050,
        token: token.as_str().to_owned(),
        ..w.store.all_claims()[0].clone()
    };
    let claim = crate::model::claims::Claim {
        owner: crate::model::claims::Owner {
            uid: "racer".into(),
            pod: None,
            ..claim.owner.clone()
        },
        ..claim
    };
    let terms = crate::model::claims::NlbTerms {
        listener_quota: 10,
        made: true,
    };
    w.store
        .claim(std::slice::from_ref(&claim), terms)
        .await
        .expect("claims first");
    let refused = w
        .store
        .set_nlb_state(
            &idle,
            NlbState::Active,
            NlbState::Draining,
            true,
            now_epoch(),
        )
        .await
        .expect("store");
    assert!(!refused, "draining needs zero claims");

    // AND once it is drained with no claim, a claim on it is refused
    w.store
        .release(std::slice::from_ref(&claim), &token)
        .await
        .expect("releases");
    let mut c2 = claim.clone();
    c2.owner.uid = "late".into();
    assert!(
        w.store
            .set_nlb_state(
                &idle,
                NlbState::Active,
                NlbState::Draining,
                true,
                now_epoch()
            )
            .await
            .expect("drains")
    );
    let late = w.store.claim(std::slice::from_ref(&c2), terms).await;
    assert!(
        matches!(late, Err(crate::model::claims::ClaimError::NlbFull { .. })),
        "{late:?}"
    );
    // AND after retirement its item is gone and a stale claim still cannot bring it back
    w.tend().await;
    let stale = w.store.claim(std::slice::from_ref(&c2), terms).await;
    assert!(
        matches!(stale, Err(crate::model::claims::ClaimError::NlbFull { .. })),
        "{stale:?}"
    );
    w.assert_invariants().await;
}

#[tokio::test]
async fn a_foreign_listener_keeps_an_idle_nlb() {
    // GIVEN the idle NLB carries a listener someone else made
    let w = two_nlbs_one_room().await;
    age_empty(&w, 120).await;
    let record = w.store.pool_record("default").await.expect("record");
    let usage = w
        .store
        .nlb_usage(&record.member_arns())
        .await
        .expect("usage");
    let idle = usage
        .iter()
        .find(|u| u.ports.is_empty())
        .expect("idle")
        .nlb_arn
        .clone();
    w.elb.add_foreign_listener(&idle, 443);

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN it is not deleted, back to active, and the reason reported
    assert!(report.retired.is_empty());
    assert!(
        report.failures.iter().any(|f| f.contains("did not make")),
        "{report:?}"
    );
    assert_eq!(w.elb.made_nlbs().len(), 2);
    assert_eq!(w.elb.calls("DeleteLoadBalancer"), 0);
}

#[tokio::test]
async fn at_max_the_status_says_so_and_the_report_flags_it() {
    // GIVEN a pool of at most one NLB of 10, full
    let w = world(pools(1, 1, 0, 3600), 0);
    w.tend().await;
    w.rooms(0..10).await;

    // WHEN an eleventh room arrives and the pool function runs
    let outcome = w.rooms(10..11).await.remove(0);
    let report = w.tend().await;

    // THEN the room waits with the limit in its status, and the report says the pool is at max
    assert!(matches!(outcome, Outcome::Pending(_)));
    assert!(
        w.status("room-10").contains("at its limit of 1 made NLBs"),
        "{}",
        w.status("room-10")
    );
    assert!(report.at_max);
    assert!(report.made.is_empty());
}

#[tokio::test]
async fn a_made_nlb_deleted_out_of_band_stops_taking_claims_and_its_rooms_move() {
    // GIVEN two made NLBs and a room on one
    let w = two_nlbs_one_room().await;
    let (nlb, _) = w
        .store
        .all_claims()
        .iter()
        .map(|c| (c.nlb_arn.clone(), c.port))
        .next()
        .expect("claim");

    // WHEN that NLB is deleted behind the system's back and the pool function runs
    w.elb.remove_nlb(&nlb);
    let report = w.tend().await;

    // THEN it is draining (no claim goes to it), and the room's next reconcile moves it
    assert_eq!(report.gone, vec![nlb.clone()]);
    w.allocate
        .reconcile_service(&w.cluster, "games", "room-0", None)
        .await
        .expect("moves");
    let placed: Vec<String> = w
        .store
        .all_claims()
        .iter()
        .map(|c| c.nlb_arn.clone())
        .collect();
    assert!(!placed.contains(&nlb), "{placed:?}");
    // AND once its claims are gone, the pool function forgets it
    let report = w.tend().await;
    assert_eq!(report.retired, vec![nlb]);
    w.assert_invariants().await;
}

#[tokio::test]
async fn listener_on_a_made_nlb_uses_its_name_prefix() {
    // Made NLBs are named npp-...: IAM lets the functions open listeners on them by tags.
    let w = world(pools(1, 1, 0, 3600), 0);
    w.tend().await;
    w.rooms(0..1).await;
    let listeners = w.elb.listeners();
    assert_eq!(listeners.len(), 1);
    assert!(listeners[0].info.nlb_arn.contains("/net/npp-default-"));
    assert!(w.elb.listeners_of(&listeners[0].info.nlb_arn).await.is_ok());
}

#[tokio::test]
async fn no_nlb_is_retired_while_a_service_waits() {
    // GIVEN an idle NLB due for retirement, and a Service noted as waiting
    let w = two_nlbs_one_room().await;
    age_empty(&w, 120).await;
    let waiting = crate::model::claims::WaitingService {
        uid: "u-wait".into(),
        namespace: "games".into(),
        name: "gone-room".into(),
        listeners: 1,
        since: now_epoch(),
    };
    w.store
        .note_waiting("default", &waiting)
        .await
        .expect("notes");

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN nothing is retired this run (the wait is then found moot: that Service is gone)
    assert!(report.retired.is_empty(), "{report:?}");
    assert_eq!(w.elb.made_nlbs().len(), 2);
    assert!(
        w.store
            .pool_record("default")
            .await
            .expect("r")
            .waiting
            .is_empty()
    );
}

#[tokio::test]
async fn an_nlb_aws_does_not_list_yet_is_not_called_gone_until_the_grace_has_passed() {
    // GIVEN a member recorded with an ARN that ELBv2 does not list (just made: eventual
    // consistency), added now
    let w = world(pools(0, 3, 0, 3600), 0);
    let unlisted = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/npp-x/9";
    let add = |seq: u64, created_at: i64| PoolMember {
        seq,
        name: managed_nlb_name("default", POOL_ID, seq),
        arn: None,
        created_at,
    };
    assert!(
        w.store
            .add_members("default", 0, POOL_ID, &[add(1, now_epoch())])
            .await
            .expect("adds")
    );
    assert!(
        w.store
            .record_member_arn("default", 1, unlisted, now_epoch())
            .await
            .expect("records")
    );

    // WHEN the pool function runs
    let report = w.tend().await;

    // THEN it is still provisioning and recorded (not gone)
    assert!(report.gone.is_empty(), "{report:?}");
    assert_eq!(w.states().await, vec![Some(NlbState::Provisioning)]);

    // AND once it is older than the grace and still not listed, it is gone and forgotten
    let late = pool_function(&w.pools, &w.store, &w.elb).with_claim_grace(Duration::ZERO);
    let report = PoolTender::new(&late, &*w.elb)
        .tend_pool(&w.cluster, "default", quick())
        .await
        .expect("tends");
    assert_eq!(report.gone, vec![unlisted.to_owned()], "{report:?}");
    assert!(
        w.store
            .pool_record("default")
            .await
            .expect("r")
            .members
            .is_empty()
    );
    assert_eq!(
        w.elb.calls("DeleteLoadBalancer"),
        0,
        "nothing to delete: it is not there"
    );
}

#[tokio::test]
async fn an_nlb_with_a_claim_of_another_cluster_sharing_the_pool_is_not_retired() {
    // GIVEN two made NLBs, room-0 on one; the other holds one claim of cluster green, whose
    // stack shares the table and pool (none of this cluster's Services is on it)
    let w = two_nlbs_one_room().await;
    let record = w.store.pool_record("default").await.expect("record");
    let ours = w.store.all_claims()[0].clone();
    let idle = record
        .member_arns()
        .into_iter()
        .find(|a| *a != ours.nlb_arn)
        .expect("the other NLB");
    let mut theirs = ours.clone();
    theirs.owner.key.cluster = "green".into();
    theirs.owner.uid = "green-room".into();
    theirs.nlb_arn = idle;
    let terms = crate::model::claims::NlbTerms {
        listener_quota: 50,
        made: true,
    };
    w.store.claim(&[theirs], terms).await.expect("green claims");

    // WHEN the pool function runs long after retireAfter
    age_empty(&w, 120).await;
    let report = w.tend().await;

    // THEN neither NLB is retired: the table counts every cluster's claims
    assert!(report.retired.is_empty(), "{report:?}");
    assert_eq!(w.elb.made_nlbs().len(), 2);
}
