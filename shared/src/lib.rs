//! nlb-port-pool: give each opted-in Kubernetes Service its own listener port on a shared
//! AWS Network Load Balancer.
//!
//! This crate holds what the functions and the forwarder share, in four layers. Each depends
//! only on the layers below it: `contract` <- `model` <- `adapters`, `reconcile`.
//! - [`contract`]: what the system promises outside it: annotations, events, tags.
//! - [`model`]: what it decides with: pools, claims, targets, configuration, as plain data, and
//!   the traits (ports) through which it reads and changes the world.
//! - [`adapters`]: those traits on AWS, Kubernetes and DynamoDB, and in memory for tests.
//! - [`reconcile`]: a run: what a Service needs, and the steps that make it.

pub mod adapters;
pub mod contract;
pub mod model;
pub mod reconcile;
