//! Two clusters' stacks on one claims table and pool (blue/green), against the in-memory
//! doubles: no port twice, each sweep keeps the other's, a stack not told of the other claims
//! nothing, and a room moved from one cluster to the other by its claim key keeps its address.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{NLB_A, World, opted_in, slice, test_targets, world};
use super::{Error, Outcome, Reconciler, SweepLimits, SweepReport};
use crate::adapters::memory::MemoryCluster;
use crate::contract::annotations::{
    ADDRESS, ALLOCATED_PORT, CLAIM_KEY, LISTENER_ARN, NETWORK_DISABLED, STATUS,
};
use crate::contract::service_model::ServiceState;
use crate::model::claims::{ClaimStore, HAND_OVER_WINDOW_SECONDS, now_epoch};
use crate::model::elb::{TAG_CLUSTER, TAG_SERVICE_UID};
use crate::model::pool::PoolSet;

/// The second cluster: its name, and its `kube-system` uid.
const GREEN: &str = "green";

/// Blue ("prod", the world's cluster) and green, both stacks told of the other.
struct TwoClusters {
    w: World,
    blue: Reconciler,
    green: Reconciler,
    green_cluster: MemoryCluster,
}

fn reconciler(name: &str, w: &World, shared: &[&str]) -> Reconciler {
    let pools = PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":["{NLB_A}"],"ports":"30000-30099","listenerQuota":50}}}}"#
    ))
    .expect("pools");
    Reconciler::new(name, "vpc-1", pools, w.store.clone(), w.elb.clone())
        .with_claim_grace(Duration::ZERO)
        .with_target_policy(test_targets())
        .with_shared_clusters(shared.iter().map(|s| (*s).to_owned()).collect())
}

fn two_clusters() -> TwoClusters {
    let w = world(&[NLB_A], "30000-30099", 50);
    let green_cluster = MemoryCluster::new();
    green_cluster.set_cluster_uid("green-kube-system");
    TwoClusters {
        blue: reconciler("prod", &w, &[GREEN]),
        green: reconciler(GREEN, &w, &["prod"]),
        green_cluster,
        w,
    }
}

/// Service `name` of cluster `cluster` (uid `uid`), opted in, with `extra` annotations.
fn room(cluster: &str, name: &str, uid: &str, extra: &[(&str, &str)]) -> ServiceState {
    let mut s = opted_in(name, uid);
    s.key.cluster = cluster.to_owned();
    for (k, v) in extra {
        s.annotations.insert((*k).into(), (*v).into());
    }
    s
}

async fn sweep(r: &Reconciler, cluster: &MemoryCluster, w: &World) -> SweepReport {
    let limits = SweepLimits {
        max_deletions: 20,
        ..SweepLimits::default()
    };
    r.sweep(cluster, w.store.as_ref(), limits)
        .await
        .expect("sweeps")
}

impl TwoClusters {
    async fn blue_pass(&self, name: &str) -> Result<Outcome, Error> {
        self.blue
            .reconcile_service(&self.w.cluster, "games", name, None)
            .await
    }

    async fn green_pass(&self, name: &str) -> Result<Outcome, Error> {
        self.green
            .reconcile_service(&self.green_cluster, "games", name, None)
            .await
    }

    fn green_annotation(&self, name: &str, key: &str) -> Option<String> {
        self.green_cluster
            .get("games", name)?
            .annotations
            .get(key)
            .cloned()
    }

    /// Sets (or removes) an annotation of blue's Service `name`.
    fn annotate_blue(&self, name: &str, key: &str, value: Option<&str>) {
        let mut svc = self.w.cluster.get("games", name).expect("the Service");
        match value {
            Some(v) => svc.annotations.insert(key.into(), v.into()),
            None => svc.annotations.remove(key),
        };
        self.w.cluster.put_service(svc);
    }
}

