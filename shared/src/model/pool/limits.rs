//! The AWS limits a pool is bounded by.

/// Listeners per Network Load Balancer: an AWS quota that cannot be raised.
pub const MAX_LISTENERS_PER_NLB: u32 = 50;
