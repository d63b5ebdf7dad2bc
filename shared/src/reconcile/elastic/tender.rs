//! The pool function's part of an elastic pool: it alone makes, promotes and retires NLBs, so it
//! alone is built with an [`NlbFleet`].

use super::super::Reconciler;
use crate::model::elb::NlbFleet;

/// Tends managed pools: the pool function's reconciler and the NLB fleet it acts on. Allocation
/// never makes an NLB, so no other function builds one (or holds the permission to).
pub struct PoolTender<'a> {
    pub(super) reconciler: &'a Reconciler,
    pub(super) fleet: &'a dyn NlbFleet,
}

impl<'a> PoolTender<'a> {
    /// Tends `reconciler`'s managed pools (it keeps their records) with `fleet`.
    pub fn new(reconciler: &'a Reconciler, fleet: &'a dyn NlbFleet) -> Self {
        Self { reconciler, fleet }
    }
}
