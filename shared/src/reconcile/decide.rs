//! What a Service's annotations and state call for, before anything is read from AWS.

use super::reconciler::Reconciler;
use crate::contract::annotations::{self, AllocationRequest, Mode};
use crate::contract::service_model::{ListenerSpec, ServiceState, listener_specs};

/// What a Service's annotations and state call for.
pub(super) enum Decision {
    Release,
    Ensure(Box<AllocationRequest>, Vec<ListenerSpec>),
    Reject(&'static str, String),
}

impl Reconciler {
    /// Why `listeners` listeners can never be allocated together in `pool`, if they cannot:
    /// one claim transaction holds [`crate::model::claims::MAX_LISTENERS_PER_CLAIM`] and one NLB
    /// the pool's quota (less its blocked ports). Checked at the door, so such a Service gets
    /// an `Error:` naming the limit instead of a transaction DynamoDB refuses at every retry.
    pub(super) fn listener_limit(&self, pool: &str, listeners: usize) -> Option<String> {
        let per_claim = crate::model::claims::MAX_LISTENERS_PER_CLAIM;
        let per_nlb = self
            .pools
            .get(pool)
            .map_or(usize::MAX, |p| p.per_nlb() as usize);
        let limit = per_claim.min(per_nlb);
        (listeners > limit).then(|| {
            format!(
                "the Service asks for {listeners} listeners (one per port; TCP and UDP on one \
                 port share one), more than fit together: at most {limit} (one claim \
                 transaction holds {per_claim}, DynamoDB taking 100 items; one NLB of pool \
                 {pool:?} holds {per_nlb}); split its ports over several Services"
            )
        })
    }

    pub(super) fn decide(&self, service: &ServiceState) -> Decision {
        if service.deleting {
            return Decision::Release;
        }
        match annotations::opt_in(&service.annotations) {
            Err(e) => return Decision::Reject("InvalidAnnotation", e.to_string()),
            Ok(false) => return Decision::Release,
            Ok(true) => {}
        }
        let request = match annotations::parse_request(&service.annotations) {
            Ok(r) => r,
            Err(e) => return Decision::Reject("InvalidAnnotation", e.to_string()),
        };
        if self.pools.get(&request.pool).is_none() {
            return Decision::Reject(
                "InvalidAnnotation",
                format!(
                    "annotation {}: pool {:?} is not configured (pools: {})",
                    annotations::POOL,
                    request.pool,
                    self.pools.names()
                ),
            );
        }
        if request.mode == Mode::PerPod && service.selector.is_empty() {
            return Decision::Reject(
                "InvalidService",
                format!(
                    "annotation {}: per-pod mode needs a Service with a selector (its pods)",
                    annotations::MODE
                ),
            );
        }
        let specs = match listener_specs(service) {
            Ok(specs) => specs,
            Err(e) => return Decision::Reject("InvalidService", e),
        };
        if let Some(limit) = self.listener_limit(&request.pool, specs.len()) {
            return Decision::Reject("InvalidService", limit);
        }
        let hand_over = super::claim_key::MAX_LISTENERS_PER_HAND_OVER;
        if request.claim_key.is_some() && specs.len() > hand_over {
            return Decision::Reject(
                "InvalidService",
                format!(
                    "annotation {}: a Service with a claim key may have at most {hand_over} \
                     listeners (one hand-over moves them in one transaction); it asks for {}",
                    annotations::CLAIM_KEY,
                    specs.len()
                ),
            );
        }
        match request.options.check(&specs) {
            Ok(()) => Decision::Ensure(Box::new(request), specs),
            Err(e) => Decision::Reject("InvalidAnnotation", e.to_string()),
        }
    }
}
