//! Runs that overlap: duplicates, a run that stalls past the grace and wakes up, two takers
//! at once. None undoes another's work, and no annotation names a port another Service holds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::stalling::{StallingCluster, StallingStore};
use super::{Error, Outcome, Reconciler};
use crate::adapters::memory::{MemoryClaimStore, MemoryCluster, MemoryLoadBalancing};
use crate::contract::annotations::{self, AUTO_ASSIGN, AllocationRecord};
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::{ListenerKey, ServicePortSpec, ServiceState, TargetPort};
use crate::model::claims::{
    Claim, ClaimState, ClaimStore, HoldError, Owner, ReleaseError, RunToken, TakeOverError,
};
use crate::model::pool::PoolSet;

const NLB: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/a/1";

fn pools(ports: &str) -> PoolSet {
    PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":["{NLB}"],"ports":"{ports}"}}}}"#
    ))
    .expect("pools")
}

fn service(name: &str, uid: &str, port_name: &str, port: u16) -> ServiceState {
    ServiceState {
        created: None,
        key: ServiceKey {
            cluster: "prod".into(),
            namespace: "games".into(),
            name: name.into(),
        },
        uid: uid.into(),
        resource_version: String::new(),
        deleting: false,
        finalizers: vec![],
        annotations: [(AUTO_ASSIGN.to_owned(), "true".to_owned())].into(),
        ports: vec![ServicePortSpec {
            name: Some(port_name.to_owned()),
            port,
            protocol: "TCP".to_owned(),
            target_port: TargetPort::Number(8000),
        }],
        external_name: false,
        selector: Default::default(),
        pod: None,
    }
}

fn claim(token: &str, held_at: i64) -> Claim {
    Claim {
        owner: Owner {
            key: ServiceKey {
                cluster: "prod".into(),
                namespace: "games".into(),
                name: "room".into(),
            },
            uid: "u1".into(),
            pod: None,
        },
        key: ListenerKey::new(7777, ListenerProtocol::Tcp),
        port_name: "game".into(),
        protocol: ListenerProtocol::Tcp,
        service_port: 7777,
        pool: "default".into(),
        nlb_arn: NLB.into(),
        port: 30001,
        state: ClaimState::Claimed,
        listener_arn: None,
        target_group_arn: None,
        claimed_at: held_at,
        gone_since: None,
        applied: None,
        token: token.into(),
        held_at,
        claim_key: None,
    }
}

fn advertised_ports(cluster: &MemoryCluster, name: &str) -> Vec<u16> {
    let Some(json) = cluster
        .get("games", name)
        .and_then(|s| s.annotations.get(annotations::ALLOCATIONS).cloned())
    else {
        return vec![];
    };
    let records: Vec<AllocationRecord> = serde_json::from_str(&json).expect("records");
    records.iter().map(|r| r.port).collect()
}

#[tokio::test]
async fn a_stale_run_cannot_touch_a_claim_taken_over_by_another() {
    // GIVEN a claim of run A, confirmed at 100, taken over by run B at 500 (grace passed)
    let store = MemoryClaimStore::new();
    store
        .claim(
            &[claim("run-a", 100)],
            crate::model::claims::NlbTerms::premade(50),
        )
        .await
        .expect("claimed");
    let (a, b) = (RunToken::for_request("a"), RunToken::for_request("b"));
    let mut as_read = claim("run-a", 100);
    store
        .take_over(&[as_read.clone()], &b, 500, 381)
        .await
        .expect("B takes over");
    as_read.token = a.as_str().to_owned(); // A still believes it holds it

    // WHEN run A wakes up and writes on it
    let record = store
        .record_resources(&as_read, &a, "arn:l", "arn:t", 501)
        .await;
    let let_go = store.let_go(&[as_read.clone()], &a).await;
    let release = store.release(&[as_read.clone()], &a).await;

    // THEN every write is refused, naming the new holder, and the claim is B's as B left it
    let taken = |r: Result<(), HoldError>| matches!(r, Err(HoldError::TakenOver { token, .. }) if token == b.as_str());
    assert!(taken(record.clone()), "{record:?}");
    assert!(taken(let_go.clone()), "{let_go:?}");
    assert!(
        matches!(&release, Err(ReleaseError::NotHeld { token, .. }) if token == b.as_str()),
        "{release:?}"
    );
    let now = store.all_claims();
    assert_eq!(now.len(), 1);
    assert_eq!((now[0].token.as_str(), now[0].held_at), (b.as_str(), 500));
    assert_eq!(now[0].listener_arn, None);
    assert_eq!(store.all_ports().len(), 1, "the port stays claimed");
}

#[tokio::test]
async fn a_live_holder_is_not_overtaken() {
    // GIVEN a claim confirmed at 450 and a grace of 120 s
    let store = MemoryClaimStore::new();
    store
        .claim(
            &[claim("run-a", 450)],
            crate::model::claims::NlbTerms::premade(50),
        )
        .await
        .expect("claimed");

    // WHEN another run tries to take it over at 500
    let err = store
        .take_over(&[claim("run-a", 450)], &RunToken::random(), 500, 381)
        .await
        .expect_err("refused");

    // THEN it is told the holder is busy, and by whom
    assert_eq!(
        err,
        TakeOverError::Busy {
            key: ListenerKey::new(7777, ListenerProtocol::Tcp),
            token: "run-a".into(),
            held_for: 50
        }
    );
}

