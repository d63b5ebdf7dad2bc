//! The event contract between the forwarder and the functions (DESIGN.md section 4).
//!
//! An event names a Service and carries nothing a function must trust beyond that key: every
//! handler re-reads the Service from the Kubernetes API. Parsing is strict about the fields it
//! uses and lenient about any it does not know, so newer forwarders do not break older functions.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::names;

/// The `source` of every event the forwarder puts on the bus.
pub const EVENT_SOURCE: &str = "nlb-port-pool.forwarder";

/// The `detail.version` this code reads and writes.
pub const DETAIL_VERSION: u32 = 1;

/// Larger events are refused before parsing; real ones are a few hundred bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// What happened to the Service, as the event's `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailType {
    /// An opted-in Service was created or changed (or lost the opt-in while holding our finalizer).
    ServiceChanged,
    /// A Service holding our finalizer is being deleted, or is gone.
    ServiceDeleted,
    /// The EndpointSlices of an opted-in Service changed.
    EndpointsChanged,
}

impl DetailType {
    /// Every detail-type, for rules and tests.
    pub const ALL: [DetailType; 3] = [
        DetailType::ServiceChanged,
        DetailType::ServiceDeleted,
        DetailType::EndpointsChanged,
    ];

    /// The `detail-type` string on the bus.
    pub const fn as_str(self) -> &'static str {
        match self {
            DetailType::ServiceChanged => "Service Changed",
            DetailType::ServiceDeleted => "Service Deleted",
            DetailType::EndpointsChanged => "Endpoints Changed",
        }
    }
}

impl fmt::Display for DetailType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DetailType {
    type Err = EventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| EventError(format!("unknown detail-type {s:?}")))
    }
}

/// The `detail` of a forwarder event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEventDetail {
    /// Schema version, [`DETAIL_VERSION`].
    pub version: u32,
    /// The cluster the forwarder runs in.
    pub cluster: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// The Service's uid at the time of the change.
    pub uid: String,
    /// The Service's resourceVersion at the time of the change (informational).
    pub resource_version: String,
    /// Whether the Service had a deletionTimestamp or was gone.
    pub deleting: bool,
    /// When the forwarder saw the change.
    pub observed_at: DateTime<Utc>,
}

/// The identity of a Service in one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.namespace, self.name)
    }
}

/// A forwarder event, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    /// What happened.
    pub detail_type: DetailType,
    /// Which Service, and the facts the forwarder saw.
    pub detail: ServiceEventDetail,
}

