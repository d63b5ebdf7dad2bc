//! The annotation contract on a Service (DESIGN.md section 3), seed-compatible keys.
//!
//! Input annotations are parsed into an [`AllocationRequest`]; every rejection is an
//! [`AnnotationError`] naming the annotation and the value's problem, which the functions show
//! the user as a Warning Event and an `Error:` status. Output annotations are rendered from the
//! allocations by [`render_allocated`].
//!
//! This module only names its parts: the keys (`keys`), reading a value (`value`), the health
//! check (`health_check`), the request parsed from the inputs (`request`) and the outputs
//! (`outputs`).

mod health_check;
mod keys;
mod outputs;
mod request;
mod value;

pub use health_check::{
    DEFAULT_HC_INTERVAL, DEFAULT_HC_THRESHOLD, HealthCheckPort, HealthCheckProtocol,
    HealthCheckSpec,
};
pub use keys::{
    ADDRESS, ALLOCATED_PORT, ALLOCATIONS, AUTO_ASSIGN, CLAIM_KEY, DEFAULT_POD_RELEASE_AFTER,
    DEFAULT_POOL, FINALIZER, HC_HEALTHY_THRESHOLD, HC_INTERVAL, HC_PATH, HC_PORT, HC_PROTOCOL,
    HC_TIMEOUT, HC_UNHEALTHY_THRESHOLD, LISTENER_ARN, MAX_POD_RELEASE_AFTER, MODE,
    NETWORK_DISABLED, NLB, OUTPUT_KEYS, POD_RELEASE_AFTER, PODS, POOL, PREFIX, SERVICE, STATUS,
    TARGET, TARGET_GROUP_ARN, parse_service_ref, service_ref,
};
pub use outputs::{AllocationRecord, PodsSummary, SharedPod, Status, render_allocated};
pub use request::{AllocationRequest, Mode, parse_request};
pub use value::{AnnotationError, Annotations, mentions_opt_in, network_disabled, opt_in};
pub(crate) use value::{invalid, shorten, value};

#[cfg(test)]
mod tests;
