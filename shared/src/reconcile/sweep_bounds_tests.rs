//! The sweep's bounds: retries capped and taken in turn, target groups checked without a
//! claims read each, the stop time kept, and the cursor saved as the run goes.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

use async_trait::async_trait;

use super::SweepLimits;
use super::sweep_share::next_share;
use super::sweep_tests::{World, owner, service, world};
use crate::contract::annotations::STATUS;
use crate::model::claims::{ClaimState, CursorStore, StoreError, SweepCursor};

impl World {
    fn rooms(&self, n: usize) {
        for i in 0..n {
            self.cluster
                .put_service(service(&format!("room-{i}"), &format!("u{i}")));
        }
    }

    async fn sweep_with(&self, limits: SweepLimits) -> super::SweepReport {
        self.reconciler
            .sweep(&self.cluster, self.store.as_ref(), limits)
            .await
            .expect("sweeps")
    }

    /// A listener and target group a stopped run left for a Service that is gone, on a port
    /// no listener uses.
    async fn leave_leftovers_on_a_free_port(&self) {
        let used: Vec<u16> = self.elb.listeners().iter().map(|l| l.info.port).collect();
        let free = (30000..30100)
            .find(|p| !used.contains(p))
            .expect("a free port");
        self.leave_resources(&owner("gone", "u-gone", "prod"), free)
            .await;
    }

    async fn cursor(&self) -> SweepCursor {
        self.store.load_cursor().await.expect("cursor")
    }
}

#[test]
fn next_share_goes_on_after_the_cursor_and_wraps_round() {
    let items: std::collections::BTreeMap<String, u8> =
        ["a", "b", "c", "d"].map(|k| (k.to_owned(), 0)).into();
    let keys = |after: Option<&str>, n| -> Vec<String> {
        next_share(&items, after, n)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect()
    };
    assert_eq!(keys(None, 2), ["a", "b"]);
    assert_eq!(keys(Some("b"), 3), ["c", "d", "a"]);
    assert_eq!(keys(Some("c"), 10), ["d", "a", "b", "c"], "none twice");
    // The cursor's Service was deleted since: the next one goes on.
    assert_eq!(keys(Some("bb"), 1), ["c"]);
}

#[tokio::test]
async fn retries_are_capped_per_run_and_taken_in_turn() {
    // GIVEN five Services waiting for a port in a pool of one
    let w = world(1);
    w.rooms(6);
    w.sweep().await;
    let pending: Vec<String> = (0..6)
        .map(|i| format!("room-{i}"))
        .filter(|name| {
            w.cluster
                .get("games", name)
                .and_then(|s| s.annotations.get(STATUS).cloned())
                .is_some_and(|st| st.starts_with("Pending"))
        })
        .map(|name| format!("games/{name}"))
        .collect();
    assert_eq!(pending.len(), 5);
    let limits = SweepLimits {
        retries_per_run: 2,
        ..SweepLimits::default()
    };

    // WHEN three runs may retry two each
    let mut taken = Vec::new();
    for _ in 0..3 {
        let report = w.sweep_with(limits).await;
        assert_eq!((report.pending_retried, report.retries_left), (2, 3));
        assert_eq!(
            report.services_reconciled, 3,
            "two retries and the one allocated"
        );
        taken.push(w.cursor().await.retries_after.expect("a place kept"));
    }

    // THEN each run went on after the last, wrapping round
    assert_eq!(taken, [&*pending[1], &*pending[3], &*pending[0]]);
}

#[tokio::test]
async fn target_groups_of_claims_read_by_nlb_cost_no_claims_read() {
    // GIVEN allocated Services, and a target group a stopped run left for a Service gone
    let w = world(50);
    w.rooms(6);
    w.sweep().await;
    w.leave_leftovers_on_a_free_port().await;
    let (tg, listener) = (w.elb.target_groups().len(), w.elb.listeners().len());
    assert_eq!((tg, listener), (7, 7));
    let only_groups = SweepLimits {
        services_per_run: 0,
        retries_per_run: 0,
        ..SweepLimits::default()
    };
    let reads = w.store.owner_reads();

    let report = w.sweep_with(only_groups).await;

    // THEN the leftovers are gone after one fresh read; the six claimed groups cost none
    assert_eq!(report.leaked_listeners_deleted, 1);
    assert_eq!(report.leaked_target_groups_deleted, 1);
    assert_eq!(w.store.owner_reads() - reads, 1);
    assert_eq!(w.elb.target_groups().len(), 6);
}

