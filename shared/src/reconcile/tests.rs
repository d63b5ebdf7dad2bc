//! Reconcile logic against in-memory doubles of DynamoDB, ELBv2 and the Kubernetes API.

use std::sync::Arc;
use std::time::Duration;

use super::{Error, Outcome, Reconciler, RunMetrics};
use crate::adapters::memory::{MemoryClaimStore, MemoryCluster, MemoryLoadBalancing};
use crate::contract::annotations::{self, AUTO_ASSIGN, FINALIZER};
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::{ServicePortSpec, ServiceState, TargetPort};
use crate::model::claims::{ClaimState, ClaimStore};
use crate::model::cluster::{KubeError, NoticeKind};
use crate::model::elb::{ElbError, ElbErrorKind};
use crate::model::pool::PoolSet;
use crate::model::targets::{SlicePort, SliceView};

pub(super) const NLB_A: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/a/1";
pub(super) const NLB_B: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/b/2";

pub(super) struct World {
    pub(super) store: Arc<MemoryClaimStore>,
    pub(super) elb: Arc<MemoryLoadBalancing>,
    pub(super) cluster: MemoryCluster,
    pub(super) reconciler: Reconciler,
}

/// Records each NLB's listing as a sweep run has, with cross-zone on and no foreign listener:
/// the steady state, in which an allocation asks ELBv2 nothing before its claim
/// (cross_zone_tests.rs covers the NLBs before their first listing).
pub(super) fn swept(store: &MemoryClaimStore, nlbs: &[&str]) {
    for nlb in nlbs {
        store.set_listing(
            nlb,
            crate::model::claims::NlbListing {
                cross_zone: true,
                ..Default::default()
            },
        );
    }
}

pub(super) fn world(nlbs: &[&str], ports: &str, quota: u32) -> World {
    let arns: Vec<String> = nlbs.iter().map(|a| format!("\"{a}\"")).collect();
    let pools = PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"{ports}","listenerQuota":{quota}}}}}"#,
        arns.join(",")
    ))
    .expect("pools");
    let store = Arc::new(MemoryClaimStore::new());
    swept(&store, nlbs);
    // A table in use: its first allocation recorded whose it is (identity_tests.rs covers that).
    store.set_identity(Some(crate::model::claims::TableIdentity {
        cluster_name: "prod".into(),
        cluster_uid: crate::adapters::memory::MEMORY_CLUSTER_UID.into(),
        stack_id: super::DEFAULT_STACK_ID.into(),
    }));
    let dns: Vec<(String, String)> = nlbs
        .iter()
        .enumerate()
        .map(|(i, a)| ((*a).to_owned(), format!("nlb-{i}.elb")))
        .collect();
    let dns_refs: Vec<(&str, &str)> = dns.iter().map(|(a, d)| (a.as_str(), d.as_str())).collect();
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&dns_refs));
    let reconciler = Reconciler::new("prod", "vpc-1", pools, store.clone(), elb.clone())
        .with_claim_grace(Duration::ZERO)
        .with_target_policy(test_targets());
    World {
        store,
        elb,
        cluster: MemoryCluster::new(),
        reconciler,
    }
}

fn port(name: &str, port: u16, protocol: &str, target: TargetPort) -> ServicePortSpec {
    ServicePortSpec {
        name: Some(name.to_owned()),
        port,
        protocol: protocol.to_owned(),
        target_port: target,
    }
}

fn service(
    name: &str,
    uid: &str,
    annotations: &[(&str, &str)],
    ports: Vec<ServicePortSpec>,
) -> ServiceState {
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
        annotations: annotations
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ports,
        external_name: false,
        selector: Default::default(),
        pod: None,
    }
}

pub(super) fn opted_in(name: &str, uid: &str) -> ServiceState {
    service(
        name,
        uid,
        &[(AUTO_ASSIGN, "true")],
        vec![port("game", 7777, "TCP", TargetPort::Number(8000))],
    )
}

/// The manager of the tests' hand-written slices, which the tests' reconcilers trust as an
/// operator trusts another controller (`TRUSTED_ENDPOINTSLICE_MANAGERS`): the allocation tests
/// need no pods behind their addresses. Slices claiming the EndpointSlice controller, checked
/// against the pods, are pod_targets_tests' and own_pods_tests' subject.
pub(super) const TEST_MANAGER: &str = "tests.nlb-port-pool";

