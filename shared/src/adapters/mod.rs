//! The adapters: the model's traits carried out on AWS (`aws`), Kubernetes (`kube`) and
//! DynamoDB (`dynamo`), and in memory for tests (`memory`).
//!
//! Depends on `model` and `contract`, never on `reconcile`.

pub mod aws;
pub mod dynamo;
pub mod kube;
#[cfg(any(test, feature = "test-doubles"))]
pub mod memory;
pub mod telemetry;
