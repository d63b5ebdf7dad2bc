use super::*;
use crate::contract::protocol::ListenerProtocol;

fn ann(pairs: &[(&str, &str)]) -> Annotations {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn opt_in_accepts_only_true_and_false() {
    assert_eq!(opt_in(&ann(&[])), Ok(false));
    assert_eq!(opt_in(&ann(&[(AUTO_ASSIGN, "true")])), Ok(true));
    assert_eq!(opt_in(&ann(&[(AUTO_ASSIGN, "false")])), Ok(false));
    for bad in ["True", "yes", "1", "", " true"] {
        let err = opt_in(&ann(&[(AUTO_ASSIGN, bad)])).expect_err(bad);
        assert_eq!(err.key, AUTO_ASSIGN);
    }
}

#[test]
fn network_disabled_accepts_only_true_and_false_and_is_in_the_request() {
    assert_eq!(network_disabled(&ann(&[])), Ok(false));
    assert_eq!(
        network_disabled(&ann(&[(NETWORK_DISABLED, "true")])),
        Ok(true)
    );
    assert_eq!(
        network_disabled(&ann(&[(NETWORK_DISABLED, "false")])),
        Ok(false)
    );
    for bad in ["True", "yes", "1", "", " true"] {
        let err = network_disabled(&ann(&[(NETWORK_DISABLED, bad)])).expect_err(bad);
        assert_eq!(err.key, NETWORK_DISABLED);
        assert!(err.to_string().contains("neither"), "{err}");
        let refused = parse_request(&ann(&[(AUTO_ASSIGN, "true"), (NETWORK_DISABLED, bad)]));
        assert_eq!(refused.map_err(|e| e.key), Err(NETWORK_DISABLED), "{bad:?}");
    }
    let on = [(AUTO_ASSIGN, "true"), (NETWORK_DISABLED, "true")];
    assert!(parse_request(&ann(&on)).expect("valid").network_disabled);
    let off = parse_request(&ann(&[(AUTO_ASSIGN, "true")])).expect("valid");
    assert!(!off.network_disabled);
}

#[test]
fn a_claim_key_is_a_label_and_per_service_only() {
    let keyed = |k: &str| parse_request(&ann(&[(AUTO_ASSIGN, "true"), (CLAIM_KEY, k)]));
    assert_eq!(
        keyed("arena-7").expect("valid").claim_key.as_deref(),
        Some("arena-7")
    );
    assert_eq!(keyed("").expect("valid").claim_key, None);
    for bad in ["Arena", "a_b", "-a", &"x".repeat(64)] {
        assert_eq!(keyed(bad).map_err(|e| e.key), Err(CLAIM_KEY), "{bad:?}");
    }
    let per_pod = parse_request(&ann(&[(CLAIM_KEY, "arena"), (MODE, "per-pod")]));
    let err = per_pod.expect_err("per-pod");
    assert!(
        err.key == CLAIM_KEY && err.problem.contains("per-Service"),
        "{err}"
    );
}

#[test]
fn defaults_when_nothing_is_set() {
    let req = parse_request(&ann(&[(AUTO_ASSIGN, "true")])).expect("defaults");
    assert_eq!(req.pool, DEFAULT_POOL);
    assert_eq!(req.health_check, HealthCheckSpec::default());
    // Sized for rooms: a new target is healthy after 2 checks 10 s apart, not 5 of 30 s.
    let hc = &req.health_check;
    assert_eq!(
        (
            hc.interval_seconds,
            hc.healthy_threshold,
            hc.unhealthy_threshold
        ),
        (Some(10), Some(2), Some(2))
    );
    assert_eq!(req.mode, Mode::PerService);
    assert_eq!(req.pod_release_after, DEFAULT_POD_RELEASE_AFTER);
}

#[test]
fn reads_the_mode_and_the_pod_grace() {
    let req =
        parse_request(&ann(&[(MODE, "per-pod"), (POD_RELEASE_AFTER, "300s")])).expect("valid");
    assert_eq!((req.mode, req.pod_release_after), (Mode::PerPod, 300));
    let req =
        parse_request(&ann(&[(MODE, "per-service"), (POD_RELEASE_AFTER, "0")])).expect("valid");
    assert_eq!((req.mode, req.pod_release_after), (Mode::PerService, 0));
    let req = parse_request(&ann(&[(NLB, "game-edge-1")])).expect("valid");
    assert_eq!(req.nlb.as_deref(), Some("game-edge-1"));
    for (key, value) in [
        (NLB, "-edge"),
        (NLB, "a/b"),
        (MODE, "pod"),
        (POD_RELEASE_AFTER, "-1"),
        (POD_RELEASE_AFTER, "86401"),
        (POD_RELEASE_AFTER, "10m"),
    ] {
        let e = parse_request(&ann(&[(key, value)])).expect_err(value);
        assert_eq!(e.key, key, "{value}");
    }
}

#[test]
fn reads_every_override() {
    let req = parse_request(&ann(&[
        (POOL, "eu-1"),
        (HC_PROTOCOL, "http"),
        (HC_PORT, "8080"),
        (HC_INTERVAL, "10"),
        (HC_TIMEOUT, "5"),
        (HC_HEALTHY_THRESHOLD, "3"),
        (HC_UNHEALTHY_THRESHOLD, "4"),
        (HC_PATH, "/healthz"),
    ]))
    .expect("valid");
    assert_eq!(req.pool, "eu-1");
    let hc = req.health_check;
    assert_eq!(hc.protocol, HealthCheckProtocol::Http);
    assert_eq!(hc.port, HealthCheckPort::Port(8080));
    assert_eq!(
        (
            hc.interval_seconds,
            hc.timeout_seconds,
            hc.healthy_threshold,
            hc.unhealthy_threshold
        ),
        (Some(10), Some(5), Some(3), Some(4))
    );
    assert_eq!(hc.path.as_deref(), Some("/healthz"));
}

#[test]
fn rejects_each_bad_value_naming_the_key() {
    let huge = "x".repeat(5000);
    let cases: Vec<(&str, &str)> = vec![
        (POOL, "Bad Pool"),
        (POOL, &huge),
        (HC_PROTOCOL, "UDP"),
        (HC_PORT, "0"),
        (HC_PORT, "70000"),
        (HC_INTERVAL, "1"),
        (HC_INTERVAL, "ten"),
        (HC_TIMEOUT, "500"),
        (HC_HEALTHY_THRESHOLD, "11"),
        (HC_UNHEALTHY_THRESHOLD, "-1"),
        (HC_PATH, "/x"),
    ];
    for (key, value) in cases {
        let err = parse_request(&ann(&[(key, value)])).expect_err(key);
        assert_eq!(err.key, key, "{err}");
        assert!(err.to_string().len() < 300, "message stays short: {err}");
    }
    let err = parse_request(&ann(&[(HC_PROTOCOL, "HTTP"), (HC_PATH, "health")])).expect_err("path");
    assert_eq!(err.key, HC_PATH);
    let err = parse_request(&ann(&[(HC_INTERVAL, "5"), (HC_TIMEOUT, "10")])).expect_err("t > i");
    assert_eq!(err.key, HC_TIMEOUT);
}

#[test]
fn renders_seed_compatible_output() {
    let records = vec![AllocationRecord {
        name: "game".into(),
        protocol: ListenerProtocol::TcpUdp,
        service_port: 7777,
        port: 30001,
        nlb_arn: "arn:nlb".into(),
        dns: "nlb-1.elb.us-west-2.amazonaws.com".into(),
        listener_arn: "arn:listener".into(),
        target_group_arn: "arn:tg".into(),
        tls: false,
    }];
    let out = render_allocated(&records);
    assert_eq!(out[ALLOCATED_PORT], "30001");
    assert_eq!(out[ADDRESS], "nlb-1.elb.us-west-2.amazonaws.com:30001");
    assert_eq!(out[STATUS], "Allocated");
    let back: Vec<AllocationRecord> = serde_json::from_str(&out[ALLOCATIONS]).expect("json");
    assert_eq!(back, records);
    assert!(out[ALLOCATIONS].contains("\"protocol\":\"TCP_UDP\""));
    // `tls` is written only for a TLS listener, and read as false when absent.
    assert!(!out[ALLOCATIONS].contains("tls"));
    let tls = AllocationRecord {
        tls: true,
        ..records[0].clone()
    };
    let text = serde_json::to_string(&tls).expect("json");
    assert!(text.contains("\"tls\":true"), "{text}");
    assert_eq!(
        serde_json::from_str::<AllocationRecord>(&text).expect("back"),
        tls
    );
    assert_eq!(
        (records[0].listener_protocol(), tls.listener_protocol()),
        ("TCP_UDP".to_owned(), "TLS".to_owned())
    );
    assert!(out.keys().all(|k| OUTPUT_KEYS.contains(&k.as_str())));
}

#[test]
fn a_service_ref_round_trips_and_odd_values_name_nothing() {
    let value = service_ref("room-tcp", "6f1c-uid");
    assert_eq!(value, "room-tcp/6f1c-uid");
    assert_eq!(parse_service_ref(&value), Some(("room-tcp", "6f1c-uid")));
    for odd in ["", "room", "/uid", "room/", "a/b/c"] {
        assert_eq!(parse_service_ref(odd), None, "{odd:?}");
    }
}

#[test]
fn a_summary_without_shared_pods_reads_and_writes_as_before() {
    let old = r#"{"allocated":2,"ready":1,"pending":0,"errors":0,"leaving":1}"#;
    let summary: PodsSummary = serde_json::from_str(old).expect("old summary");
    assert!(summary.shared.is_empty() && summary.disabled == 0);
    assert_eq!(serde_json::to_string(&summary).expect("json"), old);
    let mut shared = summary;
    shared.shared.insert(
        "room-0".into(),
        SharedPod {
            address: "nlb.elb:30001".into(),
            ready: false,
        },
    );
    let text = serde_json::to_string(&shared).expect("json");
    assert!(
        text.ends_with(r#""shared":{"room-0":{"address":"nlb.elb:30001","ready":false}}}"#),
        "{text}"
    );
}

#[test]
fn status_text() {
    assert_eq!(
        Status::Pending("pool exhausted".into()).to_string(),
        "Pending: pool exhausted"
    );
    assert_eq!(Status::Error("x".into()).to_string(), "Error: x");
    assert_eq!(Status::Disabled.to_string(), "Disabled");
}
