//! Slices claiming the EndpointSlice controller against the pods the Service selects.

use super::*;
use crate::model::targets::{PodEndpoint, SlicePort};

fn slice(manager: &str, ready: &[&str], pods: &[(&str, &str)]) -> SliceView {
    SliceView {
        name: "room-abc".into(),
        managed_by: Some(manager.to_owned()),
        ports: vec![SlicePort {
            name: Some("game".into()),
            port: Some(7777),
        }],
        ready: ready.iter().map(|ip| ip.parse().expect("ip")).collect(),
        pods: pods
            .iter()
            .map(|(pod, ip)| PodEndpoint {
                pod: (*pod).into(),
                ip: ip.parse().expect("ip"),
                ready: true,
            })
            .collect(),
    }
}

fn pod(name: &str, ips: &[&str]) -> PodState {
    PodState {
        name: name.into(),
        uid: format!("uid-{name}"),
        ips: ips.iter().map(|ip| ip.parse().expect("ip")).collect(),
        ..PodState::default()
    }
}

#[test]
fn a_forged_controller_slice_keeps_only_the_services_own_pods() {
    // GIVEN the Service's pods, and a slice labelled as the controller's that adds a database
    let pods = [pod("room-0", &["10.0.0.1"]), pod("room-1", &["10.0.0.2"])];
    let forged = slice(
        CONTROLLER_MANAGER,
        &["10.0.0.1", "10.0.9.9", "10.0.0.2"],
        &[],
    );

    // WHEN it is checked against the pods
    let (kept, rejections) = only_pod_addresses(true, vec![forged], &pods);

    // THEN only the pods' addresses are kept, and the other is told
    let ips: Vec<String> = kept[0].ready.iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].reason, NOT_A_POD);
    assert!(
        rejections[0].note.contains("10.0.9.9"),
        "{}",
        rejections[0].note
    );
}

#[test]
fn a_pod_endpoint_must_name_the_pod_whose_ip_it_carries() {
    let pods = [pod("room-0", &["10.0.0.1"]), pod("room-1", &["10.0.0.2"])];
    let slices = vec![slice(
        CONTROLLER_MANAGER,
        &[],
        &[
            ("room-0", "10.0.0.1"),
            ("room-1", "10.0.0.1"),
            ("gone-7", "10.0.0.7"),
        ],
    )];
    let (kept, rejections) = only_pod_addresses(true, slices, &pods);
    let left: Vec<&str> = kept[0].pods.iter().map(|p| p.pod.as_str()).collect();
    assert_eq!(
        left,
        ["room-0"],
        "another pod's IP, or a pod not selected: left out"
    );
    assert_eq!(rejections.len(), 1);
    assert!(rejections[0].note.contains("10.0.0.7"));
}

#[test]
fn a_controller_slice_under_a_service_without_a_selector_is_not_trusted() {
    let slices = vec![slice(CONTROLLER_MANAGER, &["10.0.0.1"], &[])];
    let (kept, rejections) = only_pod_addresses(false, slices, &[pod("x", &["10.0.0.1"])]);
    assert!(kept.is_empty());
    assert_eq!(rejections[0].reason, UNTRUSTED_SLICE);
    assert!(rejections[0].note.contains("without a selector"));
}

#[test]
fn slices_of_managers_the_operator_names_are_taken_as_they_are() {
    let slices = vec![slice("custom.example.com", &["10.0.9.9"], &[])];
    assert!(!needs_pods(&slices), "no pod read for them");
    let (kept, rejections) = only_pod_addresses(true, slices.clone(), &[]);
    assert_eq!(kept, slices);
    assert!(rejections.is_empty());
}

#[test]
fn the_pods_are_read_only_for_a_controller_slice_with_addresses() {
    assert!(needs_pods(&[slice(CONTROLLER_MANAGER, &["10.0.0.1"], &[])]));
    assert!(!needs_pods(&[slice(CONTROLLER_MANAGER, &[], &[])]));
    assert!(!needs_pods(&[]));
}
