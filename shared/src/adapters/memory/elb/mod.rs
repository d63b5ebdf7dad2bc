//! An in-memory [`LoadBalancing`](crate::model::elb::LoadBalancing) that behaves as AWS does (not as moto does): a second
//! listener on a used port is refused, an NLB takes at most 50 listeners (whoever made them),
//! an NLB deleted out of band is `LoadBalancerNotFound`, target group names are unique, a
//! deregistered target drains before it is gone. Failures can be injected per
//! operation, and every call is counted.
//!
//! This module only names its parts: what the double holds (`resources`), its state and call
//! counting (`state`), the ELBv2 operations (`load_balancing`, `options`, `zones`,
//! `quotas`) and the NLBs of managed pools (`fleet`).

mod fleet;
mod load_balancing;
mod options;
mod quotas;
mod resources;
mod state;
mod zones;

pub use resources::ElbQuotas;
pub use state::MemoryLoadBalancing;
