//! Listener and pool options on the bed (issue 15): TLS listeners with ACM certificates, the
//! client's IP and PROXY v2, deregistration, placement, blocked ports and a named NLB. Each
//! is made as asked, changed in place, and refused before anything is made when AWS would
//! refuse it. moto's ELBv2 answers as AWS does here through the launcher's shims
//! (testbed/python/elbv2_as_aws.py); every call the functions make is checked against the
//! template's IAM policies by the gate.

mod common;

use std::collections::BTreeSet;

use common::Stack;
use nlb_port_pool::contract::annotations::{ALLOCATED_PORT, NLB, STATUS};
use nlb_port_pool::contract::listener_options::{
    ALPN_POLICY, CONNECTION_TERMINATION, DEREGISTRATION_DELAY, PRESERVE_CLIENT_IP, PROXY_PROTOCOL,
    SSL_CERT, SSL_POLICY, SSL_PORTS,
};
use testbed::Bed;
use testbed::acm_fixtures::{imported_certificate, pending_certificate};
use testbed::kube_fixtures::PortSpec;

async fn status(stack: &Stack, name: &str) -> String {
    stack
        .annotations(name)
        .await
        .get(STATUS)
        .cloned()
        .unwrap_or_default()
}

/// The stack's one listener: (port, protocol, target group, listener ARN).
/// Which of the Service's listeners its `allocations` annotation marks as TLS, by port name.
async fn tls_records(stack: &Stack, name: &str) -> Vec<(String, bool)> {
    let svc = stack.service(name).await;
    let notes = svc.metadata.annotations.unwrap_or_default();
    let records: Vec<nlb_port_pool::contract::annotations::AllocationRecord> =
        serde_json::from_str(&notes[nlb_port_pool::contract::annotations::ALLOCATIONS])
            .expect("records");
    let mut out: Vec<(String, bool)> = records.into_iter().map(|r| (r.name, r.tls)).collect();
    out.sort();
    out
}

async fn only_listener(stack: &Stack) -> (u16, String, String, String) {
    let mut listeners = stack.listeners().await;
    assert_eq!(listeners.len(), 1, "one listener: {listeners:?}");
    listeners.pop().expect("one")
}

#[tokio::test]
async fn a_tls_room_terminates_tls_and_takes_a_new_certificate_in_place() {
    // GIVEN two issued certificates and a room with a TLS port and a plain one
    let stack = Stack::new("tls", 1, "30000-30099", 50).await;
    let sdk = Bed::get().sdk_config().await;
    let first = imported_certificate(&sdk, "rooms.example.com")
        .await
        .expect("a certificate");
    let second = imported_certificate(&sdk, "rooms2.example.com")
        .await
        .expect("a certificate");
    let ports = [
        PortSpec::tcp("wss", 443, 8443),
        PortSpec::tcp("raw", 7777, 8000),
    ];
    stack
        .create_room_with("room", &ports, &[(SSL_CERT, &first), (SSL_PORTS, "wss")])
        .await;

    // WHEN it is allocated
    stack.changed("room").await.expect("allocates");

    // THEN the wss listener is TLS with the certificate and the default policy, its target
    // group TCP; the raw port stays TCP
    assert_eq!(status(&stack, "room").await, "Allocated");
    let listeners = stack.listeners().await;
    let protocols: BTreeSet<String> = listeners.iter().map(|l| l.1.clone()).collect();
    assert_eq!(protocols, BTreeSet::from(["TCP".into(), "TLS".into()]));
    let (_, _, tg, arn) = listeners
        .iter()
        .find(|l| l.1 == "TLS")
        .cloned()
        .expect("a TLS listener");
    let tls = stack.tls_view(&arn).await;
    assert_eq!(tls.certificate.as_deref(), Some(first.as_str()));
    assert_eq!(
        tls.policy.as_deref(),
        Some(nlb_port_pool::contract::listener_options::DEFAULT_SSL_POLICY)
    );
    let group = stack
        .elb
        .describe_target_groups()
        .target_group_arns(&tg)
        .send()
        .await
        .expect("describes");
    assert_eq!(
        group.target_groups()[0].protocol().map(|p| p.as_str()),
        Some("TCP")
    );
    assert_eq!(
        tls_records(&stack, "room").await,
        [("raw".into(), false), ("wss".into(), true)]
    );

    // WHEN the certificate changes (the first one kept as an additional one), with a policy
    // and ALPN
    stack
        .annotate(
            "room",
            &[
                (SSL_CERT, Some(&format!("{second},{first}"))),
                (SSL_POLICY, Some("ELBSecurityPolicy-TLS13-1-3-2021-06")),
                (ALPN_POLICY, Some("HTTP2Preferred")),
            ],
        )
        .await;
    stack.changed("room").await.expect("changes");

    // THEN the same listener, on the same port, serves the new one
    let after = stack.tls_view(&arn).await;
    assert_eq!((after.port, after.protocol.as_str()), (tls.port, "TLS"));
    assert_eq!(after.certificate.as_deref(), Some(second.as_str()));
    assert_eq!(
        after.policy.as_deref(),
        Some("ELBSecurityPolicy-TLS13-1-3-2021-06")
    );
    assert_eq!(after.alpn, ["HTTP2Preferred"]);
    assert_eq!(after.additional, std::slice::from_ref(&first));

    // WHEN the additional certificate is dropped, then TLS is turned off
    stack
        .annotate("room", &[(SSL_CERT, Some(second.as_str()))])
        .await;
    stack.changed("room").await.expect("changes");
    assert!(stack.tls_view(&arn).await.additional.is_empty());
    stack
        .annotate(
            "room",
            &[
                (SSL_CERT, None),
                (SSL_PORTS, None),
                (SSL_POLICY, None),
                (ALPN_POLICY, None),
            ],
        )
        .await;
    stack.changed("room").await.expect("changes");

    // THEN the listener is plain TCP again, still the same one
    let plain = stack.tls_view(&arn).await;
    assert_eq!((plain.port, plain.protocol.as_str()), (tls.port, "TCP"));
    assert_eq!(stack.listeners().await.len(), 2);
    assert_eq!(
        tls_records(&stack, "room").await,
        [("raw".into(), false), ("wss".into(), false)]
    );
}

