//! Listeners and target groups on the pool's NLBs (ELBv2), behind a trait.
//!
//! Every resource made here is tagged (DESIGN.md section 6), and target group names are
//! derived from a hash, so a retry finds what an earlier attempt made and the sweep finds leaks.
//!
//! This module only names its parts: the [`LoadBalancing`] trait and what it reads and makes
//! (`load_balancing`), its errors (`error`), NLBs a managed pool makes (`fleet`), names and
//! tags (`naming`, [`crate::contract::tags`]).

mod error;
pub mod fleet;
mod load_balancing;
pub(crate) mod naming;

pub use crate::contract::tags::{
    TAG_CLUSTER, TAG_LISTENER, TAG_MANAGED, TAG_NAMESPACE, TAG_POD, TAG_POOL, TAG_POOL_ID,
    TAG_POOL_SEQ, TAG_SERVICE, TAG_SERVICE_UID,
};
pub use error::{ElbError, ElbErrorKind};
pub use fleet::{NlbFleet, NlbInfo, NlbSpec, NlbStatus};
pub use load_balancing::{
    EnsuredTargetGroup, ListenerInfo, ListenerTlsInfo, LoadBalancing, TargetGroupInfo,
    TargetGroupSpec, TargetHealth,
};
pub use naming::{
    ResourceTags, TARGET_GROUP_PREFIX, owned_by, owned_by_cluster, target_group_name,
    target_group_name_in,
};
