//! AWS behaviours the bed's moto does not show, against the in-memory doubles (which behave
//! as AWS does): draining targets, NLBs gone or full, foreign listeners, pools reconfigured.

use std::sync::Arc;
use std::time::Duration;

use super::{Outcome, Reconciler};
use crate::adapters::memory::{MemoryClaimStore, MemoryCluster, MemoryLoadBalancing};
use crate::contract::annotations::{ADDRESS, AUTO_ASSIGN, STATUS};
use crate::contract::event::ServiceKey;
use crate::contract::service_model::{ServicePortSpec, ServiceState, TargetPort};
use crate::model::claims::ClaimStore;
use crate::model::pool::PoolSet;
use crate::model::targets::{SlicePort, SliceView};

const NLB_A: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/a/1";

const NLB_B: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/b/2";

struct World {
    store: Arc<MemoryClaimStore>,
    elb: Arc<MemoryLoadBalancing>,
    cluster: MemoryCluster,
    reconciler: Reconciler,
}

fn pools(nlbs: &[&str], ports: &str, quota: u32) -> PoolSet {
    let arns: Vec<String> = nlbs.iter().map(|a| format!("\"{a}\"")).collect();
    PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"{ports}","listenerQuota":{quota}}}}}"#,
        arns.join(",")
    ))
    .expect("pools")
}

/// NLBs `nlbs` exist in ELBv2; the pool is `in_pool`.
fn world_with(nlbs: &[&str], in_pool: PoolSet) -> World {
    let store = Arc::new(MemoryClaimStore::new());
    // As the first allocation of this cluster and stack recorded it (the sweep deletes).
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
    World {
        reconciler: reconciler(in_pool, &store, &elb),
        store,
        elb,
        cluster: MemoryCluster::new(),
    }
}

fn world(nlbs: &[&str], ports: &str, quota: u32) -> World {
    world_with(nlbs, pools(nlbs, ports, quota))
}

fn reconciler(
    pools: PoolSet,
    store: &Arc<MemoryClaimStore>,
    elb: &Arc<MemoryLoadBalancing>,
) -> Reconciler {
    Reconciler::new("prod", "vpc-1", pools, store.clone(), elb.clone())
        .with_claim_grace(Duration::ZERO)
        .with_target_policy(super::tests::test_targets())
}

pub(super) fn opted_in(name: &str, uid: &str) -> ServiceState {
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
            target_port: TargetPort::Number(8000),
        }],
        external_name: false,
        selector: Default::default(),
        pod: None,
    }
}

pub(super) fn slice(ips: &[&str]) -> Vec<SliceView> {
    vec![SliceView {
        name: "room-game".into(),
        managed_by: Some(super::tests::TEST_MANAGER.to_owned()),
        ports: vec![SlicePort {
            name: Some("game".to_owned()),
            port: Some(8000),
        }],
        ready: ips.iter().map(|i| i.parse().expect("ip")).collect(),
        pods: vec![],
    }]
}

impl World {
    async fn reconcile(&self, name: &str) -> Outcome {
        self.reconciler
            .reconcile_service(&self.cluster, "games", name, None)
            .await
            .unwrap_or_else(|e| panic!("reconciling {name}: {e}"))
    }

    /// The same world after a redeploy with `pools`: same table, ELBv2 and cluster.
    fn redeployed(self, pools: PoolSet) -> World {
        World {
            reconciler: reconciler(pools, &self.store, &self.elb),
            ..self
        }
    }

    async fn sweep(&self) -> super::SweepReport {
        self.reconciler
            .sweep(
                &self.cluster,
                self.store.as_ref(),
                super::SweepLimits::default(),
            )
            .await
            .expect("sweeps")
    }

    /// The (NLB, port) of each claim of `uid`.
    async fn placed(&self, uid: &str) -> Vec<(String, u16)> {
        self.store
            .claims_of(uid)
            .await
            .expect("claims")
            .into_iter()
            .map(|c| (c.nlb_arn, c.port))
            .collect()
    }

    fn annotation(&self, name: &str, key: &str) -> Option<String> {
        self.cluster
            .get("games", name)
            .and_then(|s| s.annotations.get(key).cloned())
    }

    fn refusals(&self) -> usize {
        self.cluster
            .notices()
            .iter()
            .filter(|(_, n)| n.reason == "ListenerRefused")
            .count()
    }

    /// Listeners on `nlb` made by nlb-port-pool (tagged).
    fn own_listeners(&self, nlb: &str) -> usize {
        self.elb
            .listeners()
            .iter()
            .filter(|l| l.info.nlb_arn == nlb && !l.tags.is_empty())
            .count()
    }

    fn targets(&self) -> Vec<String> {
        self.elb
            .target_groups()
            .iter()
            .flat_map(|t| t.targets.iter().map(|x| format!("{}:{}", x.ip, x.port)))
            .collect()
    }
}

