//! The sweep against in-memory doubles: leaks found and removed, owned things kept.

use std::sync::Arc;
use std::time::Duration;

use super::{DEFAULT_STACK_ID, Reconciler, SweepLimits};
use crate::adapters::memory::{
    MEMORY_CLUSTER_UID, MemoryClaimStore, MemoryCluster, MemoryLoadBalancing,
};
use crate::contract::annotations::{AUTO_ASSIGN, STATUS};
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::{ListenerKey, ServicePortSpec, ServiceState, TargetPort};
use crate::model::claims::{Claim, ClaimState, ClaimStore, Owner, TableIdentity};
use crate::model::elb::{LoadBalancing, ResourceTags, TargetGroupSpec, target_group_name};
use crate::model::pool::PoolSet;

const NLB: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/a/1";

pub(super) struct World {
    pub(super) store: Arc<MemoryClaimStore>,
    pub(super) elb: Arc<MemoryLoadBalancing>,
    pub(super) cluster: MemoryCluster,
    pub(super) reconciler: Reconciler,
}

pub(super) fn world(quota: u32) -> World {
    let pools = PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":["{NLB}"],"ports":"30000-30099","listenerQuota":{quota}}}}}"#
    ))
    .expect("pools");
    let store = Arc::new(MemoryClaimStore::new());
    // As the first allocation of this cluster and stack recorded it.
    store.set_identity(Some(own_identity()));
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&[(NLB, "nlb.elb")]));
    let reconciler = Reconciler::new("prod", "vpc-1", pools, store.clone(), elb.clone())
        .with_claim_grace(Duration::ZERO);
    World {
        store,
        elb,
        cluster: MemoryCluster::new(),
        reconciler,
    }
}

fn own_identity() -> TableIdentity {
    TableIdentity {
        cluster_name: "prod".into(),
        cluster_uid: MEMORY_CLUSTER_UID.into(),
        stack_id: DEFAULT_STACK_ID.into(),
    }
}

pub(super) fn service(name: &str, uid: &str) -> ServiceState {
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
            name: Some("game".into()),
            port: 7777,
            protocol: "TCP".into(),
            target_port: TargetPort::Number(7777),
        }],
        external_name: false,
        selector: Default::default(),
        pod: None,
    }
}

pub(super) fn owner(name: &str, uid: &str, cluster: &str) -> Owner {
    Owner {
        key: ServiceKey {
            cluster: cluster.into(),
            namespace: "games".into(),
            name: name.into(),
        },
        uid: uid.into(),
        pod: None,
    }
}

pub(super) fn key() -> ListenerKey {
    ListenerKey::new(7777, ListenerProtocol::Tcp)
}

impl World {
    pub(super) async fn sweep(&self) -> super::SweepReport {
        self.reconciler
            .sweep(&self.cluster, self.store.as_ref(), SweepLimits::default())
            .await
            .expect("sweeps")
    }

    /// A target group and listener tagged for `owner`, as a run that stopped midway leaves them.
    pub(super) async fn leave_resources(&self, owner: &Owner, port: u16) -> (String, String) {
        let tags = ResourceTags {
            owner: owner.clone(),
            pool: "default".into(),
            listener: key(),
        };
        let spec = TargetGroupSpec {
            attributes: Default::default(),
            name: target_group_name(owner, &key()),
            protocol: ListenerProtocol::Tcp,
            port: 7777,
            vpc_id: "vpc-1".into(),
            health_check: Default::default(),
            tags: tags.clone(),
        };
        let tg = self.elb.ensure_target_group(&spec).await.expect("tg").arn;
        let listener = self
            .elb
            .create_listener(NLB, port, ListenerProtocol::Tcp, None, &tg, &tags)
            .await
            .expect("listener");
        (tg, listener)
    }

    pub(super) fn claim(&self, owner: &Owner, port: u16, state: ClaimState) {
        self.store.insert_unchecked(Claim {
            owner: owner.clone(),
            key: key(),
            port_name: "game".into(),
            protocol: ListenerProtocol::Tcp,
            service_port: 7777,
            pool: "default".into(),
            nlb_arn: NLB.into(),
            port,
            state,
            listener_arn: None,
            target_group_arn: None,
            claimed_at: 0,
            token: String::new(),
            held_at: 0,
            gone_since: None,
            applied: None,
            claim_key: None,
        });
    }
}

#[tokio::test]
async fn releases_the_claims_of_a_service_that_is_gone() {
    // GIVEN claims and resources of a Service deleted while no function ran
    let w = world(50);
    let gone = owner("gone", "u-gone", "prod");
    w.leave_resources(&gone, 30001).await;
    w.claim(&gone, 30001, ClaimState::Active);

    let report = w.sweep().await;

    assert_eq!(report.orphan_claims_released, 1);
    assert!(w.store.all_claims().is_empty());
    assert!(w.elb.listeners().is_empty() && w.elb.target_groups().is_empty());
}