#[tokio::test(start_paused = true)]
async fn of_two_takers_at_once_exactly_one_wins() {
    // GIVEN a claim its run let go, read by two runs
    let store = Arc::new(MemoryClaimStore::new().with_latency(Duration::from_millis(10)));
    store
        .claim(
            &[claim("run-a", 0)],
            crate::model::claims::NlbTerms::premade(50),
        )
        .await
        .expect("claimed");
    let (b, c) = (RunToken::for_request("b"), RunToken::for_request("c"));

    // WHEN both take it over at the same moment
    let read = [claim("run-a", 0)];
    let (rb, rc) = tokio::join!(
        store.take_over(&read, &b, 500, 381),
        store.take_over(&read, &c, 500, 381)
    );

    // THEN one wins; the other is told the winner is busy with it
    assert_eq!([rb.is_ok(), rc.is_ok()].iter().filter(|ok| **ok).count(), 1);
    let (winner, lost) = if rb.is_ok() { (&b, rc) } else { (&c, rb) };
    assert!(
        matches!(&lost, Err(TakeOverError::Busy { token, .. }) if token == winner.as_str()),
        "{lost:?}"
    );
    assert_eq!(store.all_claims()[0].token, winner.as_str());
}

/// Runs like the handler: tries again while busy (up to 50 attempts).
async fn run_until_not_busy(r: &Reconciler, cluster: &MemoryCluster, name: &str) -> Outcome {
    for _ in 0..50 {
        match r.reconcile_service(cluster, "games", name, None).await {
            Err(Error::Busy { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => return other.expect("no error but busy"),
        }
    }
    panic!("busy for 50 attempts");
}

#[tokio::test(start_paused = true)]
async fn duplicate_runs_at_once_converge_on_one_listener() {
    // GIVEN stores that take 10 ms a call, the deployed grace, and one new Service
    let store = Arc::new(MemoryClaimStore::new().with_latency(Duration::from_millis(10)));
    let elb = Arc::new(
        MemoryLoadBalancing::with_nlbs(&[(NLB, "nlb.elb")]).with_latency(Duration::from_millis(10)),
    );
    let cluster = MemoryCluster::new();
    cluster.put_service(service("room", "u1", "game", 7777));
    let runs: Vec<Reconciler> = (0..6)
        .map(|_| {
            Reconciler::new(
                "prod",
                "vpc-1",
                pools("30000-30099"),
                store.clone(),
                elb.clone(),
            )
        })
        .collect();

    // WHEN six runs (six function instances) handle it at once
    let outcomes =
        futures::future::join_all(runs.iter().map(|r| run_until_not_busy(r, &cluster, "room")))
            .await;

    // THEN all succeed, one claimed, and there is one port, one listener, one target group
    let claimed: usize = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Allocated { claimed, .. } => *claimed,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(claimed, 1, "{outcomes:?}");
    assert_eq!(store.all_ports().len(), 1);
    assert_eq!(elb.listeners().len(), 1);
    assert_eq!(elb.target_groups().len(), 1);
    let held = store.all_claims();
    assert_eq!(held[0].state, ClaimState::Active);
    assert_eq!(held[0].held_at, 0, "the last run let it go");
    assert_eq!(advertised_ports(&cluster, "room"), [held[0].port]);
}

#[tokio::test]
async fn a_run_that_wakes_after_being_overtaken_changes_nothing() {
    // GIVEN run A stalled after making its listener, before recording it; grace 0, so run B
    // (another function instance) takes the claim over and finishes the allocation
    let store = Arc::new(MemoryClaimStore::new());
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&[(NLB, "nlb.elb")]));
    let cluster = MemoryCluster::new();
    cluster.put_service(service("room", "u1", "game", 7777));
    let stalling = Arc::new(StallingStore {
        inner: store.clone(),
        gate: Semaphore::new(0),
    });
    let a = Reconciler::new(
        "prod",
        "vpc-1",
        pools("30000-30099"),
        stalling.clone(),
        elb.clone(),
    )
    .with_claim_grace(Duration::ZERO);
    let b = Reconciler::new(
        "prod",
        "vpc-1",
        pools("30000-30099"),
        store.clone(),
        elb.clone(),
    )
    .with_claim_grace(Duration::ZERO);
    let run_a = a.reconcile_service(&cluster, "games", "room", None);
    let run_b_then_wake_a = async {
        while elb.listeners().is_empty() {
            tokio::task::yield_now().await;
        }
        let outcome = b.reconcile_service(&cluster, "games", "room", None).await;
        let written = cluster.writes();
        stalling.gate.add_permits(10);
        (outcome, written)
    };

    // WHEN A wakes up
    let (a_result, (b_outcome, writes_by_b)) = tokio::join!(run_a, run_b_then_wake_a);

    // THEN B allocated; A was told it lost the claim, and wrote and deleted nothing
    assert_eq!(
        b_outcome.expect("B allocates"),
        Outcome::Allocated {
            listeners: 1,
            claimed: 0
        }
    );
    assert!(matches!(a_result, Err(Error::Conflict(_))), "{a_result:?}");
    assert_eq!(
        cluster.writes(),
        writes_by_b,
        "A wrote nothing after waking"
    );
    assert_eq!(
        elb.listeners().len(),
        1,
        "B's listener (A's, adopted) is kept"
    );
    let held = store.all_claims();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].state, ClaimState::Active);
    assert_eq!(
        held[0].listener_arn.as_deref(),
        Some(elb.listeners()[0].info.arn.as_str())
    );
    assert_eq!(advertised_ports(&cluster, "room"), [held[0].port]);
}