/// `n` TCP ports named `p0`.. (7000 and up, each to target port 8000 and up).
pub(super) fn tcp_ports(n: u16) -> Vec<ServicePortSpec> {
    (0..n)
        .map(|i| ServicePortSpec {
            name: Some(format!("p{i}")),
            port: 7000 + i,
            protocol: "TCP".into(),
            target_port: TargetPort::Number(8000 + i),
        })
        .collect()
}

/// Puts Service `room` (uid `u1`) with `n` TCP ports ([`tcp_ports`]) and a ready endpoint.
pub(super) fn room_with_ports(w: &World, n: u16) {
    let mut svc = opted_in("room", "u1");
    svc.ports = tcp_ports(n);
    w.cluster.put_service(svc);
    w.cluster
        .set_slices("games", "room", vec![slice("p0", 8000, &["10.0.0.1"])]);
}

/// What the tests' reconcilers trust: the EndpointSlice controller and [`TEST_MANAGER`].
pub(super) fn test_targets() -> crate::model::target_policy::TargetPolicy {
    crate::model::target_policy::TargetPolicy::new([TEST_MANAGER], vec![])
}

/// A slice of the tests' trusted manager.
pub(super) fn slice(port_name: &str, port: u16, ips: &[&str]) -> SliceView {
    SliceView {
        name: format!("room-{port_name}"),
        managed_by: Some(TEST_MANAGER.to_owned()),
        ports: vec![SlicePort {
            name: Some(port_name.to_owned()),
            port: Some(port),
        }],
        ready: ips.iter().map(|i| i.parse().expect("ip")).collect(),
        pods: vec![],
    }
}

impl World {
    pub(super) async fn reconcile(&self, name: &str) -> Result<Outcome, Error> {
        self.reconciler
            .reconcile_service(&self.cluster, "games", name, None)
            .await
    }

    pub(super) fn annotation(&self, name: &str, key: &str) -> Option<String> {
        self.cluster
            .get("games", name)?
            .annotations
            .get(key)
            .cloned()
    }

    fn assert_nothing_left(&self) {
        assert!(
            self.elb.listeners().is_empty(),
            "listeners left: {:?}",
            self.elb.listeners()
        );
        assert!(self.elb.target_groups().is_empty(), "target groups left");
        assert!(self.store.all_claims().is_empty(), "claims left");
        assert!(self.store.all_ports().is_empty(), "ports left");
    }
}

#[tokio::test]
async fn allocates_a_new_service_in_three_rounds() {
    // GIVEN an opted-in Service with two ready endpoints
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice("game", 8000, &["10.0.0.1", "10.0.0.2"])],
    );

    // WHEN it is reconciled
    let outcome = w.reconcile("room").await.expect("allocates");

    // THEN it holds one listener on a pool port, forwarding to a group with both pods
    assert_eq!(
        outcome,
        Outcome::Allocated {
            listeners: 1,
            claimed: 1
        }
    );
    let listeners = w.elb.listeners();
    assert_eq!(listeners.len(), 1);
    let port = listeners[0].info.port;
    assert!((30000..=30099).contains(&port));
    let groups = w.elb.target_groups();
    assert_eq!(groups[0].targets.len(), 2);
    assert_eq!(
        listeners[0].info.target_group_arn.as_deref(),
        Some(groups[0].info.arn.as_str())
    );
    // AND the annotations say where to connect
    assert_eq!(
        w.annotation("room", annotations::ADDRESS),
        Some(format!("nlb-0.elb:{port}"))
    );
    assert_eq!(
        w.annotation("room", annotations::STATUS).as_deref(),
        Some("Allocated")
    );
    let svc = w.cluster.get("games", "room").expect("service");
    assert!(svc.finalizers.contains(&FINALIZER.to_owned()));
    // AND the claim records what was made
    let claims = w.store.claims_of("u1").await.expect("claims");
    assert_eq!(claims[0].state, ClaimState::Active);
    assert_eq!(
        claims[0].listener_arn.as_deref(),
        Some(listeners[0].info.arn.as_str())
    );
    // AND no AWS call was spent on reading what a new Service cannot have yet, nor on the
    // NLB's listeners: the sweep's listing on the NLB's item, read with the claims, holds the
    // ports other listeners use (every listener counts against the NLB's quota)
    let calls = w.elb.all_calls();
    for read in [
        "DescribeListeners",
        "DescribeListeners (of an NLB)",
        "DescribeTargetHealth",
        "DescribeTags",
    ] {
        assert_eq!(calls.get(read), None, "{read} on the happy path: {calls:?}");
    }
    assert_eq!(calls.get("CreateListener"), Some(&1));
    assert_eq!(calls.get("RegisterTargets"), Some(&1));
    let notices = w.cluster.notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(
        (notices[0].1.kind, notices[0].1.reason),
        (NoticeKind::Normal, "Allocated")
    );
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);
    w.reconcile("room").await.expect("first");
    let writes = w.cluster.writes();
    let creates = w.elb.calls("CreateListener") + w.elb.calls("CreateTargetGroup");

    let again = w.reconcile("room").await.expect("second");

    assert_eq!(
        again,
        Outcome::Allocated {
            listeners: 1,
            claimed: 0
        }
    );
    assert_eq!(w.cluster.writes(), writes, "no write when nothing changed");
    assert_eq!(
        w.elb.calls("CreateListener") + w.elb.calls("CreateTargetGroup"),
        creates
    );
    assert_eq!(w.elb.listeners().len(), 1);
    assert_eq!(w.cluster.notices().len(), 1, "no second Allocated event");
}