#[tokio::test]
async fn deletes_unclaimed_listeners_and_target_groups_of_this_cluster_only() {
    let w = world(50);
    // A stopped run's leftovers, with no claim.
    w.leave_resources(&owner("gone", "u-gone", "prod"), 30002)
        .await;
    // Another cluster's, and a live Service's group it is about to claim for.
    w.leave_resources(&owner("x", "u-other", "other-cluster"), 30003)
        .await;
    w.cluster.put_service(service("live", "u-live"));
    let live = owner("live", "u-live", "prod");
    let tags = ResourceTags {
        owner: live.clone(),
        pool: "default".into(),
        listener: key(),
    };
    let spec = TargetGroupSpec {
        attributes: Default::default(),
        name: target_group_name(&live, &key()),
        protocol: ListenerProtocol::Tcp,
        port: 7777,
        vpc_id: "vpc-1".into(),
        health_check: Default::default(),
        tags,
    };
    w.elb.ensure_target_group(&spec).await.expect("tg");

    let report = w.sweep().await;

    assert_eq!(report.leaked_listeners_deleted, 1);
    assert_eq!(report.leaked_target_groups_deleted, 1);
    let listener_ports: Vec<u16> = w.elb.listeners().iter().map(|l| l.info.port).collect();
    assert!(
        listener_ports.contains(&30003),
        "another cluster's listener is untouched"
    );
    // The live Service was reconciled by the sweep and now holds its listener.
    assert_eq!(w.store.claims_of("u-live").await.expect("claims").len(), 1);
    assert_eq!(
        w.elb.target_groups().len(),
        2,
        "the live Service's group and the other cluster's"
    );
}

#[tokio::test]
async fn finishes_a_claim_left_unfinished() {
    // GIVEN a live Service whose allocation stopped right after its claim
    let w = world(50);
    w.cluster.put_service(service("room", "u1"));
    w.claim(&owner("room", "u1", "prod"), 30004, ClaimState::Claimed);

    w.sweep().await;

    let claims = w.store.claims_of("u1").await.expect("claims");
    assert_eq!(claims[0].state, ClaimState::Active);
    assert_eq!(claims[0].port, 30004, "the claimed port is kept");
    assert_eq!(w.elb.listeners().len(), 1);
}

#[tokio::test]
async fn retries_pending_services_when_a_port_frees() {
    let w = world(1);
    w.cluster.put_service(service("first", "u1"));
    w.cluster.put_service(service("second", "u2"));
    w.sweep().await;
    let pending = [
        &w.cluster.get("games", "first"),
        &w.cluster.get("games", "second"),
    ]
    .iter()
    .filter(|s| {
        s.as_ref()
            .and_then(|s| s.annotations.get(STATUS))
            .is_some_and(|st| st.starts_with("Pending"))
    })
    .count();
    assert_eq!(pending, 1, "one fits, one waits");

    // WHEN the allocated one is deleted while no event is delivered
    let holder = ["first", "second"]
        .into_iter()
        .find(|n| {
            w.cluster
                .get("games", n)
                .and_then(|s| s.annotations.get(STATUS).cloned())
                .as_deref()
                == Some("Allocated")
        })
        .expect("one allocated");
    w.cluster.delete_service("games", holder);
    let report = w.sweep().await;

    // THEN the sweep released it and gave the port to the waiting one
    assert!(report.pending_retried >= 1);
    let waiting = if holder == "first" { "second" } else { "first" };
    assert_eq!(
        w.cluster
            .get("games", waiting)
            .and_then(|s| s.annotations.get(STATUS).cloned())
            .as_deref(),
        Some("Allocated")
    );
    let use_ = &report.pools[0];
    assert_eq!((use_.used, use_.capacity), (1, 1));
}

#[tokio::test]
async fn repairs_a_listener_deleted_by_hand() {
    let w = world(50);
    w.cluster.put_service(service("room", "u1"));
    w.sweep().await;
    let arn = w.elb.listeners()[0].info.arn.clone();
    w.elb.remove_listener(&arn);

    w.sweep().await;

    assert_eq!(w.elb.listeners().len(), 1);
}

#[tokio::test]
async fn reconciles_a_bounded_share_per_run_and_comes_round() {
    let w = world(50);
    for i in 0..5 {
        w.cluster
            .put_service(service(&format!("room-{i}"), &format!("u{i}")));
    }
    let limits = SweepLimits {
        services_per_run: 2,
        ..SweepLimits::default()
    };
    let mut seen = 0;
    for _ in 0..3 {
        let report = w
            .reconciler
            .sweep(&w.cluster, w.store.as_ref(), limits)
            .await
            .expect("sweeps");
        assert!(report.services_reconciled <= 2, "{report:?}");
        seen += report.services_reconciled;
    }
    assert_eq!(seen, 6, "three runs of two");
    assert_eq!(w.store.all_claims().len(), 5, "every Service was reached");
}

#[tokio::test]
async fn the_sweep_counts_pending_services_and_ages_the_oldest() {
    // GIVEN two Pending Services made 100 s and 30 s ago, and an allocated one
    let w = world(50);
    let now = crate::model::claims::now_epoch();
    for (name, age) in [("old", 100), ("new", 30)] {
        let mut s = service(name, &format!("u-{name}"));
        s.created = Some(now - age);
        s.annotations.insert(
            STATUS.into(),
            "Pending: pool default has no NLB with room".into(),
        );
        w.cluster.put_service(s);
    }
    let mut fine = service("fine", "u-fine");
    fine.created = Some(now - 1_000);
    fine.annotations.insert(STATUS.into(), "Ready".into());
    w.cluster.put_service(fine);

    // WHEN the sweep runs THEN it reports both, aged by the older
    let report = w.sweep().await;
    assert_eq!(report.services_pending, 2);
    assert!(
        (100..=102).contains(&report.oldest_pending_seconds),
        "{}",
        report.oldest_pending_seconds
    );
}
