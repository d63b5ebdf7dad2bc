//! Listener options against the in-memory doubles: TLS listeners and their certificates,
//! target group attributes, checked before anything is made and changed in place.

use std::sync::Arc;

use super::Outcome;
use super::tests::{NLB_A, NLB_B, World, opted_in, slice, world};
use crate::adapters::memory::MemoryCertificates;
use crate::contract::annotations::{self, STATUS};
use crate::contract::listener_options::{
    ALPN_POLICY, ATTR_PROXY_PROTOCOL_V2, CONNECTION_TERMINATION, DEFAULT_SSL_POLICY,
    DEREGISTRATION_DELAY, PROXY_PROTOCOL, SSL_CERT, SSL_POLICY,
};

const CERT: &str = "arn:aws:acm:us-west-2:123456789012:certificate/aaaa";
const CERT2: &str = "arn:aws:acm:us-west-2:123456789012:certificate/bbbb";
const PENDING: &str = "arn:aws:acm:us-west-2:123456789012:certificate/cccc";
/// An NLB of the certificates' account and region.
const NLB_T: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/t/1";

fn tls_world() -> World {
    let mut w = world(&[NLB_T], "30000-30099", 50);
    let certificates = Arc::new(MemoryCertificates::default());
    certificates.put(CERT, "ISSUED");
    certificates.put(CERT2, "ISSUED");
    certificates.put(PENDING, "PENDING_VALIDATION");
    w.reconciler = w.reconciler.with_certificates(certificates);
    w
}

impl World {
    fn put_room(&self, pairs: &[(&str, &str)]) {
        let mut service = opted_in("room", "uid-1");
        if let Some(existing) = self.cluster.get("games", "room") {
            service = existing;
        }
        for (k, v) in pairs {
            service.annotations.insert((*k).to_owned(), (*v).to_owned());
        }
        self.cluster.put_service(service);
        self.cluster
            .set_slices("games", "room", vec![slice("game", 8000, &["10.0.0.1"])]);
    }

    fn remove_annotation(&self, key: &str) {
        let mut service = self.cluster.get("games", "room").expect("room");
        service.annotations.remove(key);
        self.cluster.put_service(service);
    }
}

#[tokio::test]
async fn a_tls_listener_is_made_with_its_certificates_and_changed_in_place() {
    let w = tls_world();
    w.put_room(&[(SSL_CERT, &format!("{CERT},{CERT2}"))]);
    let outcome = w.reconcile("room").await.expect("allocates");
    assert!(matches!(outcome, Outcome::Allocated { .. }), "{outcome:?}");
    let listeners = w.elb.listeners();
    assert_eq!(listeners.len(), 1);
    let tls = listeners[0].info.tls.clone().expect("a TLS listener");
    assert_eq!(tls.certificate.as_deref(), Some(CERT));
    assert_eq!(tls.policy.as_deref(), Some(DEFAULT_SSL_POLICY));
    assert_eq!(listeners[0].certificates, vec![CERT2.to_owned()]);
    assert_eq!(
        w.elb.target_groups()[0].protocol,
        crate::contract::protocol::ListenerProtocol::Tcp,
        "the target group stays TCP"
    );
    let port = w.annotation("room", annotations::ALLOCATED_PORT);

    // A new default certificate and ALPN policy, one additional certificate fewer.
    w.put_room(&[(SSL_CERT, CERT2), (ALPN_POLICY, "HTTP2Preferred")]);
    w.reconcile("room").await.expect("changes");
    let listeners = w.elb.listeners();
    assert_eq!(listeners.len(), 1, "the same listener");
    let tls = listeners[0].info.tls.clone().expect("still TLS");
    assert_eq!(tls.certificate.as_deref(), Some(CERT2));
    assert_eq!(tls.alpn.as_deref(), Some("HTTP2Preferred"));
    assert!(listeners[0].certificates.is_empty(), "CERT removed");
    assert_eq!(w.annotation("room", annotations::ALLOCATED_PORT), port);

    // TLS off: the same listener becomes plain TCP.
    w.remove_annotation(SSL_CERT);
    w.remove_annotation(ALPN_POLICY);
    w.reconcile("room").await.expect("changes");
    let listeners = w.elb.listeners();
    assert!(listeners[0].info.tls.is_none());
    assert_eq!(w.annotation("room", annotations::ALLOCATED_PORT), port);
}

#[tokio::test]
async fn a_certificate_or_policy_aws_would_refuse_makes_nothing() {
    for (pairs, key) in [
        (vec![(SSL_CERT, PENDING)], SSL_CERT),
        (
            vec![(
                SSL_CERT,
                "arn:aws:acm:us-west-2:123456789012:certificate/none",
            )],
            SSL_CERT,
        ),
        (
            vec![(SSL_CERT, CERT), (SSL_POLICY, "ELBSecurityPolicy-Nope")],
            SSL_POLICY,
        ),
    ] {
        let w = tls_world();
        w.put_room(&pairs);
        let outcome = w.reconcile("room").await.expect("rejects");
        assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
        let status = w.annotation("room", STATUS).unwrap_or_default();
        assert!(
            status.starts_with("Error: annotation ") && status.contains(key),
            "{status}"
        );
        assert!(w.elb.listeners().is_empty() && w.elb.target_groups().is_empty());
        assert!(w.store.all_claims().is_empty(), "no port claimed");
    }
}