impl ServiceEvent {
    /// The Service this event is about.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            cluster: self.detail.cluster.clone(),
            namespace: self.detail.namespace.clone(),
            name: self.detail.name.clone(),
        }
    }

    /// Validates an EventBridge envelope's parts: the source, the detail-type and the detail.
    pub fn from_parts(
        source: Option<&str>,
        detail_type: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<Self, EventError> {
        match source {
            Some(EVENT_SOURCE) => {}
            Some(other) => {
                return Err(EventError(format!(
                    "source {other:?} is not {EVENT_SOURCE:?}"
                )));
            }
            None => return Err(EventError("the event has no source".to_owned())),
        }
        let detail_type: DetailType = detail_type
            .ok_or_else(|| EventError("the event has no detail-type".to_owned()))?
            .parse()?;
        let detail: ServiceEventDetail = serde_json::from_value(detail.clone())
            .map_err(|e| EventError(format!("{detail_type} detail: {e}")))?;
        detail.validate()?;
        Ok(Self {
            detail_type,
            detail,
        })
    }

    /// Parses a whole EventBridge event from JSON text, as a Lambda receives it.
    pub fn from_json(json: &str) -> Result<Self, EventError> {
        if json.len() > MAX_EVENT_BYTES {
            return Err(EventError(format!(
                "the event is {} bytes (at most {MAX_EVENT_BYTES})",
                json.len()
            )));
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| EventError(format!("not JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Parses a whole EventBridge event already decoded to JSON.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, EventError> {
        let text = |k: &str| value.get(k).and_then(serde_json::Value::as_str);
        let detail = value
            .get("detail")
            .ok_or_else(|| EventError("the event has no detail".to_owned()))?;
        Self::from_parts(text("source"), text("detail-type"), detail)
    }
}

impl ServiceEventDetail {
    /// Checks the version and that every name is one Kubernetes would accept.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.version != DETAIL_VERSION {
            return Err(EventError(format!(
                "detail version {} is not supported (this function reads {DETAIL_VERSION})",
                self.version
            )));
        }
        let field = |what: &str, r: Result<(), String>| {
            r.map_err(|e| EventError(format!("detail.{what}: {e}")))
        };
        field("cluster", names::validate_cluster_name(&self.cluster))?;
        field("namespace", names::validate_label(&self.namespace))?;
        field("name", names::validate_label(&self.name))?;
        field("uid", names::validate_uid(&self.uid))?;
        if self.resource_version.len() > 64 {
            return Err(EventError(
                "detail.resourceVersion is longer than 64 characters".to_owned(),
            ));
        }
        Ok(())
    }
}

/// An event that cannot be acted on; the message says which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: {0}")]
pub struct EventError(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(detail_type: &str, detail: serde_json::Value) -> serde_json::Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": EVENT_SOURCE,
            "account": "123456789012", "time": "2026-11-26T10:00:00Z", "region": "us-west-2",
            "resources": [], "detail": detail
        })
    }

    fn detail() -> serde_json::Value {
        json!({
            "version": 1, "cluster": "prod", "namespace": "games", "name": "room-1",
            "uid": "0b9c1f0e-2d3a-4c5b-8e7f-1a2b3c4d5e6f", "resourceVersion": "12345",
            "deleting": false, "observedAt": "2026-11-26T10:00:00Z"
        })
    }

    #[test]
    fn parses_each_detail_type() {
        for dt in DetailType::ALL {
            let event = ServiceEvent::from_value(&envelope(dt.as_str(), detail())).expect("valid");
            assert_eq!(event.detail_type, dt);
            assert_eq!(event.key().to_string(), "prod/games/room-1");
        }
    }

    #[test]
    fn ignores_unknown_fields() {
        let mut d = detail();
        d["future"] = json!({"x": 1});
        assert!(ServiceEvent::from_value(&envelope("Service Changed", d)).is_ok());
    }

    #[test]
    fn round_trips_the_detail() {
        let event =
            ServiceEvent::from_value(&envelope("Service Changed", detail())).expect("valid");
        let back = serde_json::to_value(&event.detail).expect("serialize");
        assert_eq!(back, detail());
    }

    #[test]
    fn rejects_with_a_reason() {
        let mut missing_uid = detail();
        missing_uid.as_object_mut().map(|o| o.remove("uid"));
        let mut bad_ns = detail();
        bad_ns["namespace"] = json!("../etc");
        let mut v2 = detail();
        v2["version"] = json!(2);
        let mut long_name = detail();
        long_name["name"] = json!("a".repeat(64));
        let cases = [
            (
                envelope("Service Changed", missing_uid),
                "missing field `uid`",
            ),
            (envelope("Service Changed", bad_ns), "detail.namespace"),
            (envelope("Service Changed", v2), "version 2"),
            (envelope("Service Changed", long_name), "detail.name"),
            (envelope("Service Moved", detail()), "unknown detail-type"),
            (
                json!({"source": EVENT_SOURCE, "detail-type": "Service Changed"}),
                "no detail",
            ),
        ];
        for (value, expected) in cases {
            let err = ServiceEvent::from_value(&value).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
        }
        let mut wrong_source = envelope("Service Changed", detail());
        wrong_source["source"] = json!("aws.ec2");
        assert!(ServiceEvent::from_value(&wrong_source).is_err());
    }

    #[test]
    fn refuses_garbage_and_huge_input() {
        assert!(ServiceEvent::from_json("{not json").is_err());
        assert!(ServiceEvent::from_json(&" ".repeat(MAX_EVENT_BYTES + 1)).is_err());
        assert!(ServiceEvent::from_json("null").is_err());
    }
}