#[tokio::test]
async fn two_clusters_share_a_pool_without_a_double_port_and_sweep_only_their_own() {
    // GIVEN blue and green, each with three rooms on the one NLB
    let t = two_clusters();
    for i in 0..3 {
        let name = format!("room-{i}");
        t.w.cluster
            .put_service(room("prod", &name, &format!("b{i}"), &[]));
        t.green_cluster
            .put_service(room(GREEN, &name, &format!("g{i}"), &[]));
        t.blue_pass(&name).await.expect("blue allocates");
        t.green_pass(&name).await.expect("green allocates");
    }

    // THEN six listeners on six ports, and each cluster's identity recorded
    let listeners = t.w.elb.listeners();
    let ports: std::collections::BTreeSet<u16> = listeners.iter().map(|l| l.info.port).collect();
    assert_eq!((listeners.len(), ports.len()), (6, 6));
    let mut clusters: Vec<String> =
        t.w.store
            .identities()
            .await
            .expect("reads")
            .into_iter()
            .map(|i| i.cluster_name)
            .collect();
    clusters.sort();
    assert_eq!(clusters, ["green", "prod"]);

    // WHEN each sweeps (green's Services are not in blue's cluster, and the other way round)
    let blue = sweep(&t.blue, &t.w.cluster, &t.w).await;
    let green = sweep(&t.green, &t.green_cluster, &t.w).await;

    // THEN neither deletes or releases anything
    for report in [&blue, &green] {
        assert_eq!(report.deletions_blocked, None, "{report:?}");
        assert_eq!(report.orphan_claims_released, 0);
        assert_eq!(report.leaked_listeners_deleted, 0);
    }
    assert_eq!(t.w.elb.listeners().len(), 6);

    // WHEN a blue room vanishes without an event
    t.w.cluster.delete_service("games", "room-0");
    let mut gone = t.w.cluster.get("games", "room-0").expect("terminating");
    gone.finalizers.clear();
    t.w.cluster.put_service(gone);
    t.w.cluster.delete_service("games", "room-0");
    let blue = sweep(&t.blue, &t.w.cluster, &t.w).await;

    // THEN blue's sweep releases it, and only it
    assert_eq!(blue.orphan_claims_released, 1, "{blue:?}");
    let left = t.w.elb.listeners();
    assert_eq!(left.len(), 5);
    let green_left = left
        .iter()
        .filter(|l| l.tags.get(TAG_CLUSTER).map(String::as_str) == Some(GREEN))
        .count();
    assert_eq!(green_left, 3);
}

#[tokio::test]
async fn a_stack_not_told_of_the_other_cluster_claims_nothing_in_its_table() {
    // GIVEN blue's table in use, and a green stack without SHARED_CLUSTERS
    let t = two_clusters();
    t.w.cluster.put_service(room("prod", "room", "b1", &[]));
    t.blue_pass("room").await.expect("blue allocates");
    let alone = reconciler(GREEN, &t.w, &[]);
    t.green_cluster.put_service(room(GREEN, "room", "g1", &[]));

    // WHEN green allocates
    let refused = alone
        .reconcile_service(&t.green_cluster, "games", "room", None)
        .await;

    // THEN it is a setup error naming blue's record and SHARED_CLUSTERS; nothing claimed
    assert!(
        matches!(&refused, Err(Error::Setup(m)) if m.contains("cluster prod") && m.contains("SHARED_CLUSTERS")),
        "{refused:?}"
    );
    assert_eq!(t.w.store.all_claims().len(), 1);
}

