//! The forwarder: watches Services, EndpointSlices and the pods that declare the reachable
//! readiness gate, and puts the events of the contract
//! (DESIGN.md section 4) on an EventBridge bus, from the one replica that holds the Lease.
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | flags and environment |
//! | [`decide`] | which event a Service change produces (pure) |
//! | [`tracker`] | what is remembered between watch events; re-lists; coalescing (pure) |
//! | [`pod_tracker`] | the gated pods, and the Services each change wakes (pure) |
//! | [`watch`] | the watch loop feeding the queue |
//! | [`sender`] | batching, retry and accounting behind [`sender::EventSink`] |
//! | [`eventbridge`] | the PutEvents sink |
//! | [`leader`] | Lease election |
//! | [`forwarding`] | one watch and sender per leadership term; drain |
//! | [`metrics`], [`http`] | `/metrics`, `/healthz`, `/readyz` |
//! | [`histogram`] | a Prometheus histogram, for [`metrics`] and [`room_clock`] |
//! | [`room_clock`] | the rooms' latencies and statuses, from the Service watch |
//! | [`app`] | wiring and shutdown order |

pub mod app;
pub mod config;
pub mod decide;
pub mod eventbridge;
pub mod forwarding;
pub mod histogram;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod pod_tracker;
pub mod room_clock;
pub mod sender;
pub mod tracker;
pub mod watch;
