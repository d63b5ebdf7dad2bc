//! Where a function's configuration comes from at cold start: the environment, and what the
//! environment only names.
//!
//! A Lambda's environment holds 4 KB in all, less than a large pool's JSON or a cluster's CA
//! (about 1.5 KB). So, unless the environment gives them (the local stack, tests):
//! - the pools are the value of the SSM parameter `POOLS_PARAMETER` names (`POOLS` holds the
//!   JSON itself; one of the two);
//! - a pool's NLBs may be given by name (an `nlbArns` entry not starting with `arn:`), found
//!   with DescribeLoadBalancers, [`MAX_NAMES_PER_CALL`] names a call;
//! - the cluster's endpoint and CA come from `eks:DescribeCluster` of `CLUSTER_NAME`, unless
//!   `KUBECONFIG` or `EKS_ENDPOINT` with `EKS_CA_DATA` say how to reach it.
//!
//! All of it is read once, when the function's instance starts, and kept for its life.
//!
//! This module only names its parts: the AWS reads behind a trait (`lookups`), the pools' NLB
//! names (`names`), and the loading itself (`load`).

mod load;
pub(crate) mod lookups;
mod names;

pub use load::{POOLS_PARAMETER_VAR, POOLS_VAR, pools, resolve_names};
pub use lookups::{ClusterEndpoint, ConfigLookups, MAX_NAMES_PER_CALL, NamedLoadBalancer};
pub use names::{MAX_NLB_NAME_LEN, nlb_names, with_arns};

#[cfg(test)]
mod tests;
