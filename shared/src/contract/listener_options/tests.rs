use std::collections::BTreeMap;

use super::*;
use crate::contract::annotations::Annotations;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::{ListenerKey, ListenerSpec, ServicePortSpec, TargetPort};

const CERT: &str = "arn:aws:acm:us-west-2:123456789012:certificate/1111-aaaa";
const CERT2: &str = "arn:aws:acm:us-west-2:123456789012:certificate/2222-bbbb";

fn ann(pairs: &[(&str, &str)]) -> Annotations {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn spec(name: &str, port: u16, protocol: ListenerProtocol) -> ListenerSpec {
    ListenerSpec {
        key: ListenerKey::new(port, protocol),
        name: name.to_owned(),
        service_port: port,
        protocol,
        ports: vec![ServicePortSpec {
            name: Some(name.to_owned()),
            port,
            protocol: "TCP".into(),
            target_port: TargetPort::Number(port),
        }],
    }
}

#[test]
fn nothing_set_is_a_plain_listener_with_aws_defaults() {
    let options = ListenerOptions::parse(&ann(&[])).expect("valid");
    assert_eq!(options, ListenerOptions::default());
    for protocol in [
        ListenerProtocol::Tcp,
        ListenerProtocol::Udp,
        ListenerProtocol::TcpUdp,
    ] {
        let setup = options.setup_for(&spec("game", 7777, protocol));
        assert!(setup.is_plain(), "{protocol}");
        assert_eq!(setup.listener_protocol(), protocol.as_str());
    }
}

#[test]
fn tls_applies_to_every_tcp_port_unless_ports_are_named() {
    let specs = [
        spec("wss", 443, ListenerProtocol::Tcp),
        spec("raw", 7000, ListenerProtocol::Tcp),
        spec("voice", 7001, ListenerProtocol::Udp),
    ];
    let all =
        ListenerOptions::parse(&ann(&[(SSL_CERT, &format!("{CERT}, {CERT2}"))])).expect("valid");
    all.check(&specs).expect("fits");
    let tls = all.setup_for(&specs[0]).tls.expect("tls on wss");
    assert_eq!(tls.certificate, CERT);
    assert_eq!(tls.additional, vec![CERT2.to_owned()]);
    assert_eq!(tls.policy, DEFAULT_SSL_POLICY);
    assert_eq!(tls.alpn, AlpnPolicy::None);
    assert!(all.setup_for(&specs[1]).tls.is_some());
    assert!(all.setup_for(&specs[2]).tls.is_none(), "never on UDP");

    let named = ListenerOptions::parse(&ann(&[
        (SSL_CERT, CERT),
        (SSL_PORTS, "wss"),
        (SSL_POLICY, "ELBSecurityPolicy-TLS13-1-3-2021-06"),
        (ALPN_POLICY, "http2preferred"),
    ]))
    .expect("valid");
    named.check(&specs).expect("fits");
    let tls = named.setup_for(&specs[0]).tls.expect("tls on wss");
    assert_eq!(
        (tls.policy.as_str(), tls.alpn),
        (
            "ELBSecurityPolicy-TLS13-1-3-2021-06",
            AlpnPolicy::Http2Preferred
        )
    );
    assert_eq!(named.setup_for(&specs[0]).listener_protocol(), "TLS");
    assert!(named.setup_for(&specs[1]).tls.is_none(), "not named");
    let by_number =
        ListenerOptions::parse(&ann(&[(SSL_CERT, CERT), (SSL_PORTS, "7000")])).expect("valid");
    assert!(by_number.setup_for(&specs[1]).tls.is_some());
    assert!(by_number.setup_for(&specs[0]).tls.is_none());
}

#[test]
fn bad_values_name_their_annotation() {
    let too_many: Vec<String> = (0..26)
        .map(|i| format!("arn:aws:acm:us-west-2:123456789012:certificate/{i}"))
        .collect();
    let too_many = too_many.join(",");
    let twice = format!("{CERT},{CERT}");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![(SSL_CERT, "my-cert")], SSL_CERT),
        (
            vec![(SSL_CERT, "arn:aws:iam::123456789012:server-certificate/x")],
            SSL_CERT,
        ),
        (vec![(SSL_CERT, &twice)], SSL_CERT),
        (vec![(SSL_CERT, &too_many)], SSL_CERT),
        (vec![(SSL_PORTS, "wss")], SSL_PORTS),
        (vec![(ALPN_POLICY, "HTTP2Only")], ALPN_POLICY),
        (vec![(SSL_CERT, CERT), (SSL_POLICY, "modern")], SSL_POLICY),
        (vec![(SSL_CERT, CERT), (ALPN_POLICY, "h2")], ALPN_POLICY),
        (vec![(PRESERVE_CLIENT_IP, "yes")], PRESERVE_CLIENT_IP),
        (vec![(PROXY_PROTOCOL, "v1")], PROXY_PROTOCOL),
        (vec![(DEREGISTRATION_DELAY, "3601")], DEREGISTRATION_DELAY),
        (vec![(DEREGISTRATION_DELAY, "-1")], DEREGISTRATION_DELAY),
        (vec![(CONNECTION_TERMINATION, "on")], CONNECTION_TERMINATION),
    ];
    for (pairs, key) in cases {
        let err = ListenerOptions::parse(&ann(&pairs)).expect_err(key);
        assert_eq!(err.key, key, "{err}");
        assert!(err.to_string().len() < 300, "short: {err}");
    }
}

