//! The operator's view of nlb-port-pool: `kubectl nlb-pool status | get | doctor`.
//!
//! Read-only: it reads the claims table (DynamoDB), ELBv2 and the Kubernetes API, with the
//! permissions of docs/deploy.md's operator policy and `deploy/operator-clusterrole.yaml`,
//! and changes nothing. The reports are computed from a [`snapshot::Snapshot`] alone
//! ([`status::report`], [`doctor::report`]), which [`collect::Sources`] reads.

pub mod cli;
pub mod collect;
pub mod doctor;
pub mod get;
pub mod list;
pub mod progress;
pub mod render;
pub mod snapshot;
pub mod status;
