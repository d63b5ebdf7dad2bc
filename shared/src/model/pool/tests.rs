use super::*;

const ARN_A: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/a/1";
const ARN_B: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/b/2";

#[test]
fn parses_pools_with_defaults() {
    let json = format!(
        r#"{{"default":{{"nlbArns":["{ARN_A}"],"ports":"30000-30099"}},
            "eu":{{"nlbArns":["{ARN_B}"],"ports":"7000-7009","listenerQuota":10}}}}"#
    );
    let set = PoolSet::from_json(&json).expect("valid");
    let default = set.get(DEFAULT_POOL).expect("default pool");
    assert_eq!(default.listener_quota(), MAX_LISTENERS_PER_NLB);
    assert_eq!(default.ports().len(), 100);
    assert_eq!(set.get("eu").map(NlbPool::capacity), Some(10));
    assert_eq!(set.pool_of(ARN_B).map(NlbPool::name), Some("eu"));
    assert_eq!(set.names(), "default, eu");
}

#[test]
fn capacity_is_bounded_by_the_range() {
    let json = format!(r#"{{"p":{{"nlbArns":["{ARN_A}","{ARN_B}"],"ports":"1-3"}}}}"#);
    assert_eq!(
        PoolSet::from_json(&json)
            .expect("valid")
            .get("p")
            .map(NlbPool::capacity),
        Some(6)
    );
}

#[test]
fn rejects_bad_pools_with_the_reason() {
    let cases = [
        (r#"{}"#.to_owned(), "defines no pool"),
        (r#"[1]"#.to_owned(), "not valid pool JSON"),
        (
            format!(r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"9-1"}}}}"#),
            "empty",
        ),
        (
            format!(r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"x-1"}}}}"#),
            "not a port number",
        ),
        (
            format!(r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"100"}}}}"#),
            "FIRST-LAST",
        ),
        (
            format!(r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"1-2","listenerQuota":51}}}}"#),
            "does not raise",
        ),
        (
            r#"{"p":{"nlbArns":[],"ports":"1-2"}}"#.to_owned(),
            "nlbArns is empty and there is no",
        ),
        (
            r#"{"p":{"nlbArns":["my-nlb"],"ports":"1-2"}}"#.to_owned(),
            "not a load balancer ARN",
        ),
        (
            format!(r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"1-2","quota":5}}}}"#),
            "unknown field",
        ),
        (
            format!(r#"{{"Bad_Name":{{"nlbArns":["{ARN_A}"],"ports":"1-2"}}}}"#),
            "pool name",
        ),
        (
            format!(
                r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"1-2"}},"q":{{"nlbArns":["{ARN_A}"],"ports":"1-2"}}}}"#
            ),
            "listed twice",
        ),
    ];
    for (json, expected) in cases {
        let err = PoolSet::from_json(&json).expect_err(&json);
        assert!(err.contains(expected), "{json}: {err}");
    }
}

#[test]
fn a_managed_pool_needs_no_premade_nlb_and_lists_its_members_after_them() {
    let json = format!(
        r#"{{"m":{{"ports":"100-199","managed":{{"max":2,"subnets":["subnet-0123abcd"]}}}},
            "both":{{"nlbArns":["{ARN_A}"],"ports":"1-10","managed":{{"max":1,"spare":5,"subnets":["subnet-0123abcd"]}}}}}}"#
    );
    let set = PoolSet::from_json(&json).expect("valid");
    let m = set.get("m").expect("m");
    assert!(m.nlb_arns().is_empty() && m.managed().is_some());
    assert_eq!(m.capacity(), 0);
    let both = set
        .get("both")
        .expect("both")
        .with_members([ARN_B.to_owned()]);
    assert_eq!(both.nlb_arns(), [ARN_A, ARN_B]);
    assert_eq!(both.premade_arns(), [ARN_A]);
    assert!(both.is_made(ARN_B) && !both.is_made(ARN_A));
    assert_eq!(both.capacity(), 20);
    assert_eq!(
        both.with_members([]).nlb_arns(),
        [ARN_A],
        "members replaced"
    );
    let err = PoolSet::from_json(
        r#"{"p":{"ports":"1-10","managed":{"max":1,"spare":11,"subnets":["subnet-0123abcd"]}}}"#,
    )
    .expect_err("spare above what one NLB of 10 ports holds");
    assert!(err.starts_with("pool \"p\": managed.spare"), "{err}");
}

#[test]
fn reads_placement_blocked_ports_and_nlb_names() {
    let json = format!(
        r#"{{"p":{{"nlbArns":["{ARN_A}","{ARN_B}"],"ports":"7000-7099","placement":"pack",
            "blockedPorts":["7000", "7050-7059"]}}}}"#
    );
    let set = PoolSet::from_json(&json).expect("valid");
    let p = set.get("p").expect("p");
    assert_eq!(p.placement(), PlacementPolicy::Pack);
    assert!(p.is_blocked(7000) && p.is_blocked(7055) && !p.is_blocked(7060));
    assert!(!p.takes_port(7000) && p.takes_port(7001) && !p.takes_port(7100));
    assert_eq!(p.usable_ports(), 89);
    assert_eq!(p.nlb_named("b"), Some(ARN_B));
    assert_eq!(p.nlb_named("c"), None);
    assert_eq!(nlb_name_of(ARN_A), Some("a"));
    assert_eq!(nlb_name_of("arn:aws:s3:::bucket"), None);
    let default = PoolSet::from_json(&format!(
        r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"1-9"}}}}"#
    ))
    .expect("valid");
    assert_eq!(
        default.get("p").map(NlbPool::placement),
        Some(PlacementPolicy::Balanced)
    );
    for (extra, expected) in [
        (r#""placement":"tight""#, "unknown variant"),
        (r#""blockedPorts":["x"]"#, "blockedPorts"),
        (r#""blockedPorts":["9-1"]"#, "blockedPorts"),
        (r#""blockedPorts":["1-9"]"#, "block every port"),
    ] {
        let json = format!(r#"{{"p":{{"nlbArns":["{ARN_A}"],"ports":"1-9",{extra}}}}}"#);
        let err = PoolSet::from_json(&json).expect_err(extra);
        assert!(err.contains(expected), "{extra}: {err}");
    }
}

#[test]
fn nth_wrapping_stays_in_range() {
    let range: PortRange = "65530-65535".parse().expect("valid");
    for i in 0..20 {
        assert!(range.contains(range.nth_wrapping(i)));
    }
    assert_eq!(range.nth_wrapping(6), 65530);
}