#[tokio::test]
async fn a_room_moves_to_the_other_cluster_by_its_claim_key_keeping_its_address() {
    // GIVEN blue's room "arena" with claim key arena-1, allocated, two pods
    let t = two_clusters();
    let key = [(CLAIM_KEY, "arena-1")];
    t.w.cluster.put_service(room("prod", "arena", "b1", &key));
    t.w.cluster
        .set_slices("games", "arena", vec![slice("game", 8000, &["10.0.1.1"])]);
    t.blue_pass("arena").await.expect("blue allocates");
    let address = t.w.annotation("arena", ADDRESS).expect("an address");
    let listener = t.w.annotation("arena", LISTENER_ARN).expect("a listener");

    // WHEN green's "arena" names the same key while blue's still holds it
    t.green_cluster
        .put_service(room(GREEN, "arena", "g1", &key));
    t.green_cluster
        .set_slices("games", "arena", vec![slice("game", 8000, &["10.0.2.2"])]);
    let waiting = t.green_pass("arena").await.expect("green waits");

    // THEN green waits, saying who holds it; it made nothing
    assert!(
        matches!(waiting, Outcome::Pending(ref r) if r.contains("held by Service games/arena of cluster prod")),
        "{waiting:?}"
    );
    assert_eq!(t.w.elb.listeners().len(), 1);
    assert_eq!(t.w.elb.target_groups().len(), 1);

    // WHEN blue's room is network-disabled, then green tries again
    t.annotate_blue("arena", NETWORK_DISABLED, Some("true"));
    t.blue_pass("arena").await.expect("blue disables");
    let modifies = t.w.elb.calls("ModifyListener");
    t.green_pass("arena").await.expect("green takes over");

    // THEN green has blue's listener, port and address, pointed at its own group in one
    // ModifyListener, tagged as green's
    assert_eq!(t.green_annotation("arena", ADDRESS), Some(address.clone()));
    assert_eq!(
        t.green_annotation("arena", LISTENER_ARN),
        Some(listener.clone())
    );
    assert_eq!(t.w.elb.calls("ModifyListener") - modifies, 1);
    let l =
        t.w.elb
            .listeners()
            .into_iter()
            .find(|l| l.info.arn == listener)
            .expect("the listener");
    assert_eq!(l.tags.get(TAG_CLUSTER).map(String::as_str), Some(GREEN));
    assert_eq!(l.tags.get(TAG_SERVICE_UID).map(String::as_str), Some("g1"));
    let group =
        t.w.elb
            .target_groups()
            .into_iter()
            .find(|g| Some(&g.info.arn) == l.info.target_group_arn.as_ref())
            .expect("its group");
    assert_eq!(group.tags.get(TAG_CLUSTER).map(String::as_str), Some(GREEN));
    let ips: Vec<String> = group.targets.iter().map(|t| t.ip.to_string()).collect();
    assert_eq!(ips, ["10.0.2.2"]);

    // AND blue's room, asked again, waits without an address; its sweep deletes its old group
    // and nothing of green's; green's sweep deletes nothing
    let blue_now = t.blue_pass("arena").await.expect("blue waits");
    assert!(matches!(blue_now, Outcome::Pending(_)), "{blue_now:?}");
    assert_eq!(t.w.annotation("arena", ADDRESS), None);
    let blue = sweep(&t.blue, &t.w.cluster, &t.w).await;
    assert_eq!(blue.leaked_listeners_deleted, 0, "{blue:?}");
    let green = sweep(&t.green, &t.green_cluster, &t.w).await;
    assert_eq!(
        (green.leaked_listeners_deleted, green.orphan_claims_released),
        (0, 0),
        "{green:?}"
    );
    assert_eq!(t.w.elb.listeners().len(), 1);
    assert_eq!(
        t.green_annotation("arena", ALLOCATED_PORT),
        address.rsplit(':').next().map(str::to_owned)
    );
}