#[tokio::test]
async fn a_pod_back_within_the_deregistration_delay_is_registered_again() {
    // GIVEN an allocated Service whose one pod is registered
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.set_slices("games", "room", slice(&["10.0.0.1"]));
    w.reconcile("room").await;
    assert_eq!(w.targets(), ["10.0.0.1:8000"]);

    // WHEN the pod goes NotReady (deregistered: AWS keeps it `draining`) and is back before
    // the deregistration delay ends
    w.cluster.set_slices("games", "room", slice(&[]));
    w.reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("deregisters");
    assert!(w.targets().is_empty(), "deregistered, draining");
    w.cluster.set_slices("games", "room", slice(&["10.0.0.1"]));
    let synced = w
        .reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("registers");

    // THEN it is registered again: a draining target does not count as registered
    assert_eq!(
        synced,
        Outcome::TargetsSynced {
            registered: 1,
            deregistered: 0
        }
    );
    assert_eq!(w.targets(), ["10.0.0.1:8000"]);
}

#[tokio::test]
async fn a_listener_refused_for_the_nlb_quota_moves_to_another_nlb() {
    // GIVEN a warm function whose view (a minute old) has room on NLB A only, while A has
    // since filled up with listeners someone else made
    let w = world(&[NLB_A, NLB_B], "30000-30999", 50);
    w.reconciler
        .refresh_view(w.reconciler.pools().get("default").expect("pool"))
        .await
        .expect("reads");
    for port in 0..50 {
        w.elb.add_foreign_listener(NLB_A, 40000 + port);
    }
    w.reconciler.view.mark_unusable(NLB_B);
    w.cluster.put_service(opted_in("room", "u1"));

    // WHEN the Service is allocated
    let outcome = w.reconcile("room").await;

    // THEN AWS's TooManyListeners moved its claim to NLB B, and a Warning Event says why
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    let placed = w.placed("u1").await;
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].0, NLB_B);
    assert_eq!(w.own_listeners(NLB_A), 0);
    assert_eq!(w.own_listeners(NLB_B), 1);
    assert_eq!(w.refusals(), 1);
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
}

#[tokio::test]
async fn a_foreign_listener_on_the_claimed_port_moves_the_claim_to_another_port() {
    // GIVEN an allocated Service whose listener someone deleted, then made their own on its port
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.reconcile("room").await;
    let (_, port) = w.placed("u1").await.pop().expect("a claim");
    let ours = w.elb.listeners().pop().expect("a listener").info.arn;
    w.elb.remove_listener(&ours);
    let foreign = w.elb.add_foreign_listener(NLB_A, port);

    // WHEN it is reconciled
    let outcome = w.reconcile("room").await;

    // THEN its claim moved to another port, the foreign listener is untouched, the address
    // names the new port and a Warning Event says why
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    let (_, moved) = w.placed("u1").await.pop().expect("a claim");
    assert_ne!(moved, port);
    assert!(w.elb.listeners().iter().any(|l| l.info.arn == foreign));
    assert_eq!(
        w.annotation("room", ADDRESS),
        Some(format!("nlb-0.elb:{moved}"))
    );
    assert_eq!(w.refusals(), 1);
}

#[tokio::test]
async fn listeners_the_project_did_not_make_count_against_the_quota() {
    // GIVEN an NLB with 49 listeners someone else made, of a quota of 50
    let w = world(&[NLB_A], "30000-30999", 50);
    for port in 0..49 {
        w.elb.add_foreign_listener(NLB_A, 40000 + port);
    }
    w.cluster.put_service(opted_in("one", "u1"));
    w.cluster.put_service(opted_in("two", "u2"));

    // WHEN two Services are allocated
    let first = w.reconcile("one").await;
    let second = w.reconcile("two").await;

    // THEN the first takes the 50th listener, the second waits without a refused call
    assert!(matches!(first, Outcome::Allocated { .. }), "{first:?}");
    assert!(matches!(second, Outcome::Pending(_)), "{second:?}");
    assert_eq!(w.elb.calls("CreateListener"), 1);
    assert!(w.placed("u2").await.is_empty());
}