#[tokio::test]
async fn target_group_attributes_are_set_at_creation_and_changed_in_place() {
    let w = tls_world();
    w.put_room(&[(PROXY_PROTOCOL, "v2"), (DEREGISTRATION_DELAY, "30")]);
    w.reconcile("room").await.expect("allocates");
    let tg = &w.elb.target_groups()[0];
    assert_eq!(tg.attributes[ATTR_PROXY_PROTOCOL_V2], "true");
    assert_eq!(tg.attributes["deregistration_delay.timeout_seconds"], "30");
    let arn = tg.info.arn.clone();

    w.put_room(&[(CONNECTION_TERMINATION, "true")]);
    w.remove_annotation(PROXY_PROTOCOL);
    w.reconcile("room").await.expect("changes");
    let tg = &w.elb.target_groups()[0];
    assert_eq!(tg.info.arn, arn, "the same target group");
    assert_eq!(
        tg.attributes[ATTR_PROXY_PROTOCOL_V2], "false",
        "back to AWS's default"
    );
    assert_eq!(
        tg.attributes["deregistration_delay.connection_termination.enabled"],
        "true"
    );

    // Nothing asked for changed: the event path reads no attribute.
    let before = w.elb.calls("DescribeTargetGroupAttributes");
    w.reconciler
        .reconcile_service_as(
            &crate::model::claims::RunToken::random(),
            &w.cluster,
            "games",
            "room",
            None,
        )
        .await
        .expect("no-op");
    assert_eq!(w.elb.calls("DescribeTargetGroupAttributes"), before);
}

#[tokio::test]
async fn a_plain_listener_reads_no_attributes_or_certificates() {
    let w = tls_world();
    w.put_room(&[]);
    w.reconcile("room").await.expect("allocates");
    w.reconcile("room").await.expect("checks");
    for op in [
        "DescribeTargetGroupAttributes",
        "ModifyTargetGroupAttributes",
        "DescribeListenerCertificates",
        "DescribeSSLPolicies",
    ] {
        assert_eq!(w.elb.calls(op), 0, "{op}");
    }
}

/// The world's reconciler over the pool `json` (its NLBs must be the world's).
fn with_pools(w: &mut World, json: &str) {
    let pools = crate::model::pool::PoolSet::from_json(json).expect("pools");
    w.reconciler = super::Reconciler::new("prod", "vpc-1", pools, w.store.clone(), w.elb.clone())
        .with_claim_grace(std::time::Duration::ZERO);
}

fn claimed(w: &World) -> Vec<(String, u16)> {
    w.store
        .all_claims()
        .into_iter()
        .map(|c| (c.nlb_arn, c.port))
        .collect()
}

#[tokio::test]
async fn a_service_naming_an_nlb_is_placed_on_it_and_moved_when_it_names_another() {
    let w = world(&[NLB_A, NLB_B], "30000-30099", 50);
    w.put_room(&[(annotations::NLB, "b")]);
    w.reconcile("room").await.expect("allocates");
    assert_eq!(claimed(&w)[0].0, NLB_B);
    w.put_room(&[(annotations::NLB, "a")]);
    w.reconcile("room").await.expect("moves");
    let now = claimed(&w);
    assert_eq!((now.len(), now[0].0.as_str()), (1, NLB_A));
    assert_eq!(w.elb.listeners().len(), 1, "the listener on b went");

    // An NLB the pool does not have: an error naming the annotation; the port is kept.
    w.put_room(&[(annotations::NLB, "c")]);
    let outcome = w.reconcile("room").await.expect("rejects");
    assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    let status = w.annotation("room", STATUS).unwrap_or_default();
    assert!(status.contains(annotations::NLB), "{status}");
    assert_eq!(claimed(&w), now);
}

#[tokio::test]
async fn a_port_the_pool_blocks_later_is_moved_off() {
    let mut w = world(&[NLB_A], "30000-30000", 50);
    w.put_room(&[]);
    w.reconcile("room").await.expect("allocates");
    assert_eq!(claimed(&w), vec![(NLB_A.to_owned(), 30000)]);
    with_pools(
        &mut w,
        &format!(
            r#"{{"default":{{"nlbArns":["{NLB_A}"],"ports":"30000-30001","blockedPorts":["30000"]}}}}"#
        ),
    );
    w.reconcile("room").await.expect("moves");
    assert_eq!(claimed(&w), vec![(NLB_A.to_owned(), 30001)]);
    let ports: Vec<u16> = w.elb.listeners().iter().map(|l| l.info.port).collect();
    assert_eq!(ports, vec![30001]);
    assert_eq!(
        w.annotation("room", annotations::ALLOCATED_PORT).as_deref(),
        Some("30001")
    );
}

#[tokio::test]
async fn a_warm_instance_checks_a_certificate_and_policy_once_a_while() {
    let w = tls_world();
    w.put_room(&[(SSL_CERT, CERT)]);
    for _ in 0..3 {
        w.reconcile("room").await.expect("reconciles");
    }
    assert_eq!(w.elb.calls("DescribeSSLPolicies"), 1);
}