#[tokio::test]
async fn a_certificate_not_issued_or_a_policy_aws_lacks_makes_nothing() {
    let stack = Stack::new("tlsbad", 1, "30000-30099", 50).await;
    let sdk = Bed::get().sdk_config().await;
    let pending = pending_certificate(&sdk, "pending.example.com")
        .await
        .expect("a certificate");
    let issued = imported_certificate(&sdk, "ok.example.com")
        .await
        .expect("a certificate");
    let (region, account) = (Bed::get().region(), "123456789012");
    let missing = format!("arn:aws:acm:{region}:{account}:certificate/0000-none");
    let elsewhere = format!("arn:aws:acm:ap-south-1:{account}:certificate/0000-far");
    let cases = [
        (
            "pending",
            vec![(SSL_CERT, pending.as_str())],
            SSL_CERT,
            "PENDING_VALIDATION",
        ),
        (
            "missing",
            vec![(SSL_CERT, missing.as_str())],
            SSL_CERT,
            "does not exist",
        ),
        (
            "elsewhere",
            vec![(SSL_CERT, elsewhere.as_str())],
            SSL_CERT,
            "of region ap-south-1",
        ),
        (
            "policy",
            vec![
                (SSL_CERT, issued.as_str()),
                (SSL_POLICY, "ELBSecurityPolicy-TLS13-9-9-2099-01"),
            ],
            SSL_POLICY,
            "not an ELBv2 security policy",
        ),
    ];
    for (name, options, key, why) in cases {
        // GIVEN a room whose TLS options AWS would refuse
        stack
            .create_room_with(name, &[PortSpec::tcp("wss", 443, 8443)], &options)
            .await;

        // WHEN it is handled
        stack.changed(name).await.expect("a user error is handled");

        // THEN it says which annotation and why, and nothing was made or claimed
        let status = status(&stack, name).await;
        assert!(
            status.starts_with(&format!("Error: annotation {key}")) && status.contains(why),
            "{name}: {status}"
        );
        assert!(
            stack
                .event_reasons(name)
                .await
                .contains(&"InvalidAnnotation".to_owned())
        );
    }
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

#[tokio::test]
async fn client_ip_proxy_v2_and_deregistration_are_set_and_changed_in_place() {
    // GIVEN a room asking for PROXY v2, the client's IP, a short deregistration delay and its
    // connections closed at the end of it
    let stack = Stack::new("proxy", 1, "30000-30099", 50).await;
    stack
        .create_room_with(
            "room",
            &[PortSpec::tcp("game", 7777, 8000)],
            &[
                (PROXY_PROTOCOL, "v2"),
                (PRESERVE_CLIENT_IP, "true"),
                (DEREGISTRATION_DELAY, "30"),
                (CONNECTION_TERMINATION, "true"),
            ],
        )
        .await;

    // WHEN it is allocated
    stack.changed("room").await.expect("allocates");

    // THEN its target group has those attributes
    let (port, _, tg, _) = only_listener(&stack).await;
    let attributes = stack.target_group_attributes(&tg).await;
    for (key, value) in [
        ("proxy_protocol_v2.enabled", "true"),
        ("preserve_client_ip.enabled", "true"),
        ("deregistration_delay.timeout_seconds", "30"),
        (
            "deregistration_delay.connection_termination.enabled",
            "true",
        ),
    ] {
        assert_eq!(
            attributes.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }

    // WHEN PROXY v2 is dropped and the delay raised to AWS's longest
    stack
        .annotate(
            "room",
            &[(PROXY_PROTOCOL, None), (DEREGISTRATION_DELAY, Some("3600"))],
        )
        .await;
    stack.changed("room").await.expect("changes");

    // THEN the same target group and port carry the change, the rest as it was
    let (port_after, _, tg_after, _) = only_listener(&stack).await;
    assert_eq!((port_after, &tg_after), (port, &tg));
    let attributes = stack.target_group_attributes(&tg).await;
    assert_eq!(attributes["proxy_protocol_v2.enabled"], "false");
    assert_eq!(attributes["deregistration_delay.timeout_seconds"], "3600");
    assert_eq!(attributes["preserve_client_ip.enabled"], "true");
}

#[tokio::test]
async fn a_udp_room_asking_for_what_udp_lacks_is_refused_before_anything_is_made() {
    let stack = Stack::new("udpopt", 1, "30000-30099", 50).await;
    for (name, key, value) in [
        ("proxy", PROXY_PROTOCOL, "v2"),
        ("noip", PRESERVE_CLIENT_IP, "false"),
    ] {
        stack
            .create_room_with(name, &[PortSpec::udp("game", 7777, 7777)], &[(key, value)])
            .await;
        stack.changed(name).await.expect("a user error is handled");
        let status = status(&stack, name).await;
        assert!(
            status.starts_with(&format!("Error: annotation {key}")),
            "{status}"
        );
    }
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
}

/// The NLB (index into `stack.nlbs`) each listener is on.
async fn nlb_indexes(stack: &Stack) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, nlb) in stack.nlbs.iter().enumerate() {
        let listed = stack
            .elb
            .describe_listeners()
            .load_balancer_arn(&nlb.arn)
            .send()
            .await
            .expect("describes");
        out.extend(std::iter::repeat_n(i, listed.listeners().len()));
    }
    out
}

