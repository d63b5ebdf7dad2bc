//! Writing a Service's (or pod's) outputs: conditional on the object as read, read again when
//! it changed under the write, with an Event when the status changes.

use super::outcome::Outcome;
use super::reconciler::Reconciler;
use super::{Error, Result};
use crate::contract::annotations::{self, Status};
use crate::contract::service_model::ServiceState;
use crate::model::cluster::{
    Cluster, KubeError, Notice, NoticeKind, Patched, ServiceOutputs, Written,
};

/// Attempts of a Service write that meets conflicting writers.
pub(super) const WRITE_ATTEMPTS: usize = 4;

/// A Service write that kept meeting other writers: retryable.
pub(super) fn still_conflicting(service: &ServiceState) -> Error {
    Error::Kube(KubeError {
        action: format!(
            "patch Service {}/{}",
            service.key.namespace, service.key.name
        ),
        message: format!("still conflicting after {WRITE_ATTEMPTS} attempts"),
        retryable: true,
    })
}

impl Reconciler {
    /// A user error: status `Error: ...` and a Warning Event, keeping whatever the Service
    /// already holds (an edit gone wrong must not cost a game its port).
    pub(super) async fn reject(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        reason: &'static str,
        message: String,
    ) -> Result<Outcome> {
        let status = Status::Error(message.clone()).to_string();
        let want = |s: &ServiceState| {
            let mut outputs = ServiceOutputs::current(s);
            outputs
                .annotations
                .insert(annotations::STATUS.to_owned(), status.clone());
            outputs
        };
        self.write_and_tell(
            cluster,
            service,
            &want,
            NoticeKind::Warning,
            reason,
            &message,
        )
        .await?;
        Ok(Outcome::Rejected(message))
    }

    /// Writes the outputs `want` computes and, when the status changes, publishes an Event
    /// saying why.
    pub(super) async fn write_and_tell(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        want: &(dyn Fn(&ServiceState) -> ServiceOutputs + Sync),
        kind: NoticeKind,
        reason: &'static str,
        note: &str,
    ) -> Result<()> {
        let status_changed = service.annotations.get(annotations::STATUS)
            != want(service).annotations.get(annotations::STATUS);
        self.write_with(cluster, service, want).await?;
        if status_changed {
            let notice = Notice {
                kind,
                reason,
                note: note.to_owned(),
                once: None,
            };
            cluster.publish(service, &notice).await?;
        }
        Ok(())
    }

    /// Writes the outputs `want` computes from the Service as it is: when it changed under the
    /// write, it is read again and `want` asked again. Outputs computed from an old read are
    /// never re-applied, so a write cannot bring back a port another run took away meanwhile.
    pub(super) async fn write_with(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        want: &(dyn Fn(&ServiceState) -> ServiceOutputs + Sync),
    ) -> Result<Written> {
        let mut current = service.clone();
        for _ in 0..WRITE_ATTEMPTS {
            match cluster
                .write_outputs_if_unchanged(&current, &want(&current))
                .await?
            {
                Patched::Done(after) => return Ok(Written::Done(after)),
                Patched::Gone => return Ok(Written::Gone),
                Patched::Changed => match self.reread(cluster, service).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(Written::Gone),
                },
            }
        }
        Err(still_conflicting(service))
    }

    /// The Service read again, if it is still the same object (for a pod's state: the pod).
    pub(super) async fn reread(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<Option<ServiceState>> {
        if let Some(pod) = &service.pod {
            return Ok(cluster
                .pod(&service.key.namespace, &pod.name)
                .await?
                .filter(|p| p.uid == pod.uid)
                .map(|p| service.for_pod(&p)));
        }
        Ok(cluster
            .service(&service.key.namespace, &service.key.name)
            .await?
            .filter(|s| s.uid == service.uid))
    }
}
