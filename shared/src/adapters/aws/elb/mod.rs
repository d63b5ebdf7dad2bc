//! [`LoadBalancing`](crate::model::elb::LoadBalancing) on the ELBv2 API.
//!
//! This module only names its parts: the client and its call budgets (`client`, `rate`), the
//! calls that make and change things (`load_balancing`, `options`), the reads (`reads`,
//! `zones`), the NLBs of managed pools (`fleet`), conversions between the SDK's types and the
//! project's (`convert`) and how denials on others' resources are told apart (`denials`).

mod client;
mod convert;
mod denials;
mod fleet;
mod load_balancing;
mod options;
mod rate;
mod reads;
mod zones;

pub use client::AwsLoadBalancing;
pub use rate::CallRate;
