//! Events for Services whose listeners are made from what they ask for cost no ELBv2 call;
//! anything asked for that changed, a run that did not finish, and drift in AWS (through the
//! sweep) still get the full pass.

use std::collections::BTreeSet;

use super::tests::{NLB_A, World, opted_in, slice, world};
use super::{Outcome, SweepLimits};
use crate::contract::annotations::{self, HC_INTERVAL};
use crate::model::claims::ClaimStore;
use crate::model::elb::{ElbError, ElbErrorKind};
use crate::model::targets::Target;

impl World {
    /// Service Changed, as the allocate function handles it.
    async fn event(&self) -> Outcome {
        self.reconciler
            .reconcile_service_as(
                &crate::model::claims::RunToken::random(),
                &self.cluster,
                "games",
                "room",
                None,
            )
            .await
            .expect("reconciles")
    }

    pub(super) fn elb_calls(&self) -> usize {
        self.elb.all_calls().values().sum()
    }

    fn registered(&self) -> BTreeSet<String> {
        self.elb.target_groups()[0]
            .targets
            .iter()
            .map(Target::to_string)
            .collect()
    }

    fn endpoints(&self, ips: &[&str]) {
        self.cluster
            .set_slices("games", "room", vec![slice("game", 8000, ips)]);
    }
}

fn allocated(w: &World) {
    w.cluster.put_service(opted_in("room", "u1"));
    w.endpoints(&["10.0.0.1"]);
}

#[tokio::test]
async fn an_event_for_a_service_made_as_asked_makes_no_elbv2_call_and_no_write() {
    // GIVEN an allocated Service
    let w = world(&[NLB_A], "30000-30099", 50);
    allocated(&w);
    w.event().await;
    let (calls, writes) = (w.elb_calls(), w.cluster.writes());

    // WHEN the same Service Changed comes again (a resync)
    let again = w.event().await;

    // THEN nothing was called or written
    assert_eq!(
        again,
        Outcome::Allocated {
            listeners: 1,
            claimed: 0
        }
    );
    assert_eq!(w.elb_calls(), calls, "{:?}", w.elb.all_calls());
    assert_eq!(w.cluster.writes(), writes);
    let claims = w.store.claims_of("u1").await.expect("claims");
    assert!(claims[0].applied.is_some(), "the run noted what it made");
    assert_eq!(claims[0].held_at, 0, "and let the claim go");
}

#[tokio::test]
async fn new_endpoints_or_a_new_health_check_get_the_full_pass_once() {
    // GIVEN an allocated Service
    let w = world(&[NLB_A], "30000-30099", 50);
    allocated(&w);
    w.event().await;

    // WHEN its endpoints change
    w.endpoints(&["10.0.0.1", "10.0.0.2"]);
    let calls = w.elb_calls();
    w.event().await;

    // THEN the targets follow, and the same event again costs nothing
    assert!(w.elb_calls() > calls);
    assert_eq!(w.registered().len(), 2);
    let calls = w.elb_calls();
    w.event().await;
    assert_eq!(w.elb_calls(), calls);

    // WHEN the health check annotation changes
    let mut svc = w.cluster.get("games", "room").expect("service");
    svc.annotations.insert(HC_INTERVAL.into(), "20".into());
    w.cluster.put_service(svc);
    w.event().await;

    // THEN the target group is changed
    assert_eq!(
        w.elb.calls("ModifyTargetGroup"),
        1,
        "{:?}",
        w.elb.all_calls()
    );
    assert_eq!(
        w.elb.target_groups()[0].info.health_check.interval_seconds,
        Some(20)
    );
}

#[tokio::test]
async fn a_run_that_failed_midway_leaves_the_next_event_the_full_pass() {
    // GIVEN an allocated Service with one target, whose next run fails after deregistering it
    // but before registering the new one (endpoints changed to another pod)
    let w = world(&[NLB_A], "30000-30099", 50);
    allocated(&w);
    w.event().await;
    w.endpoints(&["10.0.0.9"]);
    w.elb.fail_next(
        "RegisterTargets",
        ElbError {
            operation: "RegisterTargets",
            message: "Throttling".into(),
            retryable: true,
            kind: ElbErrorKind::Other,
        },
    );
    w.reconciler
        .reconcile_service_as(
            &crate::model::claims::RunToken::random(),
            &w.cluster,
            "games",
            "room",
            None,
        )
        .await
        .expect_err("the registration fails");

    // WHEN the endpoints go back to the first pod, as they were when the claim was made
    w.endpoints(&["10.0.0.1"]);
    w.event().await;

    // THEN the event did not trust the old fingerprint: the target is registered again
    assert_eq!(w.registered(), BTreeSet::from(["10.0.0.1:8000".to_owned()]));
}