#[tokio::test]
async fn deleting_releases_everything_and_lets_the_service_go() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);
    w.reconcile("room").await.expect("allocates");

    // WHEN the Service is deleted (the finalizer holds it) and reconciled
    w.cluster.delete_service("games", "room");
    assert!(
        w.cluster.get("games", "room").is_some(),
        "held by the finalizer"
    );
    let outcome = w.reconcile("room").await.expect("releases");

    // THEN nothing is left and the Service is gone
    assert_eq!(outcome, Outcome::Released { listeners: 1 });
    w.assert_nothing_left();
    assert!(w.cluster.get("games", "room").is_none());
    // AND a late duplicate of the event changes nothing
    assert_eq!(
        w.reconcile("room").await.expect("late"),
        Outcome::Nothing("the Service does not exist")
    );
}

#[tokio::test]
async fn removing_the_opt_in_releases_and_clears_the_annotations() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.reconcile("room").await.expect("allocates");

    let mut svc = w.cluster.get("games", "room").expect("service");
    svc.annotations.remove(AUTO_ASSIGN);
    w.cluster.put_service(svc);
    w.reconcile("room").await.expect("releases");

    w.assert_nothing_left();
    let svc = w.cluster.get("games", "room").expect("still exists");
    assert!(svc.finalizers.is_empty());
    assert!(
        annotations::OUTPUT_KEYS
            .iter()
            .all(|k| !svc.annotations.contains_key(*k))
    );
}

#[tokio::test]
async fn invalid_annotations_are_reported_not_retried() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(service(
        "room",
        "u1",
        &[(AUTO_ASSIGN, "yes")],
        vec![port("g", 1, "TCP", TargetPort::Number(1))],
    ));
    w.cluster.put_service(service(
        "bad-pool",
        "u2",
        &[(AUTO_ASSIGN, "true"), (annotations::POOL, "nope")],
        vec![port("g", 1, "TCP", TargetPort::Number(1))],
    ));
    w.cluster
        .put_service(service("no-ports", "u3", &[(AUTO_ASSIGN, "true")], vec![]));

    for name in ["room", "bad-pool", "no-ports"] {
        let outcome = w
            .reconcile(name)
            .await
            .expect("a user error is not a failure");
        assert!(
            matches!(outcome, Outcome::Rejected(_)),
            "{name}: {outcome:?}"
        );
        let status = w.annotation(name, annotations::STATUS).expect("status");
        assert!(status.starts_with("Error: "), "{status}");
    }
    assert!(w.elb.listeners().is_empty() && w.elb.target_groups().is_empty());
    let warnings = w
        .cluster
        .notices()
        .iter()
        .filter(|(_, n)| n.kind == NoticeKind::Warning)
        .count();
    assert_eq!(warnings, 3);
    assert!(
        w.annotation("bad-pool", annotations::STATUS)
            .expect("status")
            .contains("pools: default")
    );
}