#[test]
fn options_are_held_against_the_services_ports() {
    let tcp = spec("wss", 443, ListenerProtocol::Tcp);
    let udp = spec("game", 7777, ListenerProtocol::Udp);
    let both = spec("mixed", 7000, ListenerProtocol::TcpUdp);
    let check = |pairs: &[(&str, &str)], specs: &[ListenerSpec]| {
        ListenerOptions::parse(&ann(pairs))
            .expect("parses")
            .check(specs)
            .map_err(|e| e.key)
    };
    assert_eq!(
        check(
            &[(SSL_CERT, CERT), (SSL_PORTS, "nope")],
            std::slice::from_ref(&tcp)
        ),
        Err(SSL_PORTS)
    );
    assert_eq!(
        check(
            &[(SSL_CERT, CERT), (SSL_PORTS, "game")],
            std::slice::from_ref(&udp)
        ),
        Err(SSL_PORTS)
    );
    assert_eq!(
        check(
            &[(SSL_CERT, CERT), (SSL_PORTS, "mixed")],
            std::slice::from_ref(&both)
        ),
        Err(SSL_PORTS),
        "a TCP_UDP listener cannot terminate TLS"
    );
    assert_eq!(
        check(&[(SSL_CERT, CERT)], std::slice::from_ref(&udp)),
        Err(SSL_CERT)
    );
    assert_eq!(
        check(&[(PROXY_PROTOCOL, "v2")], &[tcp.clone(), udp.clone()]),
        Err(PROXY_PROTOCOL)
    );
    assert_eq!(
        check(
            &[(PRESERVE_CLIENT_IP, "false")],
            std::slice::from_ref(&both)
        ),
        Err(PRESERVE_CLIENT_IP)
    );
    assert_eq!(
        check(&[(PRESERVE_CLIENT_IP, "true")], std::slice::from_ref(&udp)),
        Ok(())
    );
    assert_eq!(
        check(&[(PROXY_PROTOCOL, "v2")], std::slice::from_ref(&tcp)),
        Ok(())
    );
    assert_eq!(
        check(
            &[
                (DEREGISTRATION_DELAY, "0"),
                (CONNECTION_TERMINATION, "true")
            ],
            &[udp]
        ),
        Ok(())
    );
}

#[test]
fn attributes_cover_what_each_protocol_takes_and_defaults_fill_the_rest() {
    let options = AttributeOptions {
        proxy_protocol_v2: Some(true),
        deregistration_delay: Some(30),
        ..AttributeOptions::default()
    };
    let tcp = TargetGroupAttributes::wanted(&options, ListenerProtocol::Tcp);
    let entries: Vec<(&str, &str)> = tcp.entries().collect();
    assert_eq!(
        entries,
        vec![
            (ATTR_CONNECTION_TERMINATION, "false"),
            (ATTR_DEREGISTRATION_DELAY, "30"),
            (ATTR_PRESERVE_CLIENT_IP, "false"),
            (ATTR_PROXY_PROTOCOL_V2, "true"),
        ]
    );
    let udp = TargetGroupAttributes::wanted(&AttributeOptions::default(), ListenerProtocol::Udp);
    assert_eq!(
        udp.entries().count(),
        2,
        "UDP takes no client IP or PROXY setting"
    );

    // What AWS describes, or leaves out (then its default), against what is wanted.
    let have: BTreeMap<String, String> = [
        (ATTR_DEREGISTRATION_DELAY.to_owned(), "300".to_owned()),
        (ATTR_PROXY_PROTOCOL_V2.to_owned(), "false".to_owned()),
    ]
    .into();
    let diff = tcp.differences(&have, ListenerProtocol::Tcp);
    assert_eq!(
        diff,
        vec![
            (ATTR_DEREGISTRATION_DELAY.to_owned(), "30".to_owned()),
            (ATTR_PROXY_PROTOCOL_V2.to_owned(), "true".to_owned()),
        ]
    );
    let defaults = TargetGroupAttributes::aws_defaults(ListenerProtocol::Tcp);
    assert!(
        defaults
            .differences(&have, ListenerProtocol::Tcp)
            .is_empty()
    );
    let set: BTreeMap<String, String> = diff.into_iter().collect();
    assert_eq!(
        defaults.differences(&set, ListenerProtocol::Tcp).len(),
        2,
        "removing the annotations puts AWS's defaults back"
    );
}
