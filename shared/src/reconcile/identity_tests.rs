//! The bounded sweep against in-memory doubles: it deletes only in a table that is provably
//! this cluster's and stack's, and at most `max_deletions` times a run.

use std::sync::Arc;
use std::time::Duration;

use super::{DEFAULT_STACK_ID, Error, Ownership, Reconciler, SweepLimits, SweepReport};
use crate::adapters::memory::{
    MEMORY_CLUSTER_UID, MemoryClaimStore, MemoryCluster, MemoryLoadBalancing,
};
use crate::contract::annotations::AUTO_ASSIGN;
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::{ListenerKey, ServicePortSpec, ServiceState, TargetPort};
use crate::model::claims::{ClaimStore, Owner, TableIdentity};
use crate::model::elb::{LoadBalancing, ResourceTags, TargetGroupSpec, target_group_name};
use crate::model::pool::PoolSet;

const NLB: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/a/1";

fn pools() -> PoolSet {
    PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":["{NLB}"],"ports":"30000-30099","listenerQuota":50}}}}"#
    ))
    .expect("pools")
}

/// The functions of one stack: a claims table and a reconciler on it, sharing ELBv2 and the
/// cluster with any other stack of the test.
fn functions(elb: &Arc<MemoryLoadBalancing>) -> (Arc<MemoryClaimStore>, Reconciler) {
    let store = Arc::new(MemoryClaimStore::new());
    let reconciler = on_table(&store, elb);
    (store, reconciler)
}

/// A cold-started reconciler on an existing table.
fn on_table(store: &Arc<MemoryClaimStore>, elb: &Arc<MemoryLoadBalancing>) -> Reconciler {
    Reconciler::new("prod", "vpc-1", pools(), store.clone(), elb.clone())
        .with_claim_grace(Duration::ZERO)
}

/// The Service `room-{i}` disappears at once (its finalizer removed by hand, say) and no
/// event is delivered: only the sweep can find its claims.
fn vanish(cluster: &MemoryCluster, i: usize) {
    let name = format!("room-{i}");
    cluster.put_service(service(&name, &format!("u{i}")));
    cluster.delete_service("games", &name);
}

