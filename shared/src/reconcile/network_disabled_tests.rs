//! `nlb.port-manager/network-disabled` against the in-memory doubles: targets out, claims,
//! listeners and address kept, status `Disabled`; on a Service, and on one pod of a per-pod
//! Service.

use super::per_pod_tests::{APP, per_pod_service};
use super::tests::{NLB_A, World, opted_in, slice, world};
use crate::contract::annotations::{ADDRESS, ALLOCATED_PORT, NETWORK_DISABLED, STATUS};
use crate::model::claims::RunToken;

impl World {
    /// Sets (or with `None` removes) an annotation of the Service `name`.
    fn annotate(&self, name: &str, key: &str, value: Option<&str>) {
        let mut svc = self.cluster.get("games", name).expect("the Service");
        match value {
            Some(v) => svc.annotations.insert(key.into(), v.into()),
            None => svc.annotations.remove(key),
        };
        self.cluster.put_service(svc);
    }

    /// Sets (or removes) an annotation of the pod `name`.
    fn annotate_pod(&self, name: &str, key: &str, value: Option<&str>) {
        let mut pod = self.cluster.get_pod("games", name).expect("the pod");
        match value {
            Some(v) => pod.annotations.insert(key.into(), v.into()),
            None => pod.annotations.remove(key),
        };
        self.cluster.put_pod("games", pod, &[APP]);
    }

    /// The event path's pass (no forced check against AWS).
    async fn on_event(&self, name: &str) {
        self.reconciler
            .reconcile_service_as(&RunToken::random(), &self.cluster, "games", name, None)
            .await
            .expect("reconciles");
    }

    /// The IPs registered in each target group, by group (`elb_calls` is no_op_tests').
    fn targets(&self) -> Vec<Vec<String>> {
        self.elb
            .target_groups()
            .iter()
            .map(|g| g.targets.iter().map(|t| t.ip.to_string()).collect())
            .collect()
    }
}

#[tokio::test]
async fn a_disabled_service_keeps_its_address_with_no_target_until_enabled() {
    // GIVEN an allocated Service with two ready endpoints
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    let two = vec![slice("game", 8000, &["10.0.0.1", "10.0.0.2"])];
    w.cluster.set_slices("games", "room", two);
    w.reconcile("room").await.expect("allocates");
    let address = w.annotation("room", ADDRESS).expect("an address");
    let listener = w.elb.listeners()[0].info.arn.clone();

    // WHEN it is network-disabled
    w.annotate("room", NETWORK_DISABLED, Some("true"));
    w.on_event("room").await;

    // THEN its targets are out, its listener, claim and address stay, and it says so
    assert_eq!(w.targets(), [Vec::<String>::new()]);
    assert_eq!(w.elb.listeners()[0].info.arn, listener);
    assert_eq!(w.store.all_claims().len(), 1);
    assert_eq!(w.annotation("room", ADDRESS), Some(address.clone()));
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Disabled"));
    let notices = w.cluster.notices();
    let last = &notices.last().expect("an Event").1;
    assert_eq!(last.reason, "NetworkDisabled");

    // AND another event, or new endpoints, change nothing: no call, no write
    let (calls, writes) = (w.elb_calls(), w.cluster.writes());
    w.on_event("room").await;
    let three = vec![slice("game", 8000, &["10.0.0.1", "10.0.0.2", "10.0.0.3"])];
    w.cluster.set_slices("games", "room", three);
    w.reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("syncs");
    w.on_event("room").await;
    assert_eq!(w.targets(), [Vec::<String>::new()]);
    assert_eq!(w.cluster.writes(), writes, "no write while disabled");
    let describe_only = w.elb_calls() - calls;
    assert!(describe_only <= 1, "{:?}", w.elb.all_calls());

    // WHEN it is enabled again ("false" does what removing it does)
    w.annotate("room", NETWORK_DISABLED, Some("false"));
    w.on_event("room").await;

    // THEN the ready endpoints are its targets again, on the same address
    assert_eq!(w.targets(), [["10.0.0.1", "10.0.0.2", "10.0.0.3"]]);
    assert_eq!(w.annotation("room", ADDRESS), Some(address));
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Allocated"));
    assert_eq!(w.elb.listeners()[0].info.arn, listener);
}