#[tokio::test]
async fn a_deleted_holder_offers_its_listeners_for_a_while_then_the_sweep_releases_them() {
    // GIVEN blue's keyed room, allocated
    let t = two_clusters();
    let key = [(CLAIM_KEY, "arena-2")];
    t.w.cluster.put_service(room("prod", "arena", "b1", &key));
    t.blue_pass("arena").await.expect("blue allocates");
    let listener = t.w.annotation("arena", LISTENER_ARN).expect("a listener");

    // WHEN it is deleted
    t.w.cluster.delete_service("games", "arena");
    t.blue_pass("arena").await.expect("blue releases");

    // THEN the Service goes, its listener and claim stay, offered; a sweep keeps them
    assert!(
        t.w.cluster.get("games", "arena").is_none(),
        "finalizer removed"
    );
    assert_eq!(t.w.elb.listeners().len(), 1);
    let hold =
        t.w.store
            .key_hold("arena-2")
            .await
            .expect("reads")
            .expect("held");
    assert!(hold.offered_at.is_some());
    let blue = sweep(&t.blue, &t.w.cluster, &t.w).await;
    assert_eq!(blue.orphan_claims_released, 0, "{blue:?}");
    assert_eq!(t.w.store.all_claims().len(), 1);

    // WHEN green's room names the key within the window
    t.green_cluster
        .put_service(room(GREEN, "arena", "g1", &key));
    t.green_pass("arena").await.expect("green takes over");
    assert_eq!(t.green_annotation("arena", LISTENER_ARN), Some(listener));
    assert_eq!(
        t.green_annotation("arena", STATUS).as_deref(),
        Some("Allocated")
    );

    // AND a keyed room nobody takes: released by the sweep once the window is over
    t.w.cluster
        .put_service(room("prod", "lonely", "b2", &[(CLAIM_KEY, "lonely")]));
    t.blue_pass("lonely").await.expect("allocates");
    t.w.cluster.delete_service("games", "lonely");
    t.blue_pass("lonely").await.expect("offers");
    let hold =
        t.w.store
            .key_hold("lonely")
            .await
            .expect("reads")
            .expect("held");
    let long_ago = now_epoch() - HAND_OVER_WINDOW_SECONDS - 1;
    assert!(
        t.w.store
            .offer_key("lonely", &hold.owner, Some(long_ago))
            .await
            .expect("offers")
    );
    let blue = sweep(&t.blue, &t.w.cluster, &t.w).await;
    assert_eq!(blue.orphan_claims_released, 1, "{blue:?}");
    assert_eq!(t.w.store.key_hold("lonely").await.expect("reads"), None);
    assert_eq!(t.w.elb.listeners().len(), 1, "green's arena stays");

    // AND a keyed room that opts out gives its port up at once, key and all
    t.w.cluster
        .put_service(room("prod", "quitter", "b3", &[(CLAIM_KEY, "quitter")]));
    t.blue_pass("quitter").await.expect("allocates");
    t.annotate_blue(
        "quitter",
        crate::contract::annotations::AUTO_ASSIGN,
        Some("false"),
    );
    t.blue_pass("quitter").await.expect("releases");
    assert_eq!(t.w.elb.listeners().len(), 1);
    assert_eq!(t.w.store.key_hold("quitter").await.expect("reads"), None);
}

#[tokio::test]
async fn a_claim_key_waits_for_a_holder_in_the_same_cluster_too() {
    let t = two_clusters();
    let key = [(CLAIM_KEY, "arena-3")];
    t.w.cluster.put_service(room("prod", "old", "b1", &key));
    t.w.cluster.put_service(room("prod", "new", "b2", &key));
    t.blue_pass("old").await.expect("allocates");
    let address = t.w.annotation("old", ADDRESS);

    let waiting = t.blue_pass("new").await.expect("waits");
    assert!(matches!(waiting, Outcome::Pending(_)), "{waiting:?}");

    t.annotate_blue("old", NETWORK_DISABLED, Some("true"));
    t.blue_pass("old").await.expect("disables");
    t.blue_pass("new").await.expect("takes over");
    assert_eq!(t.w.annotation("new", ADDRESS), address);
    let _ = Arc::clone(&t.w.store);
}