fn service(name: &str, uid: &str) -> ServiceState {
    ServiceState {
        created: None,
        key: key_of(name),
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

fn key_of(name: &str) -> ServiceKey {
    ServiceKey {
        cluster: "prod".into(),
        namespace: "games".into(),
        name: name.into(),
    }
}

fn elb() -> Arc<MemoryLoadBalancing> {
    Arc::new(MemoryLoadBalancing::with_nlbs(&[(NLB, "nlb.elb")]))
}

async fn allocate(reconciler: &Reconciler, cluster: &MemoryCluster, count: usize) {
    for i in 0..count {
        let name = format!("room-{i}");
        cluster.put_service(service(&name, &format!("u{i}")));
        reconciler
            .reconcile_service(cluster, "games", &name, None)
            .await
            .expect("allocates");
    }
}

async fn sweep(
    reconciler: &Reconciler,
    cluster: &MemoryCluster,
    store: &MemoryClaimStore,
    max_deletions: usize,
) -> SweepReport {
    let limits = SweepLimits {
        max_deletions,
        ..SweepLimits::default()
    };
    reconciler
        .sweep(cluster, store, limits)
        .await
        .expect("sweeps")
}

/// A listener and target group tagged for a Service that is gone, with no claim: what a run
/// that stopped midway leaves. Its port is outside the pool's range, so no allocation of the
/// test can have taken it.
async fn leave_leak(elb: &MemoryLoadBalancing, i: u16) {
    let owner = Owner {
        key: key_of(&format!("gone-{i}")),
        uid: format!("u-gone-{i}"),
        pod: None,
    };
    let listener = ListenerKey::new(7777, ListenerProtocol::Tcp);
    let tags = ResourceTags {
        owner: owner.clone(),
        pool: "default".into(),
        listener: listener.clone(),
    };
    let spec = TargetGroupSpec {
        attributes: Default::default(),
        name: target_group_name(&owner, &listener),
        protocol: ListenerProtocol::Tcp,
        port: 7777,
        vpc_id: "vpc-1".into(),
        health_check: Default::default(),
        tags: tags.clone(),
    };
    let tg = elb.ensure_target_group(&spec).await.expect("tg").arn;
    elb.create_listener(NLB, 31000 + i, ListenerProtocol::Tcp, None, &tg, &tags)
        .await
        .expect("listener");
}

#[tokio::test]
async fn the_first_allocation_records_whose_table_it_is() {
    // GIVEN a fresh table and NLBs with no listener of this cluster
    let elb = elb();
    let (store, reconciler) = functions(&elb);
    let cluster = MemoryCluster::new();

    // WHEN the first Service is allocated
    allocate(&reconciler, &cluster, 1).await;

    // THEN the table records this cluster's kube-system uid and this stack
    assert_eq!(
        store.identity_of("prod").await.expect("reads"),
        Some(TableIdentity {
            cluster_name: "prod".into(),
            cluster_uid: MEMORY_CLUSTER_UID.into(),
            stack_id: DEFAULT_STACK_ID.into(),
        })
    );
}

#[tokio::test]
async fn an_empty_table_facing_fifty_live_listeners_deletes_nothing() {
    // GIVEN 50 Services allocated with one table
    let elb = elb();
    let cluster = MemoryCluster::new();
    let (_, first) = functions(&elb);
    allocate(&first, &cluster, 50).await;
    assert_eq!(elb.listeners().len(), 50);

    // WHEN a sweep runs against a fresh, empty table
    let (empty, replaced) = functions(&elb);
    let report = sweep(&replaced, &cluster, &empty, 20).await;

    // THEN it deletes nothing, records no identity, claims nothing, and says why
    let why = report.deletions_blocked.clone().expect("blocked");
    assert!(
        why.contains("50 listener(s)") && why.contains("emptied or replaced"),
        "{why}"
    );
    assert_eq!(report.leaked_listeners_deleted, 0);
    assert_eq!(report.leaked_target_groups_deleted, 0);
    assert_eq!(report.services_reconciled, 0, "a blocked run only reports");
    assert!(report.deletions_left >= 50, "{report:?}");
    assert_eq!(elb.listeners().len(), 50);
    assert_eq!(elb.target_groups().len(), 50);
    assert_eq!(empty.identity_of("prod").await.expect("reads"), None);
    assert!(empty.all_claims().is_empty());
}

#[tokio::test]
async fn an_allocation_into_an_empty_table_does_not_unblock_the_sweep() {
    // GIVEN 5 live listeners of a table that was replaced by an empty one
    let elb = elb();
    let cluster = MemoryCluster::new();
    let (_, first) = functions(&elb);
    allocate(&first, &cluster, 5).await;
    let empty = Arc::new(MemoryClaimStore::new());
    // Another port range, so the new claim cannot land on an old listener's port (that is
    // a setup error of its own, tested elsewhere).
    let other_ports = PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":["{NLB}"],"ports":"30100-30199","listenerQuota":50}}}}"#
    ))
    .expect("pools");
    let replaced = Reconciler::new("prod", "vpc-1", other_ports, empty.clone(), elb.clone());

    // WHEN a new Service is allocated with the new table, then the sweep runs
    cluster.put_service(service("new", "u-new"));
    replaced
        .reconcile_service(&cluster, "games", "new", None)
        .await
        .expect("allocates");
    let report = sweep(&replaced, &cluster, &empty, 20).await;

    // THEN the new claim did not make the table look like the whole world: nothing deleted
    assert!(report.deletions_blocked.is_some(), "{report:?}");
    assert_eq!(empty.identity_of("prod").await.expect("reads"), None);
    assert_eq!(elb.listeners().len(), 6);
}

