//! Property tests: the event and annotation parsers never panic, whatever they are fed, and
//! every rejection says what was wrong.

use std::collections::BTreeMap;

use nlb_port_pool::contract::annotations::{self, Annotations};
use nlb_port_pool::contract::event::{EVENT_SOURCE, ServiceEvent};
use nlb_port_pool::contract::service_model::{
    ListenerSpec, ServicePortSpec, ServiceState, TargetPort, listener_specs,
};
use nlb_port_pool::model::pool::PoolSet;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, nested a few levels, with strings that include unicode and controls.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A detail that is sometimes valid and often subtly not.
fn detail() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        "[a-z][a-z0-9-]{0,61}[a-z0-9]",
        ".{0,70}",
        Just("a".repeat(63)),
        Just("a".repeat(64)),
        Just("ünïcödé".to_owned()),
    ];
    (
        prop_oneof![Just(json!(1)), any::<i64>().prop_map(Value::from), Just(json!("1"))],
        name.clone(),
        name.clone(),
        name,
        prop_oneof!["[0-9a-f-]{1,64}", ".{0,70}"],
        any::<bool>(),
        prop_oneof![Just(json!("2026-11-26T10:00:00Z")), any_json()],
    )
        .prop_map(|(version, cluster, namespace, name, uid, deleting, observed)| {
            json!({"version": version, "cluster": cluster, "namespace": namespace, "name": name,
                   "uid": uid, "resourceVersion": "1", "deleting": deleting, "observedAt": observed})
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_json_text_is_parsed_or_refused_with_a_reason(text in ".{0,400}") {
        if let Err(e) = ServiceEvent::from_json(&text) {
            prop_assert!(e.to_string().starts_with("invalid event: "));
        }
    }

    #[test]
    fn any_json_value_is_parsed_or_refused_with_a_reason(value in any_json()) {
        if let Err(e) = ServiceEvent::from_value(&value) {
            prop_assert!(e.to_string().len() > "invalid event: ".len());
        }
    }

    #[test]
    fn accepted_events_carry_only_kubernetes_names(detail in detail(), dt in prop_oneof![
        Just("Service Changed".to_owned()), Just("Service Deleted".to_owned()),
        Just("Endpoints Changed".to_owned()), ".{0,20}"
    ]) {
        let event = json!({"source": EVENT_SOURCE, "detail-type": dt, "detail": detail});
        match ServiceEvent::from_value(&event) {
            Ok(e) => {
                let d = &e.detail;
                for label in [&d.namespace, &d.name] {
                    prop_assert!(label.len() <= 63);
                    prop_assert!(label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                }
                prop_assert!(d.uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
            }
            Err(e) => prop_assert!(e.to_string().starts_with("invalid event: ")),
        }
    }

    #[test]
    fn any_annotations_are_parsed_or_refused_naming_the_key(
        values in prop::collection::vec(prop_oneof![".{0,40}", "[0-9]{1,6}", Just("x".repeat(5000))], 10),
        extra in prop::collection::btree_map(".{0,30}", ".{0,30}", 0..5),
    ) {
        let keys = [
            annotations::AUTO_ASSIGN, annotations::POOL, annotations::HC_PROTOCOL, annotations::HC_PORT,
            annotations::HC_INTERVAL, annotations::HC_TIMEOUT, annotations::HC_HEALTHY_THRESHOLD,
            annotations::HC_UNHEALTHY_THRESHOLD, annotations::HC_PATH, annotations::STATUS,
        ];
        let mut ann: Annotations = extra;
        for (k, v) in keys.iter().zip(values) {
            ann.insert((*k).to_owned(), v);
        }
        if let Err(e) = annotations::opt_in(&ann) {
            prop_assert_eq!(e.key, annotations::AUTO_ASSIGN);
        }
        match annotations::parse_request(&ann) {
            Ok(r) => prop_assert!(r.pool.len() <= 63),
            Err(e) => {
                prop_assert!(keys.contains(&e.key));
                prop_assert!(e.to_string().len() < 400, "messages stay short: {}", e);
            }
        }
    }

    #[test]
    fn any_pool_json_is_parsed_or_refused(value in any_json()) {
        let _ = PoolSet::from_json(&value.to_string());
    }

    #[test]
    fn any_service_ports_give_valid_listeners_or_a_reason(
        ports in prop::collection::vec((
            prop::option::of("[a-z]{1,10}"), any::<u16>(), prop_oneof![Just("TCP".to_owned()), Just("UDP".to_owned()), Just("SCTP".to_owned()), ".{0,5}"],
            prop_oneof![any::<u16>().prop_map(TargetPort::Number), "[a-z]{1,15}".prop_map(TargetPort::Name)],
        ), 0..60)
    ) {
        let state = ServiceState {
            created: None,
            key: nlb_port_pool::contract::event::ServiceKey { cluster: "c".into(), namespace: "n".into(), name: "s".into() },
            uid: "u".into(),
            resource_version: String::new(),
            deleting: false,
            finalizers: vec![],
            annotations: BTreeMap::new(),
            ports: ports.into_iter().map(|(name, port, protocol, target_port)| ServicePortSpec {
                name, port, protocol, target_port,
            }).collect(),
            external_name: false,
            selector: Default::default(),
            pod: None,
        };
        match listener_specs(&state) {
            Ok(specs) => {
                prop_assert!(!specs.is_empty() && specs.len() <= 49);
                let keys: std::collections::BTreeSet<_> = specs.iter().map(|s: &ListenerSpec| s.key.clone()).collect();
                prop_assert_eq!(keys.len(), specs.len(), "listener keys are unique");
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }
}