#[tokio::test]
async fn drift_in_aws_is_left_by_events_and_repaired_by_the_sweep() {
    // GIVEN an allocated Service whose listener was deleted and whose target was deregistered
    // by hand
    let w = world(&[NLB_A], "30000-30099", 50);
    allocated(&w);
    w.event().await;
    let listener = w.elb.listeners()[0].info.clone();
    w.elb.remove_listener(&listener.arn);

    // WHEN an event comes: it trusts what it made (drift is the sweep's to find)
    w.event().await;
    assert!(w.elb.listeners().is_empty());

    // AND the sweep runs once
    let report = w
        .reconciler
        .sweep(&w.cluster, w.store.as_ref(), SweepLimits::default())
        .await
        .expect("sweeps");

    // THEN the listener is back on its port and advertised
    assert_eq!(report.failures, 0);
    let now = w.elb.listeners();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].info.port, listener.port);
    assert_eq!(
        w.annotation("room", annotations::LISTENER_ARN),
        Some(now[0].info.arn.clone())
    );
}

#[tokio::test]
async fn a_target_sync_notes_its_targets_but_never_a_change_it_did_not_make() {
    // GIVEN an allocated Service
    let w = world(&[NLB_A], "30000-30099", 50);
    allocated(&w);
    w.event().await;
    let sync = || w.reconciler.sync_targets(&w.cluster, "games", "room");

    // WHEN its endpoints change and Endpoints Changed is handled
    w.endpoints(&["10.0.0.1", "10.0.0.2"]);
    sync().await.expect("syncs");

    // THEN a Service Changed resync afterwards costs nothing: the sync noted the new targets
    let calls = w.elb_calls();
    w.event().await;
    assert_eq!(w.elb_calls(), calls, "{:?}", w.elb.all_calls());

    // WHEN the health check changes and the endpoints too, and the sync runs first
    let mut svc = w.cluster.get("games", "room").expect("service");
    svc.annotations.insert(HC_INTERVAL.into(), "20".into());
    w.cluster.put_service(svc);
    w.endpoints(&["10.0.0.3"]);
    sync().await.expect("syncs");
    assert_eq!(w.registered(), BTreeSet::from(["10.0.0.3:8000".to_owned()]));

    // THEN the Service Changed that follows still applies the health check
    w.event().await;
    assert_eq!(
        w.elb.target_groups()[0].info.health_check.interval_seconds,
        Some(20)
    );
}

#[tokio::test]
async fn a_listener_deleted_by_hand_is_made_again_by_the_next_sweep_whatever_its_turn() {
    // GIVEN three allocated Services, claimed more than a grace ago, and a sweep that
    // reconciles one Service per run in turn
    let w = world(&[NLB_A], "30000-30099", 50);
    for (name, uid) in [("a", "ua"), ("b", "ub"), ("c", "uc")] {
        w.cluster.put_service(opted_in(name, uid));
        w.reconcile(name).await.expect("allocates");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let limits = SweepLimits {
        services_per_run: 1,
        ..SweepLimits::default()
    };

    // WHEN the listener of the last in turn is deleted by hand, and the sweep runs once
    let gone = w
        .elb
        .listeners()
        .into_iter()
        .find(|l| Some(&l.info.arn) == w.annotation("c", annotations::LISTENER_ARN).as_ref())
        .expect("c's listener");
    w.elb.remove_listener(&gone.info.arn);
    w.reconciler
        .sweep(&w.cluster, w.store.as_ref(), limits)
        .await
        .expect("sweeps");

    // THEN it is back on its port
    assert!(
        w.elb
            .listeners()
            .iter()
            .any(|l| l.info.port == gone.info.port && l.info.arn != gone.info.arn),
        "made again"
    );
}

#[tokio::test]
async fn a_slice_left_out_is_told_once_and_costs_no_elbv2_call_on_a_resync() {
    // GIVEN an allocated Service with a trusted slice and one no controller wrote
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    let mut stray = slice("game", 8000, &["10.0.0.66"]);
    stray.name = "stray".into();
    stray.managed_by = Some("someone-else".into());
    w.cluster.set_slices(
        "games",
        "room",
        vec![slice("game", 8000, &["10.0.0.1"]), stray],
    );
    w.event().await;
    let (calls, warnings) = (w.elb_calls(), w.cluster.notices().len());

    // WHEN the same event comes again
    w.event().await;

    // THEN no ELBv2 call, the stray pod never registered, and no second warning
    assert_eq!(w.elb_calls(), calls, "{:?}", w.elb.all_calls());
    assert_eq!(w.registered(), BTreeSet::from(["10.0.0.1:8000".to_owned()]));
    assert_eq!(w.cluster.notices().len(), warnings);
}