#[tokio::test]
async fn a_cluster_of_the_same_name_with_another_identity_deletes_nothing() {
    // GIVEN a table recorded by a cluster named prod, whose Services hold 5 listeners
    let elb = elb();
    let old_cluster = MemoryCluster::new();
    let (store, old) = functions(&elb);
    allocate(&old, &old_cluster, 5).await;

    // WHEN a cluster rebuilt under the same name (another kube-system uid, none of those
    // Services) sweeps with the same table
    let rebuilt = MemoryCluster::new();
    rebuilt.set_cluster_uid("rebuilt-kube-system-uid");
    let new = on_table(&store, &elb);
    let report = sweep(&new, &rebuilt, &store, 20).await;

    // THEN nothing is released or deleted, and the report names both identities
    let why = report.deletions_blocked.clone().expect("blocked");
    assert!(
        why.contains(MEMORY_CLUSTER_UID) && why.contains("rebuilt-kube-system-uid"),
        "{why}"
    );
    assert_eq!(report.orphan_claims_released, 0);
    assert_eq!(report.deletions_left, 5, "five orphan claims left");
    assert_eq!(store.all_claims().len(), 5);
    assert_eq!(elb.listeners().len(), 5);
}

#[tokio::test]
async fn no_port_is_claimed_in_another_stacks_table() {
    // GIVEN a table recorded by another stack of this cluster
    let elb = elb();
    let cluster = MemoryCluster::new();
    let (store, reconciler) = functions(&elb);
    store.set_identity(Some(TableIdentity {
        cluster_name: "prod".into(),
        cluster_uid: MEMORY_CLUSTER_UID.into(),
        stack_id: "arn:aws:cloudformation:us-west-2:1:stack/other/1".into(),
    }));
    cluster.put_service(service("room", "u1"));

    // WHEN a Service asks for a port, and the sweep runs
    let allocated = reconciler
        .reconcile_service(&cluster, "games", "room", None)
        .await;
    let ownership = reconciler.check_ownership(&cluster).await.expect("checks");

    // THEN the allocation is refused as a setup error, nothing is claimed, and the table is
    // another's
    assert!(
        matches!(&allocated, Err(Error::Setup(m)) if m.contains("stack/other/1")),
        "{allocated:?}"
    );
    assert!(store.all_claims().is_empty());
    assert!(matches!(ownership, Ownership::Foreign(_)), "{ownership:?}");
}

#[tokio::test]
async fn an_old_table_whose_services_are_all_gone_proves_nothing() {
    // GIVEN a table with claims and no identity (made before identities were recorded), none
    // of whose Services exists in the cluster
    let elb = elb();
    let old_cluster = MemoryCluster::new();
    let (store, old) = functions(&elb);
    allocate(&old, &old_cluster, 3).await;
    store.set_identity(None);
    let rebuilt = MemoryCluster::new();
    rebuilt.set_cluster_uid("rebuilt");

    // WHEN the sweep runs
    let report = sweep(&old, &rebuilt, &store, 20).await;

    // THEN it releases nothing and records nothing
    let why = report.deletions_blocked.clone().expect("blocked");
    assert!(why.contains("another cluster's"), "{why}");
    assert_eq!(store.all_claims().len(), 3);
    assert_eq!(store.identity_of("prod").await.expect("reads"), None);
}

#[tokio::test]
async fn a_table_in_use_before_identities_existed_is_adopted() {
    // GIVEN a table with claims of live Services and no identity (an upgrade)
    let elb = elb();
    let cluster = MemoryCluster::new();
    let (store, reconciler) = functions(&elb);
    allocate(&reconciler, &cluster, 3).await;
    store.set_identity(None);
    let fresh_instance = on_table(&store, &elb);

    // WHEN the sweep runs after one Service vanished while no event was delivered
    vanish(&cluster, 0);
    let report = sweep(&fresh_instance, &cluster, &store, 20).await;

    // THEN the table is this cluster's: recorded, and the gone Service released
    assert_eq!(report.deletions_blocked, None);
    assert!(store.identity_of("prod").await.expect("reads").is_some());
    assert_eq!(report.orphan_claims_released, 1);
    assert_eq!(elb.listeners().len(), 2);
}