#[tokio::test]
async fn pack_fills_one_nlb_and_spread_uses_each() {
    // GIVEN a pool of two NLBs packing rooms
    let stack = Stack::new("pack", 2, "30000-30099", 50)
        .await
        .with_pool_options("30000-30099", r#""placement":"pack""#)
        .await;
    // WHEN three rooms are allocated one after another
    for name in ["a", "b", "c"] {
        stack.create_room(name).await;
        stack.room_pod(name, "10.3.0.1", true).await;
        stack.changed(name).await.expect("allocates");
    }
    // THEN all share one NLB
    let used: BTreeSet<usize> = nlb_indexes(&stack).await.into_iter().collect();
    assert_eq!(used.len(), 1, "packed: {used:?}");

    // GIVEN the same pool spreading: the next two rooms go to the emptier NLB first
    let stack = stack
        .with_pool_options("30000-30099", r#""placement":"spread""#)
        .await;
    for name in ["d", "e"] {
        stack.create_room(name).await;
        stack.room_pod(name, "10.3.0.1", true).await;
        stack.changed(name).await.expect("allocates");
    }
    let per_nlb = nlb_indexes(&stack).await;
    let counts: Vec<usize> = (0..2)
        .map(|i| per_nlb.iter().filter(|n| **n == i).count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 5);
    assert!(counts.contains(&2) && counts.contains(&3), "{counts:?}");
}

#[tokio::test]
async fn blocked_ports_stay_free_and_a_named_nlb_is_used() {
    // GIVEN a pool of two NLBs whose ports 30000-30001 are blocked
    let stack = Stack::new("block", 2, "30000-30099", 50)
        .await
        .with_pool_options("30000-30003", r#""blockedPorts":["30000-30001"]"#)
        .await;
    // WHEN rooms are allocated, one of them naming the second NLB
    let second = nlb_port_pool::model::pool::nlb_name_of(&stack.nlbs[1].arn)
        .expect("a name")
        .to_owned();
    stack
        .create_room_with(
            "named",
            &[PortSpec::tcp("game", 7777, 8000)],
            &[(NLB, second.as_str())],
        )
        .await;
    stack.changed("named").await.expect("allocates");
    for name in ["a", "b"] {
        stack.create_room(name).await;
        stack.room_pod(name, "10.3.0.1", true).await;
        stack.changed(name).await.expect("allocates");
    }

    // THEN no listener uses a blocked port, and the named room is on the second NLB
    for (port, ..) in stack.listeners().await {
        assert!(port >= 30002, "blocked port {port} used");
    }
    let named = stack.annotations("named").await;
    let records: Vec<nlb_port_pool::contract::annotations::AllocationRecord> =
        serde_json::from_str(&named[nlb_port_pool::contract::annotations::ALLOCATIONS])
            .expect("records");
    assert_eq!(records[0].nlb_arn, stack.nlbs[1].arn);
    assert!(named.contains_key(ALLOCATED_PORT));

    // WHEN a room names an NLB the pool does not have
    stack
        .create_room_with(
            "nowhere",
            &[PortSpec::tcp("game", 7777, 8000)],
            &[(NLB, "not-in-the-pool")],
        )
        .await;
    stack
        .changed("nowhere")
        .await
        .expect("a user error is handled");
    // THEN it is told so, and holds nothing
    let status = status(&stack, "nowhere").await;
    assert!(
        status.starts_with(&format!("Error: annotation {NLB}")),
        "{status}"
    );
    assert!(
        !stack
            .annotations("nowhere")
            .await
            .contains_key(ALLOCATED_PORT)
    );
}
