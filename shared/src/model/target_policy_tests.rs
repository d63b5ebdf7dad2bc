use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;
use crate::model::targets::SlicePort;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn slice(name: &str, manager: Option<&str>, ips: &[&str]) -> SliceView {
    SliceView {
        name: name.to_owned(),
        managed_by: manager.map(str::to_owned),
        ports: vec![SlicePort {
            name: Some("game".into()),
            port: Some(7777),
        }],
        ready: ips.iter().map(|i| ip(i)).collect(),
        pods: vec![],
    }
}

#[test]
fn parses_cidrs_strictly() {
    // GIVEN well-formed networks THEN they parse and print back the same
    for good in ["10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0", "192.168.1.7/32"] {
        let c: Ipv4Cidr = good.parse().expect(good);
        assert_eq!(c.to_string(), good);
    }
    // GIVEN anything else THEN an error that quotes the input
    for bad in [
        "",
        "10.0.0.0",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "10.0.0.0/8/8",
        "10.0.0.1/8",
        "010.0.0.0/8",
        "10.0.0/8",
        "10.0.0.0.0/8",
        "256.0.0.0/8",
        " 10.0.0.0/8",
        "10.0.0.0 /8",
        "fd00::/8",
        "ten/8",
    ] {
        let err = bad.parse::<Ipv4Cidr>().expect_err(bad);
        assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
    }
    let err = "10.0.0.1/8".parse::<Ipv4Cidr>().expect_err("host bits");
    assert!(
        err.contains("host bits") && err.contains("10.0.0.0/8"),
        "{err}"
    );
}

#[test]
fn parses_lists_refusing_empty_entries() {
    assert_eq!(
        parse_cidrs("10.0.0.0/16, 172.16.0.0/12")
            .expect("two")
            .len(),
        2
    );
    assert!(
        parse_cidrs("10.0.0.0/16,")
            .expect_err("trailing comma")
            .contains("entry 2 is empty")
    );
    assert_eq!(
        parse_managers(" a.b-c_d ,Cilium").expect("two"),
        vec!["a.b-c_d".to_owned(), "Cilium".to_owned()]
    );
    for bad in ["-a", "a-", "a b", "a/b", &"m".repeat(64), "a,,b"] {
        assert!(parse_managers(bad).is_err(), "{bad:?}");
    }
}