/// The calls a drain and a move cost (BENCHMARKS.md, "Day two"): printed, and held to what
/// they are now, so a change that adds calls is seen.
#[tokio::test]
async fn a_drain_and_a_move_cost_few_calls() {
    let t = two_clusters();
    let key = [(CLAIM_KEY, "arena-9")];
    t.w.cluster.put_service(room("prod", "arena", "b1", &key));
    t.w.cluster.set_slices(
        "games",
        "arena",
        vec![slice("game", 8000, &["10.0.1.1", "10.0.1.2"])],
    );
    t.blue_pass("arena").await.expect("allocates");
    let calls = |w: &World| w.elb.all_calls();
    type Calls = std::collections::BTreeMap<&'static str, usize>;
    let diff = |before: &Calls, after: &Calls| -> Calls {
        after
            .iter()
            .filter_map(|(op, n)| {
                let d = n - before.get(op).copied().unwrap_or(0);
                (d > 0).then_some((*op, d))
            })
            .collect()
    };
    let before = calls(&t.w);
    t.annotate_blue("arena", NETWORK_DISABLED, Some("true"));
    t.blue
        .reconcile_service_as(
            &crate::model::claims::RunToken::random(),
            &t.w.cluster,
            "games",
            "arena",
            None,
        )
        .await
        .expect("drains");
    let drain = diff(&before, &calls(&t.w));
    let before = calls(&t.w);
    t.green_cluster
        .put_service(room(GREEN, "arena", "g1", &key));
    t.green_cluster
        .set_slices("games", "arena", vec![slice("game", 8000, &["10.0.2.2"])]);
    t.green_pass("arena").await.expect("takes over");
    let moved = diff(&before, &calls(&t.w));
    eprintln!("drain: {drain:?}\nmove: {moved:?}");
    assert_eq!(drain.get("DeregisterTargets"), Some(&1), "{drain:?}");
    assert!(drain.values().sum::<usize>() <= 6, "{drain:?}");
    assert_eq!(moved.get("ModifyListener"), Some(&1), "{moved:?}");
    assert_eq!(moved.get("AddTags"), Some(&1), "{moved:?}");
    assert_eq!(moved.get("CreateListener"), None, "{moved:?}");
    assert!(moved.values().sum::<usize>() <= 10, "{moved:?}");
}

#[tokio::test]
async fn a_key_is_not_taken_over_from_under_a_run_of_its_holder() {
    // GIVEN blue's keyed room, drained (it offers its listeners), and a run of blue's that
    // holds its claims right now (taken up a moment ago, not let go)
    let t = two_clusters();
    let key = [(CLAIM_KEY, "arena-4")];
    t.w.cluster.put_service(room("prod", "arena", "b1", &key));
    t.blue_pass("arena").await.expect("allocates");
    t.annotate_blue("arena", NETWORK_DISABLED, Some("true"));
    t.blue_pass("arena").await.expect("drains");
    let claims = t.w.store.all_claims();
    let now = now_epoch();
    let blue_run = crate::model::claims::RunToken::random();
    t.w.store
        .take_over(&claims, &blue_run, now, now + 1)
        .await
        .expect("blue's run holds them");

    // WHEN green (whose grace is AWS-like, 120 s) asks for the key
    let green = reconciler(GREEN, &t.w, &["prod"]).with_claim_grace(Duration::from_secs(120));
    t.green_cluster
        .put_service(room(GREEN, "arena", "g1", &key));
    let busy = green
        .reconcile_service(&t.green_cluster, "games", "arena", None)
        .await;

    // THEN it is busy (retried later); nothing moved
    assert!(
        matches!(&busy, Err(Error::Busy { reason, .. }) if reason.contains("still works")),
        "{busy:?}"
    );
    assert!(t.w.store.all_claims().iter().all(|c| c.owner.uid == "b1"));

    // AND the store itself refuses a hand-over of claims changed since they were read
    let hold =
        t.w.store
            .key_hold("arena-4")
            .await
            .expect("reads")
            .expect("held");
    let mut to = claims.clone();
    for c in &mut to {
        c.owner.uid = "g1".into();
        c.owner.key.cluster = GREEN.into();
    }
    assert!(
        !t.w.store
            .hand_over(&hold, &claims, &to)
            .await
            .expect("answers")
    );
}