#[tokio::test]
async fn an_exhausted_pool_leaves_the_service_pending_until_a_port_frees() {
    // GIVEN a pool with room for one listener, taken by "first"
    let w = world(&[NLB_A], "30000-30099", 1);
    w.cluster.put_service(opted_in("first", "u1"));
    w.cluster.put_service(opted_in("second", "u2"));
    w.reconcile("first").await.expect("first fits");

    // WHEN the second is reconciled
    let outcome = w
        .reconcile("second")
        .await
        .expect("pending is not a failure");

    // THEN it waits, told why, holding nothing
    assert!(matches!(outcome, Outcome::Pending(_)), "{outcome:?}");
    assert!(
        w.annotation("second", annotations::STATUS)
            .expect("status")
            .starts_with("Pending: ")
    );
    assert!(
        w.cluster
            .notices()
            .iter()
            .any(|(s, n)| s == "games/second" && n.reason == "PoolExhausted")
    );
    assert_eq!(
        w.elb.target_groups().len(),
        1,
        "the second's target group was removed again"
    );
    assert!(
        !w.cluster
            .get("games", "second")
            .expect("svc")
            .has_finalizer()
    );

    // WHEN the first goes away and the second is tried again
    w.cluster.delete_service("games", "first");
    w.reconcile("first").await.expect("release");
    let outcome = w.reconcile("second").await.expect("now fits");
    assert_eq!(
        outcome,
        Outcome::Allocated {
            listeners: 1,
            claimed: 1
        }
    );
}

#[tokio::test]
async fn tcp_and_udp_share_one_listener_and_ports_share_one_nlb() {
    let w = world(&[NLB_A, NLB_B], "30000-30099", 50);
    w.cluster.put_service(service(
        "room",
        "u1",
        &[(AUTO_ASSIGN, "true")],
        vec![
            port("game-tcp", 7777, "TCP", TargetPort::Number(7777)),
            port("game-udp", 7777, "UDP", TargetPort::Number(7777)),
            port("voice", 9000, "UDP", TargetPort::Number(9000)),
        ],
    ));
    w.reconcile("room").await.expect("allocates");

    let listeners = w.elb.listeners();
    assert_eq!(listeners.len(), 2);
    let protocols: Vec<_> = listeners.iter().filter_map(|l| l.info.protocol).collect();
    assert!(
        protocols.contains(&ListenerProtocol::TcpUdp) && protocols.contains(&ListenerProtocol::Udp)
    );
    assert_eq!(
        listeners[0].info.nlb_arn, listeners[1].info.nlb_arn,
        "one address for the Service"
    );
    let records: Vec<annotations::AllocationRecord> = serde_json::from_str(
        &w.annotation("room", annotations::ALLOCATIONS)
            .expect("allocations"),
    )
    .expect("json");
    assert_eq!(
        records.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["game-tcp", "voice"]
    );
}

#[tokio::test]
async fn a_replaced_service_releases_its_predecessors_claims() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "old"));
    w.reconcile("room").await.expect("allocates");
    // The Service is deleted and made again under the same name before any event is handled.
    w.cluster.put_service(opted_in("room", "new"));

    w.reconciler
        .reconcile_service(&w.cluster, "games", "room", Some("old"))
        .await
        .expect("reconciles");

    assert!(w.store.claims_of("old").await.expect("claims").is_empty());
    assert_eq!(w.store.claims_of("new").await.expect("claims").len(), 1);
    assert_eq!(w.elb.listeners().len(), 1);
    assert_eq!(w.elb.target_groups().len(), 1);
}

#[tokio::test]
async fn a_listener_deleted_by_hand_is_made_again() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.reconcile("room").await.expect("allocates");
    let before = w.elb.listeners()[0].info.clone();
    w.elb.remove_listener(&before.arn);

    w.reconcile("room").await.expect("repairs");

    let after = w.elb.listeners();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].info.port, before.port, "the claimed port is kept");
    assert_eq!(
        w.annotation("room", annotations::LISTENER_ARN),
        Some(after[0].info.arn.clone())
    );
}

