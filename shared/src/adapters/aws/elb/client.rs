//! The ELBv2 client and the call budgets every operation draws from.

use aws_sdk_elasticloadbalancingv2::Client;

use super::rate::{CallBudget, CallRate};

/// Targets per RegisterTargets / DeregisterTargets call.
pub(super) const TARGET_BATCH: usize = 200;
/// ARNs per DescribeTags call (the API's limit).
pub(super) const TAGS_BATCH: usize = 20;
/// ARNs per DescribeLoadBalancers call (the API's limit; moto has none).
pub(super) const NLB_BATCH: usize = 20;

/// The ELBv2 API.
#[derive(Debug, Clone)]
pub struct AwsLoadBalancing {
    pub(super) client: Client,
    /// Calls of ELBv2's "mutating" bucket: create, modify, delete, tag.
    pub(super) writes: CallBudget,
    /// Calls of its "registration" bucket: RegisterTargets, DeregisterTargets.
    pub(super) registrations: CallBudget,
}

impl AwsLoadBalancing {
    /// Uses `client`, with no limit of its own on the calls it makes.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            writes: CallBudget::new(CallRate::UNLIMITED),
            registrations: CallBudget::new(CallRate::UNLIMITED),
        }
    }

    /// The same, making calls that change things at most at `rate`: mutating calls and
    /// registrations each have a bucket of that rate (as ELBv2 has one of each per account).
    pub fn with_write_rate(mut self, rate: CallRate) -> Self {
        self.writes = CallBudget::new(rate);
        self.registrations = CallBudget::new(rate);
        self
    }
}
