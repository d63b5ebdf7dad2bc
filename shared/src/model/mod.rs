//! The model: what the system decides with, as plain data, and the traits (ports) through
//! which it reads and changes the world: pools, claims and their store, load balancers,
//! the cluster, targets, configuration.
//!
//! Depends on `contract` only; `adapters` carry its traits out and `reconcile` drives them.

pub mod backoff;
pub mod certificates;
pub mod claims;
pub mod cluster;
pub mod config;
pub mod config_source;
pub mod elb;
pub mod pod_targets;
pub mod pool;
pub mod target_policy;
pub mod targets;
