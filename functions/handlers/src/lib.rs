//! The Lambda handlers: an EventBridge event in, a reconcile (or a sweep, pool or
//! reachability run), a summary out. Each function builds only what it uses ([`Deps`]).
//!
//! The Service events' functions share one pipeline (`service_fn`); the sweep, the pool
//! function and the reachability function have a handler each.

mod busy;
mod deps;
mod invocation;
mod pool_fn;
mod reachable_fn;
mod role;
mod service_fn;
mod settings;
mod signal;
mod sweep_fn;
pub mod time_budget;

pub use busy::DEFAULT_BUSY_WAIT;
pub use deps::{Deps, print_run_metrics};
pub use invocation::{Error, Event, OTHER_CLUSTER};
pub use pool_fn::{PoolSummary, on_pool_event};
pub use reachable_fn::on_reachability_event;
pub use service_fn::{
    Summary, on_endpoints_changed, on_service_changed, on_service_deleted, parse,
};
pub use settings::StartupError;
pub use signal::EventBridgeSignal;
pub use sweep_fn::{SweepSummary, on_schedule};
