//! Per-pod mode against the in-memory doubles: a listener set per pod, stable across a
//! StatefulSet pod's re-creation, kept through the grace, released after it, and mode switches.

use std::collections::BTreeSet;

use super::Outcome;
use super::tests::{NLB_A, World, opted_in, world};
use crate::contract::annotations::{
    self, AUTO_ASSIGN, FINALIZER, MODE, POD_RELEASE_AFTER, PodsSummary,
};
use crate::contract::service_model::{PodState, ServiceState};
use crate::model::targets::{PodEndpoint, SlicePort, SliceView};

pub(super) const APP: (&str, &str) = ("app", "room");

pub(super) fn per_pod_service(grace: &str) -> ServiceState {
    let mut s = opted_in("room", "u1");
    s.annotations.insert(MODE.into(), "per-pod".into());
    s.annotations.insert(POD_RELEASE_AFTER.into(), grace.into());
    s.selector.insert(APP.0.into(), APP.1.into());
    s
}

pub(super) fn pod(name: &str, uid: &str, ip: &str) -> PodState {
    PodState {
        name: name.into(),
        uid: uid.into(),
        ip: ip.parse().ok(),
        ips: ip.parse().ok().into_iter().collect(),
        containers_ready: true,
        ..PodState::default()
    }
}

/// One slice listing `pods` as (name, ip, ready).
pub(super) fn slice_of(pods: &[(&str, &str, bool)]) -> SliceView {
    let endpoints: Vec<PodEndpoint> = pods
        .iter()
        .map(|(name, ip, ready)| PodEndpoint {
            pod: (*name).into(),
            ip: ip.parse().expect("ip"),
            ready: *ready,
        })
        .collect();
    SliceView {
        name: "room-abc".into(),
        managed_by: Some(crate::model::target_policy::CONTROLLER_MANAGER.to_owned()),
        ports: vec![SlicePort {
            name: Some("game".into()),
            port: Some(8000),
        }],
        ready: endpoints.iter().filter(|e| e.ready).map(|e| e.ip).collect(),
        pods: endpoints,
    }
}

impl World {
    /// Puts pods `room-0..n` (ready, IPs 10.0.0.x) behind the Service.
    pub(super) fn scale_to(&self, n: usize) {
        for p in self.cluster.pods_in("games") {
            if !(0..n).any(|i| p.name == format!("room-{i}")) {
                self.cluster.delete_pod("games", &p.name);
            }
        }
        let mut listed = Vec::new();
        for i in 0..n {
            let name = format!("room-{i}");
            let ip = format!("10.0.0.{}", i + 1);
            if self.cluster.get_pod("games", &name).is_none() {
                self.cluster
                    .put_pod("games", pod(&name, &format!("pod-{i}"), &ip), &[APP]);
            }
            listed.push((name, ip));
        }
        let refs: Vec<(&str, &str, bool)> = listed
            .iter()
            .map(|(n, ip)| (n.as_str(), ip.as_str(), true))
            .collect();
        self.cluster
            .set_slices("games", "room", vec![slice_of(&refs)]);
    }

    pub(super) fn pod_annotation(&self, pod: &str, key: &str) -> Option<String> {
        self.cluster
            .get_pod("games", pod)?
            .annotations
            .get(key)
            .cloned()
    }

    pub(super) fn summary(&self) -> PodsSummary {
        let json = self.annotation("room", annotations::PODS).expect("summary");
        serde_json::from_str(&json).expect("summary JSON")
    }

    pub(super) async fn sync(&self) -> Outcome {
        self.reconciler
            .sync_targets(&self.cluster, "games", "room")
            .await
            .expect("sync")
    }
}

#[tokio::test]
async fn every_pod_gets_its_own_port_address_and_single_target() {
    // GIVEN a per-pod Service with three ready pods
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(3);

    // WHEN it is reconciled
    let outcome = w.reconcile("room").await.expect("allocates");

    // THEN each pod holds one listener on a port of its own, its group holding only that pod
    assert_eq!(
        outcome,
        Outcome::Pods {
            allocated: 3,
            pending: 0,
            leaving: 0,
            released: 0
        }
    );
    let listeners = w.elb.listeners();
    let ports: BTreeSet<u16> = listeners.iter().map(|l| l.info.port).collect();
    assert_eq!((listeners.len(), ports.len()), (3, 3));
    for g in w.elb.target_groups() {
        assert_eq!(g.targets.len(), 1, "one pod per group");
        assert!(
            g.tags.contains_key(crate::model::elb::TAG_POD),
            "tagged with its pod"
        );
    }
    // AND each pod advertises its own address and target
    let mut addresses = BTreeSet::new();
    for i in 0..3 {
        let pod = format!("room-{i}");
        let address = w
            .pod_annotation(&pod, annotations::ADDRESS)
            .expect("address");
        assert!(address.starts_with("nlb-0.elb:"), "{address}");
        addresses.insert(address);
        assert_eq!(
            w.pod_annotation(&pod, annotations::TARGET),
            Some(format!("10.0.0.{}", i + 1))
        );
        assert_eq!(
            w.pod_annotation(&pod, annotations::STATUS).as_deref(),
            Some("Allocated")
        );
    }
    assert_eq!(addresses.len(), 3);
    // AND the Service holds the finalizer and a summary, not an address of its own
    let svc = w.cluster.get("games", "room").expect("service");
    assert!(svc.finalizers.contains(&FINALIZER.to_owned()));
    assert_eq!(w.summary().allocated, 3);
    assert_eq!(w.annotation("room", annotations::ADDRESS), None);
}

