//! Only trusted EndpointSlices and allowed addresses become targets, against the test bed: a
//! hand-written slice of an untrusted manager adds nothing and a Warning Event names it, once.

mod common;

use common::Stack;
use nlb_port_pool::model::target_policy::{OUTSIDE_CIDRS, TargetPolicy, UNTRUSTED_SLICE};
use testbed::kube_fixtures::{
    PortSpec, SLICE_MANAGER, endpoint_slice, managed_by, opted_in_service,
};

/// The Warning Events of `reason` about Service `name`: their notes.
async fn warnings(stack: &Stack, name: &str, reason: &str) -> Vec<String> {
    stack
        .events_of(name)
        .await
        .into_iter()
        .filter(|(kind, r, _)| kind == "Warning" && r == reason)
        .map(|(_, _, note)| note)
        .collect()
}

async fn targets_of(stack: &Stack, name: &str) -> Vec<String> {
    let uid = stack.uid(name).await;
    let mut out = Vec::new();
    for group in stack.target_groups_of(&uid).await {
        out.extend(stack.targets(&group).await);
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_slice_of_an_untrusted_manager_adds_no_target_and_is_named() {
    // GIVEN an opted-in Service with a slice of an allowed manager (the testbed's), and two
    // hand-written ones: one managed by "kubectl" listing a node's kubelet port, one unlabelled
    let stack = Stack::new("slices", 1, "30000-30099", 50).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    let port = [("game", 7777, "TCP")];
    stack
        .put_slice(&endpoint_slice(
            &ns,
            "room-a",
            "room",
            &port,
            &[("10.0.2.1", true)],
        ))
        .await;
    let kubelet = [("game", 10250, "TCP")];
    let kubelet_slice = endpoint_slice(
        &ns,
        "room-kubelet",
        "room",
        &kubelet,
        &[("10.0.200.7", true)],
    );
    stack
        .put_slice(&managed_by(kubelet_slice, Some("kubectl")))
        .await;
    let bare = endpoint_slice(&ns, "room-bare", "room", &port, &[("10.0.2.66", true)]);
    stack.put_slice(&managed_by(bare, None)).await;

    // WHEN Service Changed is handled, then Endpoints Changed twice
    let changed = stack.changed("room").await.expect("allocates");
    for _ in 0..2 {
        stack.endpoints_changed("room").await.expect("syncs");
    }

    // THEN the target group holds the allowed slice's pod only
    assert!(changed.outcome.starts_with("Allocated"), "{changed:?}");
    assert_eq!(targets_of(&stack, "room").await, ["10.0.2.1:7777"]);
    // AND one Warning per untrusted slice names it (three runs saw them: still one each)
    let warned = warnings(&stack, "room", UNTRUSTED_SLICE).await;
    assert_eq!(warned.len(), 2, "{warned:?}");
    let kubelet_note = warned
        .iter()
        .find(|n| n.contains("room-kubelet"))
        .unwrap_or_else(|| panic!("no Warning names room-kubelet: {warned:?}"));
    assert!(kubelet_note.contains("\"kubectl\""), "{kubelet_note}");
    assert!(
        warned
            .iter()
            .any(|n| n.contains("room-bare") && n.contains("no endpointslice")),
        "{warned:?}"
    );
    // AND the allocation is reported as usual
    assert_eq!(
        stack.annotations("room").await[nlb_port_pool::contract::annotations::STATUS],
        "Allocated"
    );
}

#[tokio::test]
async fn a_manager_the_operator_allows_is_trusted() {
    // GIVEN functions allowing "cilium" besides the controller (and not the testbed's manager)
    let stack = Stack::new("slices-allow", 1, "30000-30099", 50)
        .await
        .with_target_policy(TargetPolicy::new(["cilium"], vec![]))
        .await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    let port = [("game", 7777, "TCP")];
    let cilium = endpoint_slice(&ns, "room-c", "room", &port, &[("10.0.4.1", true)]);
    stack.put_slice(&managed_by(cilium, Some("cilium"))).await;
    let testbed = endpoint_slice(&ns, "room-t", "room", &port, &[("10.0.4.2", true)]);
    stack.put_slice(&testbed).await;

    // WHEN Service Changed is handled
    stack.changed("room").await.expect("allocates");

    // THEN cilium's slice is a target; the testbed's, no longer allowed here, is named
    assert_eq!(targets_of(&stack, "room").await, ["10.0.4.1:7777"]);
    let warned = warnings(&stack, "room", UNTRUSTED_SLICE).await;
    assert!(
        warned.len() == 1 && warned[0].contains("room-t") && warned[0].contains(SLICE_MANAGER),
        "{warned:?}"
    );
}

#[tokio::test]
async fn an_address_outside_target_cidrs_is_refused() {
    // GIVEN TARGET_CIDRS 10.0.3.0/24 and a trusted slice also listing 10.9.9.9
    let cidr = "10.0.3.0/24".parse().expect("cidr");
    let stack = Stack::new("slices-cidr", 1, "30000-30099", 50)
        .await
        .with_target_policy(TargetPolicy::new([SLICE_MANAGER], vec![cidr]))
        .await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "room",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    stack
        .put_slice(&endpoint_slice(
            &ns,
            "room-a",
            "room",
            &[("game", 7777, "TCP")],
            &[("10.0.3.1", true), ("10.9.9.9", true)],
        ))
        .await;

    // WHEN Service Changed and Endpoints Changed are handled
    stack.changed("room").await.expect("allocates");
    stack.endpoints_changed("room").await.expect("syncs");

    // THEN only the inside address is a target, and one Warning names the other and the CIDR
    assert_eq!(targets_of(&stack, "room").await, ["10.0.3.1:7777"]);
    let warned = warnings(&stack, "room", OUTSIDE_CIDRS).await;
    assert_eq!(warned.len(), 1, "{warned:?}");
    for part in ["room-a", "10.9.9.9", "10.0.3.0/24"] {
        assert!(warned[0].contains(part), "{part}: {}", warned[0]);
    }
}