proptest! {
    #[test]
    fn a_cidr_contains_exactly_the_addresses_sharing_its_prefix(
        base in any::<u32>(), prefix in 0u8..=32, probe in any::<u32>()
    ) {
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        let network = Ipv4Addr::from(base & mask);
        let cidr: Ipv4Cidr = format!("{network}/{prefix}").parse().expect("canonical");
        prop_assert!(cidr.contains(network));
        prop_assert!(cidr.contains(Ipv4Addr::from((base & mask) | !mask)), "last address");
        let inside = probe & mask == base & mask;
        prop_assert_eq!(cidr.contains(Ipv4Addr::from(probe)), inside);
    }

    #[test]
    fn display_and_parse_round_trip_and_host_bits_are_refused(
        base in any::<u32>(), prefix in 0u8..=32
    ) {
        let text = format!("{}/{prefix}", Ipv4Addr::from(base));
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        match text.parse::<Ipv4Cidr>() {
            Ok(c) => {
                prop_assert_eq!(base & !mask, 0, "accepted host bits: {}", text);
                prop_assert_eq!(c.to_string(), text);
            }
            Err(e) => {
                prop_assert_ne!(base & !mask, 0, "refused a network: {}", e);
            }
        }
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(s in "\\PC{0,24}") {
        let _ = s.parse::<Ipv4Cidr>();
        let _ = parse_cidrs(&s);
        let _ = parse_managers(&s);
    }
}

#[test]
fn by_default_only_the_controllers_slices_are_trusted() {
    // GIVEN the default policy and slices of the controller, of a person, and unlabelled
    let policy = TargetPolicy::default();
    let slices = vec![
        slice("room-abc", Some(CONTROLLER_MANAGER), &["10.0.0.1"]),
        slice("room-evil", Some("kubectl"), &["10.0.0.9", "10.0.0.8"]),
        slice("room-bare", None, &["10.0.0.7"]),
    ];

    // WHEN they are screened
    let screened = policy.screen(slices);

    // THEN only the controller's slice is kept, and each other is named with its manager
    assert_eq!(screened.trusted.len(), 1);
    assert_eq!(screened.trusted[0].name, "room-abc");
    let [evil, bare] = screened.rejections.as_slice() else {
        panic!("two rejections: {:?}", screened.rejections);
    };
    assert_eq!(
        (evil.slice.as_str(), evil.reason),
        ("room-evil", UNTRUSTED_SLICE)
    );
    assert!(
        evil.note.contains("room-evil") && evil.note.contains("\"kubectl\""),
        "{}",
        evil.note
    );
    assert!(evil.note.contains(TRUSTED_MANAGERS_VAR), "{}", evil.note);
    assert!(evil.note.contains("2 ready address(es)"), "{}", evil.note);
    assert!(
        bare.note
            .contains("has no endpointslice.kubernetes.io/managed-by label"),
        "{}",
        bare.note
    );
}

#[test]
fn allowed_managers_are_trusted_and_empty_slices_ignored() {
    // GIVEN a policy allowing the testbed's manager
    let policy = TargetPolicy::new(["testbed.nlb-port-pool"], vec![]);
    let slices = vec![
        slice("a", Some("testbed.nlb-port-pool"), &["10.0.0.1"]),
        slice("b", Some("kubectl"), &[]),
    ];

    // WHEN screened THEN the allowed slice is kept; the untrusted one adds nothing: no report
    let screened = policy.screen(slices);
    assert_eq!(screened.trusted.len(), 1);
    assert!(screened.rejections.is_empty(), "{:?}", screened.rejections);
}

#[test]
fn addresses_outside_the_cidrs_are_dropped_and_reported() {
    // GIVEN pods in 10.0.0.0/16 and a trusted slice also listing a node and a public address
    let policy = TargetPolicy::new(
        Vec::<String>::new(),
        vec!["10.0.0.0/16".parse().expect("cidr")],
    );
    let slices = vec![slice(
        "room-abc",
        Some(CONTROLLER_MANAGER),
        &["10.0.3.4", "192.168.0.10", "10.1.0.1", "10.0.9.9"],
    )];

    // WHEN screened
    let screened = policy.screen(slices);

    // THEN the inside addresses stay, the outside ones are named with the CIDRs
    assert_eq!(
        screened.trusted[0].ready,
        vec![ip("10.0.3.4"), ip("10.0.9.9")]
    );
    let [r] = screened.rejections.as_slice() else {
        panic!("one rejection: {:?}", screened.rejections);
    };
    assert_eq!(r.reason, OUTSIDE_CIDRS);
    assert!(r.note.contains("10.1.0.1, 192.168.0.10"), "{}", r.note);
    assert!(r.note.contains("TARGET_CIDRS (10.0.0.0/16)"), "{}", r.note);
}

#[test]
fn fingerprints_change_with_what_is_reported() {
    let policy = TargetPolicy::new(
        Vec::<String>::new(),
        vec!["10.0.0.0/16".parse().expect("cidr")],
    );
    let fp = |s: SliceView| policy.screen(vec![s]).rejections[0].fingerprint.clone();
    let m = Some(CONTROLLER_MANAGER);
    // The same problem, in another order or with other good addresses: one fingerprint.
    assert_eq!(
        fp(slice("s", m, &["1.1.1.1", "2.2.2.2", "10.0.0.1"])),
        fp(slice("s", m, &["2.2.2.2", "1.1.1.1"]))
    );
    // Another outside address, another slice or another manager: another fingerprint.
    assert_ne!(
        fp(slice("s", m, &["1.1.1.1"])),
        fp(slice("s", m, &["1.1.1.2"]))
    );
    assert_ne!(
        fp(slice("s", m, &["1.1.1.1"])),
        fp(slice("t", m, &["1.1.1.1"]))
    );
    assert_ne!(
        fp(slice("s", Some("x"), &["10.0.0.1"])),
        fp(slice("s", Some("y"), &["10.0.0.1"]))
    );
}

#[test]
fn a_long_list_of_outside_addresses_is_counted() {
    let policy = TargetPolicy::new(
        Vec::<String>::new(),
        vec!["10.0.0.0/8".parse().expect("cidr")],
    );
    let ips: Vec<String> = (1..=25).map(|i| format!("192.168.0.{i}")).collect();
    let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    let screened = policy.screen(vec![slice("big", Some(CONTROLLER_MANAGER), &refs)]);
    assert!(screened.trusted[0].ready.is_empty());
    assert!(
        screened.rejections[0].note.contains("and 15 more"),
        "{}",
        screened.rejections[0].note
    );
}