#[tokio::test]
async fn a_run_that_fails_midway_is_finished_by_the_next() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);
    w.elb.fail_next(
        "CreateListener",
        ElbError {
            operation: "CreateListener",
            message: "Throttling".into(),
            retryable: true,
            kind: ElbErrorKind::Other,
        },
    );

    let err = w.reconcile("room").await.expect_err("the first run fails");
    assert!(err.is_retryable(), "{err}");
    w.reconcile("room").await.expect("the retry finishes");

    assert_eq!(w.elb.listeners().len(), 1);
    assert_eq!(w.elb.target_groups().len(), 1);
    assert_eq!(w.store.all_ports().len(), 1, "one port, not two");
    assert_eq!(w.elb.target_groups()[0].targets.len(), 1);
}

#[tokio::test]
async fn an_unfinished_claim_of_a_live_run_is_not_overtaken() {
    let w = world(&[NLB_A], "30000-30099", 50);
    let patient = Reconciler::new(
        "prod",
        "vpc-1",
        w.reconciler.pools().clone(),
        w.store.clone(),
        w.elb.clone(),
    );
    w.cluster.put_service(opted_in("room", "u1"));
    // A run killed right after its claim (a failpoint: no clean-up runs, as with a kill).
    w.reconciler
        .failpoints()
        .arm(crate::reconcile::failpoint::ENSURE_AFTER_CLAIM);
    w.reconcile("room").await.expect_err("the run stops");
    w.reconciler.failpoints().clear();

    let err = patient
        .reconcile_service(&w.cluster, "games", "room", None)
        .await
        .expect_err("within the grace period another run is presumed alive");
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    w.reconcile("room")
        .await
        .expect("after the grace period it is taken over");
    assert_eq!(w.store.all_ports().len(), 1);
}

#[tokio::test]
async fn a_failed_finalizer_write_leaves_nothing_behind() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.fail_next(
        "write_outputs",
        KubeError {
            action: "patch".into(),
            message: "timeout".into(),
            retryable: true,
        },
    );

    w.reconcile("room").await.expect_err("the run fails");

    w.assert_nothing_left();
}

#[tokio::test]
async fn endpoint_changes_move_targets() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice("game", 8000, &["10.0.0.1", "10.0.0.2"])],
    );
    w.reconcile("room").await.expect("allocates");

    w.cluster.set_slices(
        "games",
        "room",
        vec![slice("game", 8000, &["10.0.0.2", "10.0.0.3", "10.0.0.4"])],
    );
    let outcome = w
        .reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("syncs");

    assert_eq!(
        outcome,
        Outcome::TargetsSynced {
            registered: 2,
            deregistered: 1
        }
    );
    let ips: Vec<String> = w.elb.target_groups()[0]
        .targets
        .iter()
        .map(|t| t.ip.to_string())
        .collect();
    assert_eq!(ips, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
}

#[tokio::test]
async fn an_unresolved_named_target_port_is_reported_but_the_port_is_kept() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(service(
        "room",
        "u1",
        &[(AUTO_ASSIGN, "true")],
        vec![port("game", 7777, "TCP", TargetPort::Name("gs".into()))],
    ));
    w.cluster
        .set_slices("games", "room", vec![slice("other", 1, &["10.0.0.1"])]);

    w.reconcile("room").await.expect("reconciles");

    assert_eq!(w.elb.listeners().len(), 1);
    assert!(
        w.annotation("room", annotations::STATUS)
            .expect("status")
            .contains("\"gs\"")
    );
    assert!(
        w.cluster
            .notices()
            .iter()
            .any(|(_, n)| n.reason == "TargetPortUnresolved")
    );
}

