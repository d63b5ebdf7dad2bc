//! The events the functions send each other on the bus:
//! - `Pool Low`: ask the pool function to look at a managed pool now (a Service waits for
//!   ports, or an allocation left less free than the spare);
//! - `Targets Registered`: ask the reachability function to look at its work list now (new
//!   listeners or targets are waiting for their health checks).
//!
//! ```json
//! {"source": "nlb-port-pool.functions", "detail-type": "Pool Low",
//!  "detail": {"version": 1, "cluster": "prod", "pool": "default", "reason": "..."}}
//! {"source": "nlb-port-pool.functions", "detail-type": "Targets Registered",
//!  "detail": {"version": 1, "cluster": "prod"}}
//! ```

use serde::{Deserialize, Serialize};

/// The `source` of events the functions put on the bus.
pub const FUNCTIONS_SOURCE: &str = "nlb-port-pool.functions";
/// The `detail-type` of a growth request.
pub const POOL_LOW: &str = "Pool Low";
/// The version of the detail this code writes and reads.
pub const POOL_LOW_VERSION: u32 = 1;

/// The detail of a `Pool Low` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolLow {
    /// [`POOL_LOW_VERSION`].
    pub version: u32,
    /// The cluster whose pool it is.
    pub cluster: String,
    /// The pool.
    pub pool: String,
    /// Why, for the logs.
    pub reason: String,
}

impl PoolLow {
    /// A request about `pool` of `cluster`.
    pub fn new(cluster: &str, pool: &str, reason: &str) -> Self {
        Self {
            version: POOL_LOW_VERSION,
            cluster: cluster.to_owned(),
            pool: pool.to_owned(),
            reason: reason.chars().take(512).collect(),
        }
    }

    /// Validates an event's parts; the error says what is wrong.
    pub fn from_parts(
        source: &str,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<Self, String> {
        if source != FUNCTIONS_SOURCE || detail_type != POOL_LOW {
            return Err(format!(
                "not a {POOL_LOW:?} event from {FUNCTIONS_SOURCE:?}: {source:?} / {detail_type:?}"
            ));
        }
        let parsed: Self = serde_json::from_value(detail.clone())
            .map_err(|e| format!("invalid {POOL_LOW:?} detail: {e}"))?;
        if parsed.version != POOL_LOW_VERSION {
            return Err(format!(
                "{POOL_LOW:?} detail version {} is not {POOL_LOW_VERSION}",
                parsed.version
            ));
        }
        crate::contract::names::validate_label(&parsed.pool).map_err(|e| format!("pool: {e}"))?;
        Ok(parsed)
    }
}

/// The `detail-type` of a reachability signal.
pub const TARGETS_REGISTERED: &str = "Targets Registered";

/// The detail of a `Targets Registered` event: which cluster (what to check is in the claims
/// table's work list, not in the event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsRegistered {
    /// [`POOL_LOW_VERSION`] (one version for both events).
    pub version: u32,
    /// The cluster.
    pub cluster: String,
}

impl TargetsRegistered {
    /// A signal about `cluster`.
    pub fn new(cluster: &str) -> Self {
        Self {
            version: POOL_LOW_VERSION,
            cluster: cluster.to_owned(),
        }
    }

    /// Validates an event's parts; the error says what is wrong.
    pub fn from_parts(
        source: &str,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<Self, String> {
        if source != FUNCTIONS_SOURCE || detail_type != TARGETS_REGISTERED {
            return Err(format!(
                "not a {TARGETS_REGISTERED:?} event from {FUNCTIONS_SOURCE:?}: {source:?} / \
                 {detail_type:?}"
            ));
        }
        let parsed: Self = serde_json::from_value(detail.clone())
            .map_err(|e| format!("invalid {TARGETS_REGISTERED:?} detail: {e}"))?;
        if parsed.version != POOL_LOW_VERSION {
            return Err(format!(
                "{TARGETS_REGISTERED:?} detail version {} is not {POOL_LOW_VERSION}",
                parsed.version
            ));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_a_pool_low_event() {
        let detail = serde_json::to_value(PoolLow::new("prod", "default", "4 free")).expect("json");
        let parsed = PoolLow::from_parts(FUNCTIONS_SOURCE, POOL_LOW, &detail).expect("valid");
        assert_eq!(parsed.pool, "default");
        assert!(PoolLow::from_parts("nlb-port-pool.forwarder", POOL_LOW, &detail).is_err());
        let bad = serde_json::json!({"version": 2, "cluster": "c", "pool": "p", "reason": ""});
        assert!(PoolLow::from_parts(FUNCTIONS_SOURCE, POOL_LOW, &bad).is_err());
        let bad =
            serde_json::json!({"version": 1, "cluster": "c", "pool": "Bad Pool", "reason": ""});
        assert!(PoolLow::from_parts(FUNCTIONS_SOURCE, POOL_LOW, &bad).is_err());
    }

    #[test]
    fn targets_registered_round_trips() {
        let detail = serde_json::to_value(TargetsRegistered::new("prod")).expect("json");
        let parsed = TargetsRegistered::from_parts(FUNCTIONS_SOURCE, TARGETS_REGISTERED, &detail)
            .expect("valid");
        assert_eq!(parsed.cluster, "prod");
        assert!(TargetsRegistered::from_parts(FUNCTIONS_SOURCE, POOL_LOW, &detail).is_err());
        let extra = serde_json::json!({"version": 1, "cluster": "c", "x": 1});
        assert!(
            TargetsRegistered::from_parts(FUNCTIONS_SOURCE, TARGETS_REGISTERED, &extra).is_err()
        );
    }
}
