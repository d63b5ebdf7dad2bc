//! The no-op check of an event (a Service already made from what it asks for costs one claims
//! read) and the note, on each claim, of what its listener was made from.

use super::fingerprint::{advertised_as_made, listener_fingerprint};
use super::plan::placed_within;
use super::{Reconciler, Result};
use crate::contract::annotations::{ALLOCATIONS, AllocationRequest};
use crate::contract::service_model::{ListenerSpec, ServiceState};
use crate::model::claims::Claim;
use crate::model::pool::NlbPool;
use crate::model::targets::{SliceView, desired_targets};

impl Reconciler {
    /// Whether a Service (per-Service mode) needs nothing: it holds the finalizer, its claims
    /// lie within its pool and [`advertised_as_made`] holds. `slices` are those its targets
    /// come from (none ready when it is taken out of its listeners). Costs one claims read, and none
    /// for a Service this system has not touched.
    pub(super) async fn already_made(
        &self,
        service: &ServiceState,
        pool: &NlbPool,
        request: &AllocationRequest,
        specs: &[ListenerSpec],
        slices: &[SliceView],
    ) -> Result<bool> {
        if !service.has_finalizer() || !service.annotations.contains_key(ALLOCATIONS) {
            return Ok(false);
        }
        let only = match &request.nlb {
            None => None,
            Some(_) => match self.named_nlb(pool, request) {
                Some(arn) => Some(arn),
                None => return Ok(false),
            },
        };
        let held = self.claims_for(service).await?;
        Ok(held.iter().all(|c| placed_within(c, pool, only.as_deref()))
            && advertised_as_made(service, request.network_disabled, &held, specs, |spec| {
                listener_fingerprint(pool.name(), request, spec, &desired_targets(spec, slices))
            }))
    }

    /// Notes on the claims what their listeners were made from. A failure is only logged: it
    /// costs the next event a full pass, nothing more.
    pub(super) async fn note_applied(&self, subject: &ServiceState, made: &[(Claim, String)]) {
        if made.is_empty() {
            return;
        }
        if let Err(e) = self.store.note_applied(made).await {
            tracing::warn!(service = %subject.key, error = %e,
                "could not note what the listeners were made from; the next event checks AWS");
        }
    }
}