#[tokio::test]
async fn a_port_held_by_a_foreign_listener_is_never_claimed() {
    let w = world(&[NLB_A], "30000-30000", 50);
    // Someone made a listener by hand on the only port of the range.
    let tags = crate::model::elb::ResourceTags {
        owner: crate::model::claims::Owner {
            key: ServiceKey {
                cluster: "x".into(),
                namespace: "x".into(),
                name: "x".into(),
            },
            uid: "someone-else".into(),
            pod: None,
        },
        pool: "default".into(),
        listener: crate::contract::service_model::ListenerKey::new(30000, ListenerProtocol::Tcp),
    };
    let spec = crate::model::elb::TargetGroupSpec {
        attributes: Default::default(),
        name: "manual".into(),
        protocol: ListenerProtocol::Tcp,
        port: 1,
        vpc_id: "vpc-1".into(),
        health_check: Default::default(),
        tags: tags.clone(),
    };
    use crate::model::elb::LoadBalancing;
    let tg = w.elb.ensure_target_group(&spec).await.expect("tg");
    w.elb
        .create_listener(NLB_A, 30000, ListenerProtocol::Tcp, None, &tg.arn, &tags)
        .await
        .expect("listener");
    w.cluster.put_service(opted_in("room", "u1"));

    let outcome = w.reconcile("room").await.expect("reconciles");

    // The listener counts as a used port: the range has none left.
    assert!(matches!(outcome, Outcome::Pending(_)), "{outcome:?}");
    assert!(w.store.claims_of("u1").await.expect("claims").is_empty());
    assert_eq!(
        w.elb.listeners().len(),
        1,
        "the foreign listener is untouched"
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_service_is_allocated_after_three_sequential_aws_round_trips() {
    // GIVEN every DynamoDB and ELBv2 call takes 100 ms, and a warm function (it has allocated
    // before, so it knows the pool's usage and the NLBs' DNS names)
    const RTT: Duration = Duration::from_millis(100);
    let pools = PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":["{NLB_A}"],"ports":"30000-30099"}}}}"#
    ))
    .expect("pools");
    let store = Arc::new(MemoryClaimStore::new().with_latency(RTT));
    swept(&store, &[NLB_A]);
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&[(NLB_A, "nlb-0.elb")]).with_latency(RTT));
    let reconciler = Reconciler::new("prod", "vpc-1", pools, store, elb.clone());
    let cluster = MemoryCluster::new();
    cluster.put_service(opted_in("warm", "u0"));
    reconciler
        .reconcile_service(&cluster, "games", "warm", None)
        .await
        .expect("warm-up");
    cluster.put_service(opted_in("room", "u1"));
    cluster.set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);

    // WHEN a new Service is allocated, and its annotations are looked at halfway through the
    // fourth round trip
    let started = tokio::time::Instant::now();
    let run = reconciler.reconcile_service(&cluster, "games", "room", None);
    let status = || {
        cluster
            .get("games", "room")
            .and_then(|s| s.annotations.get(annotations::STATUS).cloned())
    };
    let look = async {
        tokio::time::sleep(2 * RTT + RTT / 2).await;
        let before = status();
        tokio::time::sleep(RTT).await;
        (before, status())
    };
    let (outcome, (before, status)) = tokio::join!(run, look);
    outcome.expect("allocates");
    assert_eq!(
        before, None,
        "not allocated after two and a half round trips"
    );

    // THEN the Service was allocated after exactly three round trips (claim + target group,
    // listener, targets + record, then the annotations), and the run ended one later, when it
    // let its claims go for the next run
    assert_eq!(status.as_deref(), Some("Allocated"));
    assert_eq!(started.elapsed(), 4 * RTT);
}

