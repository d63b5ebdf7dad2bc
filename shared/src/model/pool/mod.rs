//! NLB pools: named sets of Network Load Balancers whose listener ports are handed out.
//!
//! A pool is configured: the `POOLS` variable holds JSON such as
//! `{"default": {"nlbArns": ["arn:..."], "ports": "30000-32767", "listenerQuota": 50}}`. Its
//! NLBs are pre-made ones (`nlbArns`, never made or deleted by the system) and, when the pool
//! has a [`managed`] section, those the pool function made for it, which the claims table
//! lists (see [`NlbPool::with_members`]).
//!
//! This module only names its parts: port ranges (`port_range`), AWS's limits (`limits`),
//! pools and their configuration (`nlb_pool`), and the NLBs a managed pool makes (`managed`).

mod limits;
mod managed;
mod nlb_pool;
mod port_range;

pub use limits::MAX_LISTENERS_PER_NLB;
pub use managed::{
    IpAddressType, MANAGED_NLB_PREFIX, ManagedSpec, Scheme, SubnetPlacement, managed_nlb_name,
};
pub use nlb_pool::{DEFAULT_POOL, NlbPool, PlacementPolicy, PoolSet, nlb_name_of};
pub use port_range::PortRange;

#[cfg(test)]
mod tests;
