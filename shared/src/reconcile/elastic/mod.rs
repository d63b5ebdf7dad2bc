//! Elastic pools: the NLBs of a pool's `managed` section, made when the pool runs low and
//! retired when idle (README "Elastic pools").
//!
//! Allocation sees a managed pool as its pre-made NLBs plus the members the claims table lists
//! (read with the rest of the pool's view, see [`Reconciler::refresh_view`]), and claims only on
//! `active` ones (checked in the claim transaction). When an allocation leaves less free than
//! the spare, or a Service goes `Pending`, it asks the pool function to grow (a
//! [`GrowthSignal`]); the pool function ([`Reconciler::tend_pool`]) makes, promotes and retires
//! NLBs, and allocates the Services that waited at once.

mod grow;
mod lifecycle;
mod members;
mod run;
mod signal;
mod tend;
mod tender;
mod wake;

#[cfg(test)]
mod limits_tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use members::MemberCache;
pub use signal::GrowthSignal;
pub use tend::{PoolReport, TendSettings};
pub use tender::PoolTender;

use super::{Outcome, Reconciler, Result};
use crate::contract::annotations;
use crate::contract::service_model::ServiceState;
use crate::model::claims::{PoolRecords, WaitingService, now_epoch};
use crate::model::pool::NlbPool;

/// How often one instance may ask the pool function to grow a pool: a burst of allocations
/// sends one event, not one each.
const SIGNAL_INTERVAL: Duration = Duration::from_secs(5);
/// The same for Services that wait: sooner, they are the reason the pool exists.
const URGENT_SIGNAL_INTERVAL: Duration = Duration::from_secs(1);

/// How often one instance signals the reachability function.
const CHECK_SIGNAL_INTERVAL: Duration = Duration::from_secs(2);
/// The key of the reachability signal among the pools' in [`MemberCache`].
const CHECKS_SIGNAL_KEY: &str = "\u{0}checks";

impl Reconciler {
    /// Keeps managed pools' records (members, waiting Services) in `records`: needed by every
    /// function once a pool is managed.
    pub fn with_pool_records(mut self, records: Arc<dyn PoolRecords>) -> Self {
        self.records = Some(records);
        self
    }

    /// Tells the pool function when a managed pool runs low.
    pub fn with_growth_signal(mut self, signal: Arc<dyn GrowthSignal>) -> Self {
        self.signal = Some(signal);
        self
    }

    fn records(&self) -> Result<&Arc<dyn PoolRecords>> {
        self.records.as_ref().ok_or_else(|| {
            super::Error::Setup("a pool is managed but this function keeps no pool records".into())
        })
    }

    /// `pool` with the members last read (none before the first read).
    pub(super) fn with_cached_members(&self, pool: &NlbPool) -> NlbPool {
        if pool.managed().is_none() {
            return pool.clone();
        }
        let members = self
            .members
            .lock_pools()
            .get(pool.name())
            .cloned()
            .unwrap_or_default();
        pool.with_members(members)
    }

    /// Why `pool` cannot grow, as its record said when its members were last read.
    pub(super) fn held_back(&self, pool: &NlbPool) -> Option<String> {
        self.members
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(pool.name())
            .cloned()
    }

    /// Reads the members of a managed pool again; `pool` with them.
    pub(super) async fn refresh_members(&self, pool: &NlbPool) -> Result<NlbPool> {
        if pool.managed().is_none() {
            return Ok(pool.clone());
        }
        let record = self.records()?.pool_record(pool.name()).await?;
        let arns = record.member_arns();
        {
            let mut held = self
                .members
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match record.held {
                Some(reason) => held.insert(pool.name().to_owned(), reason),
                None => held.remove(pool.name()),
            };
        }
        self.members
            .lock_pools()
            .insert(pool.name().to_owned(), arns.clone());
        Ok(pool.with_members(arns))
    }

    /// After a Service's allocation run in a managed pool: a Service that waits is noted (and
    /// the pool asked to grow); one that no longer waits is forgotten; an allocation that left
    /// less free than the spare asks the pool to grow.
    pub(super) async fn after_allocation(
        &self,
        pool: &NlbPool,
        service: &ServiceState,
        listeners: usize,
        outcome: &Outcome,
    ) {
        let Some(managed) = pool.managed() else {
            return;
        };
        let Ok(records) = self.records() else {
            return;
        };
        let was_waiting = service
            .annotations
            .get(annotations::STATUS)
            .is_some_and(|s| s.starts_with("Pending"));
        let result = match outcome {
            Outcome::Pending(reason) => {
                let waiting = WaitingService {
                    uid: service.uid.clone(),
                    namespace: service.key.namespace.clone(),
                    name: service.key.name.clone(),
                    listeners: u32::try_from(listeners).unwrap_or(u32::MAX),
                    since: now_epoch(),
                };
                let noted = records.note_waiting(pool.name(), &waiting).await;
                self.ask_to_grow(pool.name(), reason, true).await;
                noted
            }
            Outcome::Allocated { claimed, .. } => {
                let cleared = if was_waiting {
                    records.clear_waiting(pool.name(), &service.uid).await
                } else {
                    Ok(())
                };
                if *claimed > 0 {
                    let live = self.with_cached_members(pool);
                    let free = self.view.free(&live);
                    if free < managed.spare as usize {
                        let reason = format!("{free} listeners free, spare {}", managed.spare);
                        self.ask_to_grow(pool.name(), &reason, false).await;
                    }
                }
                cleared
            }
            Outcome::Released { .. } | Outcome::Rejected(_) | Outcome::Nothing(_)
                if was_waiting =>
            {
                records.clear_waiting(pool.name(), &service.uid).await
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            // The pool function finds waiting Services by their status on its next run too.
            tracing::warn!(service = %service.key, error = %e, "could not note the Service's wait");
        }
    }

    /// Signals the reachability function, at most once per [`CHECK_SIGNAL_INTERVAL`].
    pub(super) async fn signal_checks(&self) {
        let Some(signal) = &self.signal else {
            return;
        };
        {
            let mut sent = self
                .members
                .signalled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if sent
                .get(CHECKS_SIGNAL_KEY)
                .is_some_and(|t| t.elapsed() < CHECK_SIGNAL_INTERVAL)
            {
                return;
            }
            sent.insert(CHECKS_SIGNAL_KEY.to_owned(), Instant::now());
        }
        if let Err(e) = signal.checks_due(&self.cluster_name).await {
            tracing::warn!(error = %e, "could not signal the reachability function");
        }
    }

    /// Sends the growth signal for `pool`, at most once per [`SIGNAL_INTERVAL`] per instance
    /// ([`URGENT_SIGNAL_INTERVAL`] when a Service waits).
    async fn ask_to_grow(&self, pool: &str, reason: &str, urgent: bool) {
        let Some(signal) = &self.signal else {
            return;
        };
        {
            let mut sent = self
                .members
                .signalled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let interval = if urgent {
                URGENT_SIGNAL_INTERVAL
            } else {
                SIGNAL_INTERVAL
            };
            if sent.get(pool).is_some_and(|t| t.elapsed() < interval) {
                return;
            }
            sent.insert(pool.to_owned(), Instant::now());
        }
        if let Err(e) = signal.pool_low(&self.cluster_name, pool, reason).await {
            // The schedule is the backstop: the pool function looks at every pool anyway.
            tracing::warn!(pool, error = %e, "could not ask the pool function to grow the pool");
        }
    }
}