#[tokio::test]
async fn deletions_are_capped_per_run_and_later_runs_finish() {
    // GIVEN 7 leaked listener and target group pairs in this cluster's own table
    let elb = elb();
    let cluster = MemoryCluster::new();
    let (store, reconciler) = functions(&elb);
    allocate(&reconciler, &cluster, 1).await;
    for i in 0..7 {
        leave_leak(&elb, i).await;
    }

    // WHEN the sweep runs with a cap of 3
    let first = sweep(&reconciler, &cluster, &store, 3).await;

    // THEN it deletes exactly 3 and counts the rest as left
    assert_eq!(first.deletions_blocked, None);
    assert_eq!(
        first.leaked_listeners_deleted + first.leaked_target_groups_deleted,
        3
    );
    assert!(first.deletions_left >= 4, "{first:?}");

    // AND later runs, never more than 3 each, finish the rest
    let mut runs = 1;
    while elb.listeners().len() > 1 || elb.target_groups().len() > 1 {
        let r = sweep(&reconciler, &cluster, &store, 3).await;
        assert!(
            r.leaked_listeners_deleted + r.leaked_target_groups_deleted <= 3,
            "{r:?}"
        );
        runs += 1;
        assert!(runs <= 5, "14 deletions take 5 runs of 3");
    }
    assert_eq!(runs, 5);
    let last = sweep(&reconciler, &cluster, &store, 3).await;
    assert_eq!(last.deletions_left, 0, "{last:?}");
    assert_eq!(
        elb.listeners().len(),
        1,
        "the live Service keeps its listener"
    );
}

#[tokio::test]
async fn releasing_the_claims_of_gone_services_counts_against_the_cap() {
    // GIVEN 5 allocated Services that vanished while no event was delivered
    let elb = elb();
    let cluster = MemoryCluster::new();
    let (store, reconciler) = functions(&elb);
    allocate(&reconciler, &cluster, 5).await;
    for i in 0..5 {
        vanish(&cluster, i);
    }

    // WHEN the sweep runs with a cap of 2
    let report = sweep(&reconciler, &cluster, &store, 2).await;

    // THEN two are released, three left for later
    assert_eq!(report.orphan_claims_released, 2);
    assert_eq!(report.deletions_left, 3);
    assert_eq!(store.all_claims().len(), 3);
    assert_eq!(elb.listeners().len(), 3);
}

#[tokio::test]
async fn a_sweep_that_cannot_read_the_cluster_identity_fails_and_deletes_nothing() {
    // GIVEN a leak in this cluster's own table, and kube-system unreadable (RBAC not applied)
    let elb = elb();
    let cluster = MemoryCluster::new();
    let (store, _) = functions(&elb);
    allocate(&on_table(&store, &elb), &cluster, 1).await;
    leave_leak(&elb, 0).await;
    let cold = on_table(&store, &elb);
    cluster.fail_next(
        "cluster_uid",
        crate::model::cluster::KubeError {
            action: "get Namespace kube-system".into(),
            message: "forbidden (403 Forbidden)".into(),
            retryable: false,
        },
    );

    // WHEN a cold-started sweep runs
    let result = cold
        .sweep(&cluster, store.as_ref(), SweepLimits::default())
        .await;

    // THEN it fails naming what it could not read, and the leak is still there
    assert!(
        matches!(&result, Err(Error::Kube(e)) if e.action.contains("kube-system")),
        "{result:?}"
    );
    assert_eq!(elb.listeners().len(), 2);
}