#[tokio::test]
async fn a_service_made_disabled_gets_its_port_and_no_target() {
    let w = world(&[NLB_A], "30000-30099", 50);
    let mut svc = opted_in("room", "u1");
    svc.annotations
        .insert(NETWORK_DISABLED.into(), "true".into());
    w.cluster.put_service(svc);
    w.cluster
        .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);

    w.on_event("room").await;

    assert!(w.annotation("room", ALLOCATED_PORT).is_some());
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Disabled"));
    assert_eq!(w.targets(), [Vec::<String>::new()]);
}

#[tokio::test]
async fn one_pod_of_a_per_pod_service_is_disabled_alone() {
    // GIVEN a per-pod Service with two allocated pods
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(2);
    w.reconcile("room").await.expect("allocates");
    let address = w.pod_annotation("room-1", ADDRESS).expect("an address");

    // (found reachable, as the reachability function would write it)
    w.annotate_pod("room-1", STATUS, Some("Ready"));

    // WHEN room-1 carries network-disabled "true"
    w.annotate_pod("room-1", NETWORK_DISABLED, Some("true"));
    w.sync().await;

    // THEN only its target is out; it keeps its address and says Disabled
    let mut targets = w.targets();
    targets.sort();
    assert_eq!(targets, [vec![], vec!["10.0.0.1".to_owned()]]);
    assert_eq!(w.pod_annotation("room-1", ADDRESS), Some(address.clone()));
    assert_eq!(
        w.pod_annotation("room-1", STATUS).as_deref(),
        Some("Disabled")
    );
    assert_eq!(
        w.pod_annotation("room-1", crate::contract::annotations::TARGET),
        None
    );
    assert_ne!(
        w.pod_annotation("room-0", STATUS).as_deref(),
        Some("Disabled")
    );
    let summary = w.summary();
    assert_eq!(
        (summary.allocated, summary.disabled, summary.ready),
        (2, 1, 0)
    );

    // AND a sync with nothing changed costs no call
    let calls = w.elb_calls();
    w.sync().await;
    assert_eq!(w.elb_calls(), calls, "{:?}", w.elb.all_calls());

    // WHEN the annotation goes
    w.annotate_pod("room-1", NETWORK_DISABLED, None);
    w.sync().await;

    // THEN its target is back, on the same address
    let mut targets = w.targets();
    targets.sort();
    assert_eq!(targets, [["10.0.0.1"], ["10.0.0.2"]]);
    assert_eq!(w.pod_annotation("room-1", ADDRESS), Some(address));
    assert_eq!(w.summary().disabled, 0);
}

#[tokio::test]
async fn a_per_pod_service_disabled_takes_every_pod_out() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(2);
    w.reconcile("room").await.expect("allocates");

    w.annotate("room", NETWORK_DISABLED, Some("true"));
    w.on_event("room").await;

    assert_eq!(w.targets(), [Vec::<String>::new(), vec![]]);
    assert_eq!(w.annotation("room", STATUS).as_deref(), Some("Disabled"));
    assert_eq!(w.summary().disabled, 2);
    for pod in ["room-0", "room-1"] {
        assert_eq!(w.pod_annotation(pod, STATUS).as_deref(), Some("Disabled"));
        assert!(
            w.pod_annotation(pod, ADDRESS).is_some(),
            "{pod} keeps its address"
        );
    }
}

#[tokio::test]
async fn an_unreadable_value_on_a_pod_is_its_error_and_changes_nothing() {
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(per_pod_service("10"));
    w.scale_to(2);
    w.reconcile("room").await.expect("allocates");
    let before = w.targets();

    w.annotate_pod("room-1", NETWORK_DISABLED, Some("yes"));
    w.sync().await;

    let status = w.pod_annotation("room-1", STATUS).unwrap_or_default();
    assert!(
        status.starts_with("Error: annotation nlb.port-manager/network-disabled"),
        "{status}"
    );
    assert_eq!(
        w.targets(),
        before,
        "its target stays until it says true or false"
    );
    assert_eq!(w.summary().errors, 1);
}