/// A claim store whose first transaction succeeds but reports failure, as when the answer is
/// lost and the SDK's retry meets the first attempt's writes.
struct LostAnswer {
    inner: MemoryClaimStore,
    lost: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl ClaimStore for LostAnswer {
    async fn claims_of(
        &self,
        uid: &str,
    ) -> Result<Vec<crate::model::claims::Claim>, crate::model::claims::StoreError> {
        self.inner.claims_of(uid).await
    }
    async fn note_gone(
        &self,
        claims: &[crate::model::claims::Claim],
        since: Option<i64>,
    ) -> Result<(), crate::model::claims::StoreError> {
        self.inner.note_gone(claims, since).await
    }
    async fn note_applied(
        &self,
        applied: &[(crate::model::claims::Claim, String)],
    ) -> Result<(), crate::model::claims::StoreError> {
        self.inner.note_applied(applied).await
    }
    async fn claim(
        &self,
        claims: &[crate::model::claims::Claim],
        quota: crate::model::claims::NlbTerms,
    ) -> Result<(), crate::model::claims::ClaimError> {
        self.inner.claim(claims, quota).await?;
        if !self.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // The retry of the same transaction: its conditions fail on its own writes.
            return self.inner.claim(claims, quota).await;
        }
        Ok(())
    }
    async fn take_over(
        &self,
        claims: &[crate::model::claims::Claim],
        token: &crate::model::claims::RunToken,
        now: i64,
        stale_before: i64,
    ) -> Result<(), crate::model::claims::TakeOverError> {
        self.inner.take_over(claims, token, now, stale_before).await
    }
    async fn record_resources(
        &self,
        claim: &crate::model::claims::Claim,
        token: &crate::model::claims::RunToken,
        l: &str,
        t: &str,
        now: i64,
    ) -> Result<(), crate::model::claims::HoldError> {
        self.inner.record_resources(claim, token, l, t, now).await
    }
    async fn let_go(
        &self,
        claims: &[crate::model::claims::Claim],
        token: &crate::model::claims::RunToken,
    ) -> Result<(), crate::model::claims::HoldError> {
        self.inner.let_go(claims, token).await
    }
    async fn release(
        &self,
        claims: &[crate::model::claims::Claim],
        token: &crate::model::claims::RunToken,
    ) -> Result<(), crate::model::claims::ReleaseError> {
        self.inner.release(claims, token).await
    }
    async fn record_listing(
        &self,
        nlb: &str,
        listing: &crate::model::claims::NlbListing,
        made: bool,
    ) -> Result<(), crate::model::claims::StoreError> {
        self.inner.record_listing(nlb, listing, made).await
    }
    async fn nlb_usage(
        &self,
        arns: &[String],
    ) -> Result<Vec<crate::model::claims::NlbUsage>, crate::model::claims::StoreError> {
        self.inner.nlb_usage(arns).await
    }
    async fn port_holders(
        &self,
        nlb: &str,
    ) -> Result<Vec<crate::model::claims::PortHolder>, crate::model::claims::StoreError> {
        self.inner.port_holders(nlb).await
    }
    async fn key_hold(
        &self,
        key: &str,
    ) -> Result<Option<crate::model::claims::KeyHold>, crate::model::claims::StoreError> {
        self.inner.key_hold(key).await
    }
    async fn take_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<crate::model::claims::KeyHold, crate::model::claims::StoreError> {
        self.inner.take_key(key, owner).await
    }
    async fn offer_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
        offered_at: Option<i64>,
    ) -> Result<bool, crate::model::claims::StoreError> {
        self.inner.offer_key(key, owner, offered_at).await
    }
    async fn hand_over(
        &self,
        hold: &crate::model::claims::KeyHold,
        from: &[crate::model::claims::Claim],
        to: &[crate::model::claims::Claim],
    ) -> Result<bool, crate::model::claims::StoreError> {
        self.inner.hand_over(hold, from, to).await
    }
    async fn drop_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<(), crate::model::claims::StoreError> {
        self.inner.drop_key(key, owner).await
    }
    async fn identities(
        &self,
    ) -> Result<Vec<crate::model::claims::TableIdentity>, crate::model::claims::StoreError> {
        self.inner.identities().await
    }
    async fn record_identity(
        &self,
        identity: &crate::model::claims::TableIdentity,
    ) -> Result<crate::model::claims::TableIdentity, crate::model::claims::StoreError> {
        self.inner.record_identity(identity).await
    }
}

#[tokio::test]
async fn a_retried_claim_that_meets_its_own_writes_is_taken_as_made() {
    let pools = PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":["{NLB_A}"],"ports":"30000-30099"}}}}"#
    ))
    .expect("pools");
    let store = Arc::new(LostAnswer {
        inner: MemoryClaimStore::new(),
        lost: std::sync::atomic::AtomicBool::new(false),
    });
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&[(NLB_A, "nlb-0.elb")]));
    let reconciler = Reconciler::new("prod", "vpc-1", pools, store.clone(), elb.clone());
    let cluster = MemoryCluster::new();
    cluster.put_service(opted_in("room", "u1"));

    let outcome = reconciler
        .reconcile_service(&cluster, "games", "room", None)
        .await
        .expect("allocates");

    assert_eq!(
        outcome,
        Outcome::Allocated {
            listeners: 1,
            claimed: 1
        }
    );
    assert_eq!(store.inner.all_ports().len(), 1);
    assert_eq!(elb.listeners().len(), 1);
}

