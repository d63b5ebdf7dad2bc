use super::*;
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;

#[test]
fn a_target_group_arn_names_its_group() {
    let arn = "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/npp-0a1b/50dc6c495c0c9188";
    assert_eq!(target_group_name_in(arn), Some("npp-0a1b"));
    let listener = "arn:aws:elasticloadbalancing:us-west-2:1:listener/net/a/1/2";
    assert_eq!(target_group_name_in(listener), None);
    assert_eq!(target_group_name_in("targetgroup/x/1"), None, "not an ARN");
}

fn owner(ns: &str, name: &str, uid: &str) -> Owner {
    Owner {
        key: ServiceKey {
            cluster: "c".into(),
            namespace: ns.into(),
            name: name.into(),
        },
        uid: uid.into(),
        pod: None,
    }
}

#[test]
fn names_are_short_distinct_and_stable() {
    let key = ListenerKey::new(7777, ListenerProtocol::Tcp);
    let a = target_group_name(&owner("a", "room", "u1"), &key);
    assert_eq!(a.len(), 32);
    assert!(a.starts_with(TARGET_GROUP_PREFIX));
    assert!(
        a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
    assert_eq!(a, target_group_name(&owner("a", "room", "u1"), &key));
    assert_ne!(
        a,
        target_group_name(&owner("b", "room", "u1"), &key),
        "namespace"
    );
    assert_ne!(a, target_group_name(&owner("a", "room", "u2"), &key), "uid");
    assert_ne!(
        a,
        target_group_name(&owner("a", "roo", "mu1"), &key),
        "boundaries"
    );
    let udp = ListenerKey::new(7777, ListenerProtocol::Udp);
    assert_ne!(
        a,
        target_group_name(&owner("a", "room", "u1"), &udp),
        "listener"
    );
    let pod = |name: &str| Owner {
        pod: Some(name.into()),
        ..owner("a", "room", "u1")
    };
    let p0 = target_group_name(&pod("room-0"), &key);
    assert_eq!(p0.len(), 32);
    assert_ne!(a, p0, "a pod's group is not the Service's");
    assert_ne!(p0, target_group_name(&pod("room-1"), &key), "pod");
    assert_eq!(p0, target_group_name(&pod("room-0"), &key), "stable");
}

#[test]
fn ownership_needs_both_tags() {
    use std::collections::HashMap;
    let tags = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert!(owned_by(
        Some(&tags(&[(TAG_MANAGED, "true"), (TAG_SERVICE_UID, "u1")])),
        "u1"
    ));
    assert!(!owned_by(
        Some(&tags(&[(TAG_MANAGED, "true"), (TAG_SERVICE_UID, "u2")])),
        "u1"
    ));
    assert!(!owned_by(Some(&tags(&[(TAG_SERVICE_UID, "u1")])), "u1"));
    assert!(!owned_by(None, "u1"));
}

#[test]
fn tags_carry_ownership() {
    let tags = ResourceTags {
        owner: owner("games", "room", "u1"),
        pool: "default".into(),
        listener: ListenerKey::new(7777, ListenerProtocol::Udp),
    };
    let pairs = tags.pairs();
    assert!(pairs.contains(&(TAG_MANAGED, "true".into())));
    assert!(pairs.contains(&(TAG_SERVICE_UID, "u1".into())));
    assert!(pairs.contains(&(TAG_LISTENER, "7777-udp".into())));
    assert_eq!(pairs.len(), 7);
}
