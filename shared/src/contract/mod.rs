//! The contract: what the system promises outside it, as plain data with its parsing and
//! rendering, and no I/O: the annotations it reads and writes on Services and pods (and the
//! Service and pod as it reads them), the events on the bus, the tags on the AWS resources it
//! makes, the names it accepts.
//!
//! The lowest layer: it imports nothing from `model`, `adapters` or `reconcile`.

pub mod annotations;
pub mod cross_zone;
pub mod event;
pub mod listener_options;
pub mod names;
pub mod pod_model;
pub mod pool_event;
pub mod protocol;
pub mod service_model;
pub mod tags;