#[tokio::test]
async fn a_run_that_gives_up_hands_its_claims_over_at_once() {
    // GIVEN a reconciler that protects unfinished claims for two minutes
    let w = world(&[NLB_A], "30000-30099", 50);
    let patient = Reconciler::new(
        "prod",
        "vpc-1",
        w.reconciler.pools().clone(),
        w.store.clone(),
        w.elb.clone(),
    );
    w.cluster.put_service(opted_in("room", "u1"));
    w.elb.fail_next(
        "CreateListener",
        ElbError {
            operation: "CreateListener",
            message: "Throttling".into(),
            retryable: true,
            kind: ElbErrorKind::Other,
        },
    );

    // WHEN its run fails after claiming (an error, not a kill)
    patient
        .reconcile_service(&w.cluster, "games", "room", None)
        .await
        .expect_err("fails");

    // THEN the very next run takes the claims over, without waiting out the grace period
    patient
        .reconcile_service(&w.cluster, "games", "room", None)
        .await
        .expect("finishes");
    assert_eq!(w.store.all_ports().len(), 1);
    assert_eq!(w.elb.listeners().len(), 1);
}

#[tokio::test]
async fn an_event_naming_one_service_cannot_release_another() {
    // GIVEN an allocated Service
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("victim", "u-victim"));
    w.reconcile("victim").await.expect("allocates");
    w.cluster.put_service(opted_in("other", "u-other"));

    // WHEN an event names another Service but carries the victim's uid
    w.reconciler
        .reconcile_service(&w.cluster, "games", "other", Some("u-victim"))
        .await
        .expect("reconciles");
    w.reconciler
        .release_if_unwanted(&w.cluster, "games", "gone", "u-victim")
        .await
        .expect("nothing of that name");

    // THEN the victim keeps its listener
    assert_eq!(
        w.store.claims_of("u-victim").await.expect("claims").len(),
        1
    );
    assert_eq!(w.elb.listeners().len(), 2);
}

#[tokio::test]
async fn an_instance_measures_first_addresses_and_counts_outcomes() {
    // GIVEN a Service made 7 s ago and one with a bad mode
    let w = world(&[NLB_A], "30000-30099", 50);
    let created = crate::model::claims::now_epoch() - 7;
    w.cluster.put_service(ServiceState {
        created: Some(created),
        ..opted_in("room", "u1")
    });
    w.cluster.put_service(service(
        "bad",
        "u2",
        &[
            (AUTO_ASSIGN, "true"),
            (crate::contract::annotations::MODE, "sideways"),
        ],
        vec![port("game", 7777, "TCP", TargetPort::Number(8000))],
    ));

    // WHEN both are reconciled
    w.reconcile("room").await.expect("allocates");
    w.reconcile("bad").await.expect("rejects");

    // THEN the run measured the first address's wait and counted both outcomes
    let measured = w.reconciler.take_run_metrics();
    assert_eq!(measured.service_address_seconds.len(), 1);
    let waited = measured.service_address_seconds[0];
    assert!((7..=9).contains(&waited), "{waited}");
    assert_eq!(
        (measured.allocations_made, measured.allocations_refused),
        (1, 1)
    );
    // AND taking them empties them; a reconcile with nothing new adds no latency
    assert_eq!(w.reconciler.take_run_metrics(), RunMetrics::default());
    w.reconcile("room").await.expect("nothing to do");
    assert!(
        w.reconciler
            .take_run_metrics()
            .service_address_seconds
            .is_empty()
    );

    // WHEN it opts out THEN its release is counted
    let mut out = w.cluster.get("games", "room").expect("the Service");
    out.annotations.insert(AUTO_ASSIGN.into(), "false".into());
    w.cluster.put_service(out);
    w.reconcile("room").await.expect("releases");
    assert_eq!(w.reconciler.take_run_metrics().releases, 1);
}
