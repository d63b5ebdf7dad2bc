//! "Reachable, not just allocated": an NLB forwards to a newly registered target only once its
//! health checks pass (90 to 300 s in AWS), so `Allocated` (the API calls returned) is not yet
//! something players can use. After an allocation or a registration, the Service is noted on
//! the reachability work list ([`crate::model::claims::CheckRecords`]) and the reachability function
//! is signalled; it checks target health every [`ReachSettings::check_every`] until each
//! listener has a healthy target, then writes status `Ready` (on the pod, in per-pod mode) and
//! sets the `nlb.port-manager/reachable` condition of pods that declare that readiness gate. A
//! Service still unreachable at its deadline gets a Warning Event saying why, and leaves the list.

mod check;
mod checker;
mod report;
mod settings;
mod zones;

use std::sync::Arc;
use std::time::Duration;

pub use checker::ReachChecker;
pub use report::ReachReport;
pub use settings::ReachSettings;

use super::Reconciler;
use crate::contract::service_model::ServiceState;
use crate::model::claims::{CheckItem, CheckRecords, now_epoch};

impl Reconciler {
    /// Keeps the reachability work list in `records`.
    pub fn with_check_records(mut self, records: Arc<dyn CheckRecords>) -> Self {
        self.checks = Some(records);
        self
    }

    /// Overrides [`ReachSettings::default`].
    pub fn with_reach_settings(mut self, settings: ReachSettings) -> Self {
        self.reach = settings;
        self
    }

    /// Sets the [`ReachSettings`] of a reconciler already built.
    pub fn set_reach_settings(&mut self, settings: ReachSettings) {
        self.reach = settings;
    }

    /// Notes `service` for a reachability check and signals the reachability function. A
    /// failure is logged: the Service stays `Allocated`, and its next allocation notes it again.
    pub(super) async fn note_check(&self, service: &ServiceState) {
        let Some(checks) = &self.checks else {
            return;
        };
        let now = now_epoch();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let item = CheckItem {
            uid: service.uid.clone(),
            namespace: service.key.namespace.clone(),
            name: service.key.name.clone(),
            due: now + secs(self.reach.check_every),
            deadline: now.saturating_add(secs(self.reach.timeout)),
        };
        if let Err(e) = checks.note_check(&item).await {
            tracing::warn!(service = %service.key, error = %e, "could not note a reachability check");
            return;
        }
        self.signal_checks().await;
    }
}
