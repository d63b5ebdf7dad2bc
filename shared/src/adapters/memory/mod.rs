//! In-memory doubles of the model's traits, for tests (feature `test-doubles`): they behave as
//! the services do, count calls and take injected failures.

mod certificates;
mod claims;
mod cluster;
mod elb;

pub use certificates::MemoryCertificates;
pub use claims::MemoryClaimStore;
pub use cluster::{MEMORY_CLUSTER_UID, MemoryCluster};
pub use elb::{ElbQuotas, MemoryLoadBalancing};
