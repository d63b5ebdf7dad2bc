//! Kubernetes: clients (`client`, with EKS tokens from `eks_token`) and the model's
//! [`Cluster`](crate::model::cluster::Cluster) on the Kubernetes API (`cluster`).

pub mod client;
mod cluster;
pub mod eks_token;

pub use cluster::KubeCluster;
