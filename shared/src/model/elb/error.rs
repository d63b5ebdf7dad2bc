//! What ELBv2 calls fail with: the kinds callers act on, and the error itself.

/// What kind of failure an ELBv2 call met, where callers act on the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElbErrorKind {
    /// The resource does not exist.
    NotFound,
    /// A listener already uses the port.
    DuplicateListener,
    /// The resource is in use (a target group a listener still forwards to).
    InUse,
    /// The NLB has as many listeners as its quota allows (AWS `TooManyListeners`), whoever
    /// made them.
    TooManyListeners,
    /// The NLB does not exist (deleted out of band: AWS `LoadBalancerNotFound`).
    NlbNotFound,
    /// The account has as many target groups in the region as its quota allows (AWS
    /// `TooManyTargetGroups` on CreateTargetGroup: "Target Groups per Region", 3,000 by
    /// default, shared by everything in the account). Clears when target groups are deleted or
    /// the quota is raised.
    TooManyTargetGroups,
    /// A target quota is reached (AWS `TooManyTargets` on RegisterTargets: targets per
    /// Availability Zone per NLB, per NLB, or per target group). Clears when targets are
    /// deregistered or the quota is raised.
    TooManyTargets,
    /// The account has as many Network Load Balancers in the region as its quota allows (AWS
    /// `TooManyLoadBalancers` on CreateLoadBalancer: "Network Load Balancers per Region",
    /// code L-69A177A2, 50 by default). Clears when NLBs are deleted or the quota is raised.
    TooManyLoadBalancers,
    /// Anything else.
    Other,
}

/// An ELBv2 call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ELBv2 {operation}: {message}")]
pub struct ElbError {
    /// The operation, e.g. `CreateListener`.
    pub operation: &'static str,
    /// What went wrong.
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// The kind, for callers that handle some.
    pub kind: ElbErrorKind,
}