#[tokio::test]
async fn a_stale_run_never_advertises_a_port_another_service_took() {
    // GIVEN Service room allocated the only port of the range, its annotations then removed
    // by hand, and run A (for room as it was) stalled just before writing them again; grace 0
    let store = Arc::new(MemoryClaimStore::new());
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&[(NLB, "nlb.elb")]));
    let cluster = Arc::new(MemoryCluster::new());
    let reconciler = || {
        Reconciler::new(
            "prod",
            "vpc-1",
            pools("30000-30000"),
            store.clone(),
            elb.clone(),
        )
        .with_claim_grace(Duration::ZERO)
    };
    let b = reconciler();
    cluster.put_service(service("room", "u1", "game", 7777));
    b.reconcile_service(cluster.as_ref(), "games", "room", None)
        .await
        .expect("allocates");
    assert_eq!(advertised_ports(&cluster, "room"), [30000]);
    let mut bare = cluster.get("games", "room").expect("room");
    bare.annotations
        .retain(|k, _| !annotations::OUTPUT_KEYS.contains(&k.as_str()));
    cluster.put_service(bare);
    let stalling = StallingCluster {
        inner: cluster.clone(),
        gate: Semaphore::new(0),
        waiting: Default::default(),
    };
    let a = reconciler();
    let run_a = a.reconcile_service(&stalling, "games", "room", None);
    let meanwhile = async {
        while !stalling.waiting.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        // WHEN room opts out (run B releases its port), another Service claims that port, and
        // then A wakes up
        let mut opted_out = cluster.get("games", "room").expect("room");
        opted_out
            .annotations
            .insert(AUTO_ASSIGN.to_owned(), "false".to_owned());
        cluster.put_service(opted_out);
        let released = b
            .reconcile_service(cluster.as_ref(), "games", "room", None)
            .await
            .expect("B releases");
        assert_eq!(released, Outcome::Released { listeners: 1 });
        let before = cluster.history("games", "room").len();
        cluster.put_service(service("other", "u2", "game", 7777));
        b.reconcile_service(cluster.as_ref(), "games", "other", None)
            .await
            .expect("the other Service takes the port");
        stalling.gate.add_permits(10);
        before
    };
    let (a_result, released_at) = tokio::join!(run_a, meanwhile);

    // THEN the other Service holds the port; A's write met a changed Service, found it no
    // longer held its claim, and wrote nothing: no version of room since the release named a
    // port, even for a moment
    assert_eq!(advertised_ports(&cluster, "other"), [30000]);
    let since = &cluster.history("games", "room")[released_at..];
    assert!(
        since
            .iter()
            .all(|a| !a.contains_key(annotations::ALLOCATIONS)),
        "{since:#?}"
    );
    assert!(advertised_ports(&cluster, "room").is_empty());
    assert!(matches!(a_result, Err(Error::Conflict(_))), "{a_result:?}");
}

#[tokio::test]
async fn a_stale_pool_view_is_read_again_before_a_service_is_told_to_wait() {
    // GIVEN a two-port pool filled through function instance A (whose cached view of the pool
    // is then full), and one of the ports freed through instance B
    let store = Arc::new(MemoryClaimStore::new());
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&[(NLB, "nlb.elb")]));
    let cluster = MemoryCluster::new();
    let instance = || {
        Reconciler::new(
            "prod",
            "vpc-1",
            pools("30000-30001"),
            store.clone(),
            elb.clone(),
        )
    };
    let (a, b) = (instance(), instance());
    for (name, uid) in [("one", "u1"), ("two", "u2")] {
        cluster.put_service(service(name, uid, "game", 7777));
        a.reconcile_service(&cluster, "games", name, None)
            .await
            .expect("allocates");
    }
    cluster.delete_service("games", "one");
    b.reconcile_service(&cluster, "games", "one", Some("u1"))
        .await
        .expect("releases");

    // WHEN instance A allocates a new Service
    cluster.put_service(service("three", "u3", "game", 7777));
    let outcome = a
        .reconcile_service(&cluster, "games", "three", None)
        .await
        .expect("reconciles");

    // THEN it gets the freed port instead of waiting
    assert_eq!(
        outcome,
        Outcome::Allocated {
            listeners: 1,
            claimed: 1
        }
    );
}