#[tokio::test]
async fn an_endpoint_change_costs_calls_only_for_the_pods_that_changed() {
    // GIVEN three allocated pods
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(3);
    w.reconcile("room").await.expect("allocates");
    let before = w.elb.all_calls().values().sum::<usize>();

    // WHEN the endpoints are synced with nothing changed
    w.sync().await;

    // THEN no ELBv2 call is made
    assert_eq!(w.elb.all_calls().values().sum::<usize>(), before);

    // WHEN a fourth pod comes
    w.scale_to(4);
    w.sync().await;

    // THEN only it is allocated: one target group, one listener, one registration
    let calls = w.elb.all_calls();
    assert_eq!(w.elb.listeners().len(), 4);
    assert_eq!(calls.values().sum::<usize>() - before, 3, "{calls:?}");
}

#[tokio::test]
async fn a_statefulset_pod_made_again_keeps_its_port() {
    // GIVEN an allocated pod room-0
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(1);
    w.reconcile("room").await.expect("allocates");
    let address = w.pod_annotation("room-0", annotations::ADDRESS);

    // WHEN it is deleted, and made again under its name with another uid and IP
    w.cluster.delete_pod("games", "room-0");
    w.cluster.set_slices("games", "room", vec![slice_of(&[])]);
    w.sync().await;
    w.cluster
        .put_pod("games", pod("room-0", "pod-0-again", "10.0.0.9"), &[APP]);
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[("room-0", "10.0.0.9", true)])],
    );
    w.sync().await;

    // THEN the new pod has the same address, and the target moved to its IP
    assert_eq!(w.pod_annotation("room-0", annotations::ADDRESS), address);
    let groups = w.elb.target_groups();
    assert_eq!(groups.len(), 1);
    let targets: Vec<String> = groups[0].targets.iter().map(|t| t.ip.to_string()).collect();
    assert_eq!(targets, ["10.0.0.9"]);
    assert_eq!(
        w.store.all_claims()[0].gone_since,
        None,
        "the gone note is cleared"
    );
}