#[tokio::test]
async fn an_nlb_deleted_out_of_band_moves_its_services_and_the_rest_goes_on() {
    // GIVEN a pool of two NLBs and an allocated Service; its NLB is then deleted out of band
    let w = world(&[NLB_A, NLB_B], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.reconcile("room").await;
    let (gone, _) = w.placed("u1").await.pop().expect("a claim");
    let other = if gone == NLB_A { NLB_B } else { NLB_A };
    w.elb.remove_nlb(&gone);

    // WHEN the sweep runs, and a new Service is allocated
    let report = w.sweep().await;
    w.cluster.put_service(opted_in("new", "u2"));
    let new = w.reconcile("new").await;

    // THEN the sweep finished, named the NLB and moved the Service to the other NLB; the new
    // Service went to the other NLB too
    assert_eq!(report.nlbs_missing, std::slice::from_ref(&gone));
    assert_eq!(report.services_moved, 1);
    assert_eq!(report.failures, 0);
    assert_eq!(
        w.placed("u1").await.pop().map(|p| p.0).as_deref(),
        Some(other)
    );
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    assert!(w.refusals() >= 1);
    assert!(matches!(new, Outcome::Allocated { .. }), "{new:?}");
    assert_eq!(
        w.placed("u2").await.pop().map(|p| p.0).as_deref(),
        Some(other)
    );
}

#[tokio::test]
async fn a_service_on_an_nlb_deleted_out_of_band_is_released() {
    // GIVEN an allocated Service whose NLB was deleted out of band
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.reconcile("room").await;
    w.elb.remove_nlb(NLB_A);

    // WHEN the Service is deleted
    w.cluster.delete_service("games", "room");
    let outcome = w.reconcile("room").await;

    // THEN the release completes: no claim, no target group, the Service is gone
    assert_eq!(outcome, Outcome::Released { listeners: 1 });
    assert!(w.placed("u1").await.is_empty());
    assert!(w.elb.target_groups().is_empty());
    assert!(w.cluster.get("games", "room").is_none());
}

#[tokio::test]
async fn an_nlb_taken_out_of_the_pool_has_its_services_moved_by_the_sweep() {
    // GIVEN a Service allocated on NLB A, swept once, then a redeploy whose pool is NLB B
    let w = world_with(&[NLB_A, NLB_B], pools(&[NLB_A], "30000-30099", 50));
    w.cluster.put_service(opted_in("room", "u1"));
    w.reconcile("room").await;
    w.sweep().await;
    let w = w.redeployed(pools(&[NLB_B], "30000-30099", 50));

    // WHEN the sweep runs (twice: the second finds nothing left on A)
    let report = w.sweep().await;
    let again = w.sweep().await;

    // THEN the Service is on B, nothing of it is left on A, and A is no longer swept
    assert_eq!(report.services_moved, 1);
    assert_eq!(
        w.placed("u1").await.pop().map(|p| p.0).as_deref(),
        Some(NLB_B)
    );
    assert_eq!(w.own_listeners(NLB_A), 0);
    assert_eq!(w.own_listeners(NLB_B), 1);
    assert_eq!(again.services_moved, 0);
    let cursor = crate::model::claims::CursorStore::load_cursor(w.store.as_ref())
        .await
        .expect("cursor");
    assert_eq!(cursor.nlbs, [NLB_B]);
}

#[tokio::test]
async fn a_shrunk_port_range_moves_the_claims_out_of_it() {
    // GIVEN a Service allocated in 30000-30099, then a redeploy with half the range
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.reconcile("room").await;
    let (_, port) = w.placed("u1").await.pop().expect("a claim");
    let (first, last) = if port < 30050 {
        (30050, 30099)
    } else {
        (30000, 30049)
    };
    let w = w.redeployed(pools(&[NLB_A], &format!("{first}-{last}"), 50));

    // WHEN it is reconciled
    w.reconcile("room").await;

    // THEN its one claim and listener are in the new range, and the old listener is gone
    let placed = w.placed("u1").await;
    assert_eq!(placed.len(), 1);
    assert!((first..=last).contains(&placed[0].1), "{placed:?}");
    let ports: Vec<u16> = w.elb.listeners().iter().map(|l| l.info.port).collect();
    assert_eq!(ports, [placed[0].1]);
}

#[tokio::test]
async fn an_nlb_whose_item_is_not_active_takes_no_claim() {
    // GIVEN a pool of two NLBs, the first's item in another state than `active` (an NLB of a
    // managed pool being made or retired)
    let w = world(&[NLB_A, NLB_B], "30000-30099", 50);
    w.store.force_nlb_state(NLB_A, Some("draining"));

    // WHEN Services are allocated
    for i in 0..10 {
        let name = format!("room-{i}");
        w.cluster.put_service(opted_in(&name, &format!("u{i}")));
        w.reconcile(&name).await;
    }

    // THEN every claim is on the second; with it out of service too, a Service waits
    for i in 0..10 {
        assert_eq!(
            w.placed(&format!("u{i}"))
                .await
                .pop()
                .map(|p| p.0)
                .as_deref(),
            Some(NLB_B)
        );
    }
    // (the warm view still holds it usable: the claim transaction refuses it)
    w.store.force_nlb_state(NLB_B, Some("provisioning"));
    w.cluster.put_service(opted_in("late", "u-late"));
    assert!(matches!(w.reconcile("late").await, Outcome::Pending(_)));
}
