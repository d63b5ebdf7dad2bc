//! Driving AWS toward what a Service asks for (level-triggered).
//!
//! Every entry point re-reads the Service from the Kubernetes API; the event that triggered
//! it only names the Service. Duplicated, late or reordered events therefore converge to the
//! same state, and a run killed between any two steps leaves claims and tagged resources that
//! the next run (or the sweep) finishes or undoes.

mod advert;
mod allocator;
mod checked_cache;
mod claim_key;
mod claim_round;
mod claiming;
mod decide;
mod dns_names;
mod elastic;
mod ensure;
mod entry;
mod error;
pub mod failpoint;
mod fingerprint;
mod holding;
mod identity;
mod identity_cache;
mod listeners;
mod made;
pub mod metrics;
mod options;
mod outcome;
mod per_pod;
mod plan;
mod quotas;
mod reachable;
mod reconciler;
mod register;
mod release;
mod run;
mod screening;
mod service_owner;
mod sweep;
mod sweep_groups;
mod sweep_limits;
mod sweep_listing;
mod sweep_nlb;
mod sweep_report;
mod sweep_share;
mod sync_targets;
mod target_groups;
mod waiting;
mod wiring;
mod writes;

pub use allocator::{Placement, PoolView};
pub use elastic::{GrowthSignal, PoolReport, PoolTender, TendSettings};
pub use error::{Error, Result};
pub use identity::Ownership;
pub use outcome::{Outcome, RunMetrics};
pub use reachable::{ReachChecker, ReachReport, ReachSettings};
pub use reconciler::{DEFAULT_CLAIM_GRACE, DEFAULT_STACK_ID, Reconciler};
pub use sweep::{DEFAULT_MAX_DELETIONS, PoolUse, SweepLimits, SweepReport};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sweep_bounds_tests;
#[cfg(test)]
mod sweep_tests;

#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod run_token_tests;

#[cfg(test)]
mod address_tests;
#[cfg(test)]
mod aws_behaviour_tests;
#[cfg(test)]
mod cross_zone_tests;
#[cfg(test)]
mod elastic_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod network_disabled_tests;
#[cfg(test)]
mod no_op_tests;
#[cfg(test)]
mod options_tests;
#[cfg(test)]
mod own_pods_tests;
#[cfg(test)]
mod per_pod_tests;
#[cfg(test)]
mod quotas_tests;
#[cfg(test)]
mod reachable_tests;
#[cfg(test)]
mod reachable_zones_tests;
#[cfg(test)]
mod release_batches_tests;
#[cfg(test)]
mod screening_tests;
#[cfg(test)]
mod shared_table_tests;
#[cfg(test)]
mod stalling;
