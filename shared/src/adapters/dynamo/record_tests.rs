use super::*;

pub(crate) fn claim() -> Claim {
    Claim {
        owner: Owner {
            key: ServiceKey {
                cluster: "c".into(),
                namespace: "ns".into(),
                name: "room".into(),
            },
            uid: "u-1".into(),
            pod: None,
        },
        key: ListenerKey::new(7777, ListenerProtocol::TcpUdp),
        port_name: "game".into(),
        protocol: ListenerProtocol::TcpUdp,
        service_port: 7777,
        pool: "default".into(),
        nlb_arn: "arn:nlb".into(),
        port: 30001,
        state: ClaimState::Active,
        listener_arn: Some("arn:l".into()),
        target_group_arn: None,
        claimed_at: 1_764_150_000,
        token: "run-1".into(),
        held_at: 1_764_150_001,
        gone_since: None,
        applied: None,
        claim_key: None,
    }
}

#[test]
fn owner_records_round_trip() {
    let c = claim();
    assert_eq!(claim_from_item(&owner_item(&c)), Ok(c));
}

#[test]
fn pod_records_round_trip_under_a_prefixed_sort_key() {
    let mut c = claim();
    c.owner.pod = Some("room-7".into());
    c.gone_since = Some(1_764_150_100);
    c.applied = Some("5f1d0c2a9b7e4d31".into());
    let item = owner_item(&c);
    assert_eq!(item.get(SK), Some(&s("pod#room-7#7777-tcp_udp")));
    assert_eq!(claim_from_item(&item), Ok(c.clone()));
    let h = holder_from_item("arn:nlb", &port_item(&c)).expect("valid");
    assert_eq!(h.owner.pod.as_deref(), Some("room-7"));
    let mut forged = item.clone();
    forged.remove(POD);
    assert!(
        claim_from_item(&forged)
            .expect_err("mismatch")
            .contains("does not match")
    );
}

#[test]
fn port_items_name_their_holder() {
    let c = claim();
    let h = holder_from_item("arn:nlb", &port_item(&c)).expect("valid");
    assert_eq!((h.port, h.owner, h.key), (30001, c.owner, c.key));
}

#[test]
fn damaged_items_are_errors_naming_the_attribute() {
    let mut item = owner_item(&claim());
    item.remove("port");
    assert!(
        claim_from_item(&item)
            .expect_err("missing")
            .contains("attribute port is missing")
    );
    let mut item = owner_item(&claim());
    item.insert("port".into(), n(70000));
    assert!(
        claim_from_item(&item)
            .expect_err("range")
            .contains("out of range")
    );
    let mut item = owner_item(&claim());
    item.insert("state".into(), s("weird"));
    assert!(claim_from_item(&item).expect_err("state").contains("weird"));
}
