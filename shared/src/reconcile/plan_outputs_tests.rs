//! The plan's target groups and outputs, and which subjects may hold claims: plain data, no
//! double (the fixtures are the plan tests').

use super::*;

#[test]
fn the_target_group_is_named_tagged_and_set_up_as_asked() {
    let (owner, pool) = (owner(), pool(&[0], ""));
    let asked = request(&[
        (annotations::HC_INTERVAL, "20"),
        (
            crate::contract::listener_options::DEREGISTRATION_DELAY,
            "30",
        ),
    ]);
    let specs = [game()];
    let p = plan(&owner, &pool, None, &asked, &specs, &[], vec![]);
    let want = TargetGroupSpec {
        name: target_group_name(&owner, &specs[0].key),
        protocol: ListenerProtocol::Udp,
        port: 7777,
        vpc_id: "vpc-1".into(),
        health_check: asked.health_check.clone(),
        attributes: asked.options.setup_for(&specs[0]).attributes,
        tags: ResourceTags {
            owner: owner.clone(),
            pool: "p".into(),
            listener: specs[0].key.clone(),
        },
    };
    assert_eq!(p.listeners[0].group, want);
    assert_eq!(p.listeners[0].tls, None);
}

#[test]
fn outputs_say_allocated_ready_disabled_or_why_targets_are_missing() {
    struct Row {
        case: &'static str,
        /// The subject carries `network-disabled: "true"` (its slices then list no ready
        /// endpoint, as the run hands them to the plan).
        disabled: bool,
        /// The status the subject carries as read, and whether its records are these.
        status: Option<&'static str>,
        same_records: bool,
        pod: bool,
        slices: Vec<SliceView>,
        status_after: String,
        event: (NoticeKind, &'static str),
        target: Option<&'static str>,
    }
    let ready = vec![slice(&["10.0.0.9"], &[("game", 7777)], &[])];
    let rows = [
        Row {
            disabled: false,
            case: "first allocation: Allocated, a Normal Event naming the address",
            status: None,
            same_records: false,
            pod: false,
            slices: ready.clone(),
            status_after: "Allocated".into(),
            event: (NoticeKind::Normal, "Allocated"),
            target: None,
        },
        Row {
            disabled: false,
            case: "nothing changed since it was found reachable: Ready stays",
            status: Some("Ready"),
            same_records: true,
            pod: false,
            slices: ready.clone(),
            status_after: "Ready".into(),
            event: (NoticeKind::Normal, "Allocated"),
            target: None,
        },
        Row {
            disabled: false,
            case: "a listener changed: Ready goes back to Allocated",
            status: Some("Ready"),
            same_records: false,
            pod: false,
            slices: ready.clone(),
            status_after: "Allocated".into(),
            event: (NoticeKind::Normal, "Allocated"),
            target: None,
        },
        Row {
            disabled: false,
            case: "a target port no endpoint resolves: Error and a Warning",
            status: None,
            same_records: false,
            pod: false,
            slices: vec![slice(&["10.0.0.9"], &[("other", 1)], &[])],
            status_after: "Error: targetPort".into(),
            event: (NoticeKind::Warning, "TargetPortUnresolved"),
            target: None,
        },
        Row {
            disabled: false,
            case: "a pod: its IP noted as its target",
            status: None,
            same_records: false,
            pod: true,
            slices: ready.clone(),
            status_after: "Allocated".into(),
            event: (NoticeKind::Normal, "Allocated"),
            target: Some("10.0.0.9"),
        },
        Row {
            disabled: true,
            case: "taken out of its listeners: Disabled, no target, a Normal Event saying so",
            status: None,
            same_records: false,
            pod: false,
            slices: without_targets(ready.clone()),
            status_after: "Disabled".into(),
            event: (NoticeKind::Normal, "NetworkDisabled"),
            target: None,
        },
        Row {
            disabled: true,
            case: "taken out while Ready: Disabled, not Ready",
            status: Some("Ready"),
            same_records: true,
            pod: false,
            slices: without_targets(ready.clone()),
            status_after: "Disabled".into(),
            event: (NoticeKind::Normal, "NetworkDisabled"),
            target: None,
        },
        Row {
            disabled: true,
            case: "a pod taken out: no IP noted as its target",
            status: Some("Allocated"),
            same_records: true,
            pod: true,
            slices: without_targets(ready.clone()),
            status_after: "Disabled".into(),
            event: (NoticeKind::Normal, "NetworkDisabled"),
            target: None,
        },
        Row {
            disabled: false,
            case: "enabled again with the same listeners: Allocated until found reachable",
            status: Some("Disabled"),
            same_records: true,
            pod: false,
            slices: ready.clone(),
            status_after: "Allocated".into(),
            event: (NoticeKind::Normal, "Allocated"),
            target: None,
        },
    ];
    let (owner, pool, plain) = (owner(), pool(&[0], ""), request(&[]));
    let off = request(&[(annotations::NETWORK_DISABLED, "true")]);
    let named = spec("game", 7777, TargetPort::Name("game".into()));
    for row in rows {
        let specs = [named.clone()];
        let asked = if row.disabled { &off } else { &plain };
        let p = plan(&owner, &pool, None, asked, &specs, &row.slices, vec![]);
        assert_eq!(
            p.targets_of(&specs[0].key).is_empty(),
            row.disabled || row.status_after.starts_with("Error"),
            "{}",
            row.case
        );
        let held = claim(7777, 0, 7005, "p");
        let records = [p.listeners[0].record(&held, "arn:l", "arn:t", "nlb.elb")];
        let mut subject = service();
        if let Some(status) = row.status {
            subject.annotations.insert(STATUS.into(), status.into());
        }
        if row.same_records {
            let rendered = annotations::render_allocated(&records);
            subject
                .annotations
                .insert(ALLOCATIONS.into(), rendered[ALLOCATIONS].clone());
        }
        if row.pod {
            subject.pod = Some(PodSubject {
                name: "a".into(),
                uid: "pu".into(),
                replaces: None,
            });
        }
        let (outputs, notice) = p.outputs(&subject, &records);
        assert!(outputs.finalizer, "{}", row.case);
        let status = outputs.annotations.get(STATUS).cloned().unwrap_or_default();
        assert!(
            status.starts_with(&row.status_after),
            "{}: {status}",
            row.case
        );
        assert_eq!((notice.kind, notice.reason), row.event, "{}", row.case);
        match row.event.1 {
            "Allocated" => assert_eq!(notice.note, "listeners: game 7777/UDP -> nlb.elb:7005"),
            "NetworkDisabled" => assert_eq!(
                notice.note,
                "targets taken out (nlb.port-manager/network-disabled is \"true\"); \
                 listeners: game 7777/UDP -> nlb.elb:7005"
            ),
            _ => {}
        }
        assert_eq!(
            outputs.annotations.get(TARGET).map(String::as_str),
            row.target,
            "{}",
            row.case
        );
        assert_eq!(records[0].port, 7005);
        assert_eq!(records[0].nlb_arn, arn(0));
    }
}

fn service() -> ServiceState {
    ServiceState {
        created: None,
        key: owner().key,
        uid: "u".into(),
        resource_version: "1".into(),
        deleting: false,
        finalizers: vec![],
        annotations: Default::default(),
        ports: vec![],
        external_name: false,
        selector: Default::default(),
        pod: None,
    }
}

#[test]
fn only_a_subject_this_system_touched_may_hold_claims() {
    let untouched = service();
    let mut finalized = service();
    finalized.finalizers.push(FINALIZER.into());
    let mut advertised = service();
    advertised
        .annotations
        .insert(STATUS.into(), "Pending: full".into());
    let mut pod = service();
    pod.pod = Some(PodSubject {
        name: "a".into(),
        uid: "pu".into(),
        replaces: None,
    });
    let rows = [
        ("a Service never touched", untouched, false),
        ("a Service holding the finalizer", finalized, true),
        ("a Service carrying outputs", advertised, true),
        ("a pod, whatever it carries", pod, true),
    ];
    for (case, subject, want) in rows {
        assert_eq!(may_hold_claims(&subject), want, "{case}");
    }
}

#[test]
fn what_each_listener_is_made_from_is_noted_on_its_claim_in_port_order() {
    // GIVEN a Service of two listeners, whose claims come back voice first
    let (owner, pool, plain) = (owner(), pool(&[0], ""), request(&[]));
    let specs = [game(), voice()];
    let p = plan(&owner, &pool, None, &plain, &specs, &[], vec![]);
    let (g, v) = (claim(7777, 0, 7000, "p"), claim(9000, 0, 7001, "p"));
    // WHEN both are made, or only voice
    let both = p.made(&[v.clone(), g.clone()]);
    let one = p.made(std::slice::from_ref(&v));
    // THEN each claim carries its own listener's fingerprint, in the order of the ports
    let want = |c: &Claim, i: usize| (c.clone(), p.listeners[i].made_from.clone());
    assert_eq!(both, vec![want(&g, 0), want(&v, 1)]);
    assert_eq!(one, vec![want(&v, 1)]);
}