#[tokio::test]
async fn listeners_that_forward_to_their_holders_group_cost_no_tags_read() {
    // GIVEN allocated Services, and a listener a stopped run left on a free port
    let w = world(50);
    w.rooms(6);
    w.sweep().await;
    let nlbs_only = SweepLimits {
        services_per_run: 0,
        retries_per_run: 0,
        target_group_pages: 0,
        ..SweepLimits::default()
    };
    let tags_reads = w.elb.calls("DescribeTags");
    w.sweep_with(nlbs_only).await;
    assert_eq!(
        w.elb.calls("DescribeTags"),
        tags_reads,
        "the holders' own listeners"
    );
    w.leave_leftovers_on_a_free_port().await;

    let report = w.sweep_with(nlbs_only).await;

    // THEN its tags are read once, and it goes
    assert_eq!(w.elb.calls("DescribeTags"), tags_reads + 1);
    assert_eq!(report.leaked_listeners_deleted, 1);
    assert_eq!(w.elb.listeners().len(), 6);
}

#[tokio::test]
async fn a_run_past_its_stop_time_starts_no_more_work_and_keeps_its_place() {
    // GIVEN Services to reconcile, claims of one that is gone, a place kept by an earlier run
    let w = world(50);
    w.rooms(3);
    let gone = owner("gone", "u-gone", "prod");
    w.leave_resources(&gone, 30001).await;
    w.claim(&gone, 30001, ClaimState::Active);
    let before = w.cursor().await;

    let report = w
        .sweep_with(SweepLimits {
            stop_by: Some(Instant::now()),
            ..SweepLimits::default()
        })
        .await;

    // THEN the NLBs were swept (orphans released, use reported), nothing else started
    assert!(report.cut_short);
    assert_eq!(report.orphan_claims_released, 1);
    assert_eq!(report.pools.len(), 1);
    assert_eq!(report.services_reconciled, 0);
    let after = w.cursor().await;
    assert_eq!(
        (after.services_after, after.target_group_marker),
        (before.services_after, before.target_group_marker)
    );
    assert!(w.store.all_claims().is_empty());
}

/// Saves into the store, but fails the `fail_at`-th save, as a run that dies there.
struct DyingCursors<'a> {
    world: &'a World,
    saves: AtomicUsize,
    fail_at: usize,
}

#[async_trait]
impl CursorStore for DyingCursors<'_> {
    async fn load_cursor(&self) -> Result<SweepCursor, StoreError> {
        self.world.store.load_cursor().await
    }

    async fn save_cursor(&self, cursor: &SweepCursor) -> Result<(), StoreError> {
        if self.saves.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(StoreError {
                operation: "PutItem (sweep cursor)",
                message: "the run died here".into(),
                retryable: true,
            });
        }
        self.world.store.save_cursor(cursor).await
    }
}

#[tokio::test]
async fn a_run_that_dies_midway_is_taken_up_after_its_last_saved_batch() {
    // GIVEN ten Services, reconciled four at a time (one at once)
    let w = world(50);
    w.rooms(10);
    let limits = SweepLimits {
        concurrency: 1,
        ..SweepLimits::default()
    };
    // WHEN the run dies at its third save: after the NLBs, after the first batch
    let dying = DyingCursors {
        world: &w,
        saves: AtomicUsize::new(0),
        fail_at: 3,
    };
    let died = w.reconciler.sweep(&w.cluster, &dying, limits).await;
    assert!(died.is_err(), "{died:?}");
    assert_eq!(
        w.cursor().await.services_after.as_deref(),
        Some("games/room-3"),
        "the first batch's place is saved"
    );

    // THEN the next run goes on after it
    let report = w
        .sweep_with(SweepLimits {
            services_per_run: 2,
            ..limits
        })
        .await;
    assert_eq!(report.services_reconciled, 2);
    assert_eq!(
        w.cursor().await.services_after.as_deref(),
        Some("games/room-5")
    );
}