#[tokio::test]
async fn a_gone_pod_keeps_its_port_for_the_grace_then_releases_it() {
    // GIVEN two allocated pods, a grace of 10 s
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(2);
    w.reconcile("room").await.expect("allocates");

    // WHEN room-1 goes
    w.scale_to(1);
    let outcome = w.sync().await;

    // THEN its port is kept (leaving), noted gone
    assert!(
        matches!(
            outcome,
            Outcome::Pods {
                leaving: 1,
                released: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(w.elb.listeners().len(), 2);
    assert_eq!(w.summary().leaving, 1);

    // WHEN the grace has run out (the Service's grace set to 0)
    w.cluster.put_service(per_pod_service("0"));
    let outcome = w.reconcile("room").await.expect("reconciles");

    // THEN its listener, group and claim are gone; room-0 keeps its own
    assert!(
        matches!(
            outcome,
            Outcome::Pods {
                allocated: 1,
                leaving: 0,
                released: 1,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(w.elb.listeners().len(), 1);
    assert_eq!(w.elb.target_groups().len(), 1);
    assert_eq!(w.store.all_claims().len(), 1);
    assert_eq!(w.store.all_claims()[0].owner.pod.as_deref(), Some("room-0"));
}

#[tokio::test]
async fn a_pod_not_ready_keeps_its_port_and_loses_its_target_meanwhile() {
    // GIVEN an allocated pod
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(1);
    w.reconcile("room").await.expect("allocates");
    let address = w.pod_annotation("room-0", annotations::ADDRESS);

    // WHEN its endpoint turns not ready
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[("room-0", "10.0.0.1", false)])],
    );
    w.sync().await;

    // THEN it keeps its port, without a target
    assert_eq!(w.pod_annotation("room-0", annotations::ADDRESS), address);
    assert_eq!(w.pod_annotation("room-0", annotations::TARGET), None);
    assert!(w.elb.target_groups()[0].targets.is_empty());

    // WHEN it is ready again
    w.scale_to(1);
    w.sync().await;

    // THEN the same port, its target back
    assert_eq!(w.pod_annotation("room-0", annotations::ADDRESS), address);
    assert_eq!(w.elb.target_groups()[0].targets.len(), 1);
}

#[tokio::test]
async fn a_gated_pod_with_ready_containers_is_registered_before_it_is_ready() {
    // GIVEN a pod declaring the reachable gate: containers ready, endpoint not ready (the gate)
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    let gated = PodState {
        gated: true,
        ..pod("room-0", "pod-0", "10.0.0.1")
    };
    w.cluster.put_pod("games", gated, &[APP]);
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice_of(&[("room-0", "10.0.0.1", false)])],
    );

    // WHEN it is reconciled
    w.reconcile("room").await.expect("allocates");

    // THEN its target is registered
    assert_eq!(w.elb.target_groups()[0].targets.len(), 1);
}

#[tokio::test]
async fn switching_modes_releases_what_the_old_mode_held() {
    // GIVEN a per-Service Service with its listener
    let w = world(&[NLB_A], "30000-30099", 50);
    let mut per_service = opted_in("room", "u1");
    per_service.selector.insert(APP.0.into(), APP.1.into());
    w.cluster.put_service(per_service.clone());
    w.scale_to(2);
    w.reconcile("room").await.expect("allocates");
    assert_eq!(w.elb.listeners().len(), 1);

    // WHEN it switches to per-pod
    w.cluster.put_service(per_pod_service("10"));
    w.reconcile("room").await.expect("per-pod");

    // THEN its own listener went, each pod has one, the Service advertises no address
    assert_eq!(w.elb.listeners().len(), 2);
    assert!(w.store.all_claims().iter().all(|c| c.owner.pod.is_some()));
    assert_eq!(w.annotation("room", annotations::ADDRESS), None);

    // WHEN it switches back
    let mut back = w.cluster.get("games", "room").expect("service");
    back.annotations.remove(MODE);
    w.cluster.put_service(back);
    w.reconcile("room").await.expect("per-service");

    // THEN the pods' listeners went, their annotations too, and the Service has one again
    assert_eq!(w.elb.listeners().len(), 1);
    assert!(w.store.all_claims().iter().all(|c| c.owner.pod.is_none()));
    assert_eq!(w.pod_annotation("room-0", annotations::ADDRESS), None);
    assert!(w.annotation("room", annotations::ADDRESS).is_some());
    assert_eq!(w.annotation("room", annotations::PODS), None);
}

#[tokio::test]
async fn deleting_the_service_releases_every_pod_and_clears_their_annotations() {
    // GIVEN three allocated pods
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(3);
    w.reconcile("room").await.expect("allocates");

    // WHEN the Service is deleted
    w.cluster.delete_service("games", "room");
    w.reconcile("room").await.expect("releases");

    // THEN nothing is left, the Service is gone, no pod advertises a port
    assert!(w.elb.listeners().is_empty() && w.elb.target_groups().is_empty());
    assert!(w.store.all_claims().is_empty());
    assert!(w.cluster.get("games", "room").is_none());
    for p in w.cluster.pods_in("games") {
        assert!(
            !p.annotations
                .keys()
                .any(|k| k.starts_with(annotations::PREFIX)),
            "{} keeps {:?}",
            p.name,
            p.annotations
        );
    }
}

#[tokio::test]
async fn a_fleet_larger_than_one_transaction_is_released_pod_by_pod() {
    // GIVEN 50 allocated pods on one NLB: released at once, their claims would be 101 items,
    // more than DynamoDB takes in one transaction
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(50);
    w.reconcile("room").await.expect("allocates");
    assert_eq!(w.store.all_claims().len(), 50);

    // WHEN the Service is deleted
    w.cluster.delete_service("games", "room");
    w.reconcile("room").await.expect("releases");

    // THEN every pod's claims went
    assert!(w.store.all_claims().is_empty());
    assert!(w.elb.listeners().is_empty());
}

#[tokio::test]
async fn once_the_pool_is_full_the_other_pods_wait_without_making_anything() {
    // GIVEN a pool of 5 listeners and 40 pods
    let w = world(&[NLB_A], "30000-30004", 5);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(40);

    // WHEN they are allocated
    let outcome = w.reconcile("room").await.expect("reconciles");

    // THEN 5 have ports, 35 wait, each told so, and few target groups were made in vain
    assert!(
        matches!(
            outcome,
            Outcome::Pods {
                allocated: 5,
                pending: 35,
                ..
            }
        ),
        "{outcome:?}"
    );
    let waiting = w
        .cluster
        .pods_in("games")
        .iter()
        .filter(|p| {
            p.annotations
                .get(annotations::STATUS)
                .is_some_and(|s| s.starts_with("Pending"))
        })
        .count();
    assert_eq!(waiting, 35);
    let in_vain = w.elb.calls("DeleteTargetGroup");
    assert!(
        in_vain <= 16,
        "{in_vain} target groups made and deleted again"
    );
    assert!(
        w.annotation("room", annotations::STATUS)
            .is_some_and(|s| s.starts_with("Pending: 35 of 40 pods"))
    );
}

#[tokio::test]
async fn per_pod_mode_without_a_selector_is_a_user_error() {
    let w = world(&[NLB_A], "30000-30099", 50);
    let mut s = per_pod_service("10");
    s.selector.clear();
    w.cluster.put_service(s);
    let outcome = w.reconcile("room").await.expect("rejects");
    assert!(matches!(outcome, Outcome::Rejected(m) if m.contains("selector")));
    let _ = AUTO_ASSIGN;
}
