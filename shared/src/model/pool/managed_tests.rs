use super::*;

fn parse(json: &str) -> Result<ManagedSpec, String> {
    serde_json::from_str::<ManagedJson>(json)
        .map_err(|e| e.to_string())?
        .validate(50)
}

#[test]
fn parses_with_defaults() {
    let spec =
        parse(r#"{"max":3,"subnets":["subnet-0123abcd","subnet-4567abcd"]}"#).expect("valid");
    assert_eq!((spec.min, spec.max, spec.spare), (0, 3, 50));
    assert_eq!(spec.retire_after, Duration::from_secs(3600));
    assert_eq!(spec.scheme, Scheme::InternetFacing);
    assert_eq!(spec.ip_address_type, IpAddressType::Ipv4);
    assert!(spec.cross_zone && spec.security_groups.is_empty() && spec.tags.is_empty());
    assert_eq!(spec.subnets[1].subnet_id, "subnet-4567abcd");
}

#[test]
fn reads_elastic_ips_and_the_rest() {
    let spec = parse(
        r#"{"min":1,"max":2,"spare":10,"retireAfterSeconds":600,"scheme":"internal",
            "subnets":["subnet-0123abcd:eipalloc-0123abcd"],"securityGroups":["sg-0123abcd"],
            "ipAddressType":"dualstack","crossZone":true,"tags":{"team":"games"}}"#,
    )
    .expect("valid");
    assert_eq!(
        spec.subnets[0].allocation_id.as_deref(),
        Some("eipalloc-0123abcd")
    );
    assert_eq!(spec.scheme.as_str(), "internal");
    assert_eq!(spec.ip_address_type.as_str(), "dualstack");
    assert!(spec.cross_zone);
    assert_eq!(spec.tags.get("team").map(String::as_str), Some("games"));
}

#[test]
fn rejects_bad_sections_naming_the_field() {
    let cases = [
        (r#"{"max":0,"subnets":["subnet-0123abcd"]}"#, "managed.max"),
        (
            r#"{"min":3,"max":2,"subnets":["subnet-0123abcd"]}"#,
            "managed.min",
        ),
        (
            r#"{"max":1,"spare":51,"subnets":["subnet-0123abcd"]}"#,
            "managed.spare",
        ),
        (
            r#"{"max":1,"retireAfterSeconds":5,"subnets":["subnet-0123abcd"]}"#,
            "managed.retireAfterSeconds",
        ),
        (r#"{"max":1,"subnets":[]}"#, "managed.subnets is empty"),
        (r#"{"max":1,"subnets":["sub-1"]}"#, "managed.subnets"),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd:eip-1"]}"#,
            "Elastic IP allocation id",
        ),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd:eipalloc-0123abcd","subnet-4567abcd"]}"#,
            "or none",
        ),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd","subnet-0123abcd"]}"#,
            "listed twice",
        ),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd"],"securityGroups":["default"]}"#,
            "managed.securityGroups",
        ),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd"],"tags":{"nlb-port-pool/x":"y"}}"#,
            "reserved",
        ),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd"],"scheme":"public"}"#,
            "managed.scheme",
        ),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd"],"ipAddressType":"ipv6"}"#,
            "managed.ipAddressType",
        ),
        (
            r#"{"max":1,"subnets":["subnet-0123abcd"],"minimum":1}"#,
            "unknown field",
        ),
        (r#"{"subnets":["subnet-0123abcd"]}"#, "max"),
    ];
    for (json, expected) in cases {
        let err = parse(json).expect_err(json);
        assert!(err.contains(expected), "{json}: {err}");
    }
}

#[test]
fn names_are_deterministic_short_and_distinct() {
    let a = managed_nlb_name("default", "0a1b2c3d4e5f", 1);
    assert_eq!(a, managed_nlb_name("default", "0a1b2c3d4e5f", 1));
    assert!(a.starts_with("npp-default-") && a.ends_with("-1"), "{a}");
    assert_ne!(a, managed_nlb_name("default", "ffffffffffff", 1));
    assert_ne!(a, managed_nlb_name("default", "0a1b2c3d4e5f", 2));
    let long = managed_nlb_name("a-".repeat(31).trim_end_matches('-'), "0a1b", 123_456);
    assert!(long.len() <= MAX_NLB_NAME, "{long}");
    assert!(!long.contains("--"), "{long}");
    assert!(long.starts_with(MANAGED_NLB_PREFIX));
}
