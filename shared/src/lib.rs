//! nlb-port-pool: give each opted-in Kubernetes Service its own listener port on a shared
//! AWS Network Load Balancer.
//!
//! This crate holds what the functions and the forwarder share: the contracts (annotations,
//! events), typed configuration, and the AWS and Kubernetes plumbing.

pub mod annotations;
pub mod aws;
pub mod aws_error;
pub mod backoff;
pub mod certificates;
pub mod claims;
pub mod cluster;
pub mod config;
pub mod config_source;
pub mod cross_zone;
pub mod eks_token;
pub mod elb;
pub mod event;
pub mod failpoint;
pub mod kube_access;
pub mod listener_options;
pub mod metrics;
pub mod names;
pub mod pod_model;
pub mod pod_targets;
pub mod pool;
pub mod pool_event;
pub mod protocol;
pub mod reconcile;
pub mod service_model;
pub mod target_policy;
pub mod targets;
pub mod telemetry;
