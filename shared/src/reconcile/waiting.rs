//! A Service that waits: `Pending` with the reason, a Warning Event when its status changes.

use super::{Outcome, Reconciler, Result};
use crate::contract::annotations::{self, Status};
use crate::contract::service_model::ServiceState;
use crate::model::cluster::{Cluster, NoticeKind, ServiceOutputs};

impl Reconciler {
    /// No room in the pool: status `Pending`, a Warning Event, and the finalizer only if the
    /// Service still holds other listeners.
    pub(super) async fn pending(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        holds_nothing: bool,
        reason: String,
    ) -> Result<Outcome> {
        self.waits(cluster, service, holds_nothing, "PoolExhausted", reason)
            .await
    }

    /// The Service waits: status `Pending: <reason>`, a Warning Event `event` when the status
    /// changes, the finalizer only if it still holds listeners.
    pub(super) async fn waits(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        holds_nothing: bool,
        event: &'static str,
        reason: String,
    ) -> Result<Outcome> {
        let status = Status::Pending(reason.clone()).to_string();
        let want = |s: &ServiceState| {
            let mut outputs = ServiceOutputs::current(s);
            outputs.finalizer = !holds_nothing;
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), status.clone());
            outputs
        };
        self.write_and_tell(cluster, service, &want, NoticeKind::Warning, event, &reason)
            .await?;
        Ok(Outcome::Pending(reason))
    }
}
