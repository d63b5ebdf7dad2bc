//! One run's context: what every step of an allocation works from, read once by the entry
//! point and passed down.

use crate::contract::annotations::{AllocationRequest, network_disabled};
use crate::contract::service_model::{ListenerSpec, ServiceState};
use crate::model::claims::RunToken;
use crate::model::cluster::Cluster;
use crate::model::pool::NlbPool;
use crate::model::targets::SliceView;

/// What one run over a Service (or one of its pods) works from. The claims the run holds go
/// beside it, in a [`super::holding::Holding`]: they are the one part that changes as the run
/// goes, while this is shared by the steps it runs at once.
#[derive(Clone, Copy)]
pub(in crate::reconcile) struct Run<'a> {
    /// The run: claims it makes or takes over carry it.
    pub token: &'a RunToken,
    /// Where the Service lives.
    pub cluster: &'a dyn Cluster,
    /// The Service (or a pod of a per-pod Service, as a subject of its own), as last written
    /// by this run.
    pub service: &'a ServiceState,
    /// The pool it asks for, as configured.
    pub pool: &'a NlbPool,
    /// What its annotations ask for.
    pub request: &'a AllocationRequest,
    /// Its listeners.
    pub specs: &'a [ListenerSpec],
    /// Its endpoints, as trusted (for a pod: only its own).
    pub slices: &'a [SliceView],
}

impl<'a> Run<'a> {
    /// The same run over `service` as it is now (written by the run, or read again).
    pub fn on(self, service: &'a ServiceState) -> Self {
        Self { service, ..self }
    }

    /// Whether the subject is taken out of its listeners: the Service asks it (for all its
    /// pods, in per-pod mode) or, for a pod, the pod itself. A pod's unreadable value was
    /// refused before its run (`per_pod`), and reads here as not asking.
    pub fn disabled(&self) -> bool {
        self.request.network_disabled
            || (self.service.pod.is_some()
                && network_disabled(&self.service.annotations).unwrap_or(false))
    }

    /// The same run over another subject with its own endpoints (a pod of the Service).
    pub fn for_subject(self, service: &'a ServiceState, slices: &'a [SliceView]) -> Self {
        Self {
            service,
            slices,
            ..self
        }
    }
}
