use super::*;
use crate::snapshot::{
    ClaimView, HolderView, IdentityView, ListenerView, NlbSnapshot, PoolSnapshot, ServiceView,
    TargetGroupView,
};

const NLB: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/games-a/0";
const GONE: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/games-b/0";

fn claim(uid_port: u16, listener: Option<&str>, tg: Option<&str>) -> ClaimView {
    ClaimView {
        key: "7777-tcp".into(),
        pod: None,
        nlb_arn: NLB.into(),
        port: uid_port,
        state: if listener.is_some() {
            "active"
        } else {
            "claimed"
        }
        .into(),
        listener_arn: listener.map(str::to_owned),
        target_group_arn: tg.map(str::to_owned),
        claimed_at: 0,
    }
}

fn listener(arn: &str, port: u16, ours: bool, tg: Option<&str>) -> ListenerView {
    ListenerView {
        arn: arn.into(),
        port,
        ours,
        target_group: tg.map(str::to_owned),
    }
}

fn service(name: &str, uid: &str) -> ServiceView {
    ServiceView {
        namespace: "games".into(),
        name: name.into(),
        uid: uid.into(),
        opted_in: true,
        finalizer: true,
        ..ServiceView::default()
    }
}

/// A healthy world: one Service, its claim, listener and target group, the table its own.
fn healthy() -> Snapshot {
    let mut deep = DeepSnapshot {
        identity: Some(IdentityView {
            cluster_name: "c".into(),
            cluster_uid: "ks".into(),
            stack_id: "stack".into(),
        }),
        kube_system_uid: Some("ks".into()),
        stack_id: Some("stack".into()),
        dead_letters: Some(0),
        ..DeepSnapshot::default()
    };
    deep.listeners.insert(
        NLB.into(),
        vec![
            listener("l1", 30000, true, Some("tg1")),
            // A listener somebody made by hand: not the project's business.
            listener("hand", 80, false, Some("theirs")),
        ],
    );
    deep.holders.insert(
        NLB.into(),
        vec![HolderView {
            port: 30000,
            uid: "u1".into(),
            service: "games/room".into(),
            claimed_at: 0,
        }],
    );
    deep.claims
        .insert("u1".into(), vec![claim(30000, Some("l1"), Some("tg1"))]);
    deep.target_groups = vec![TargetGroupView {
        arn: "tg1".into(),
        name: "npp-tg1".into(),
        ours: true,
    }];
    Snapshot {
        taken_at: 10_000,
        cluster: "c".into(),
        pools: vec![PoolSnapshot {
            name: "default".into(),
            nlbs: vec![NlbSnapshot {
                arn: NLB.into(),
                name: "games-a".into(),
                dns: Some("games-a.elb".into()),
                claimed: 1,
                listeners: Some(2),
                ..NlbSnapshot::default()
            }],
            ..PoolSnapshot::default()
        }],
        services: vec![service("room", "u1")],
        pods: vec![],
        deep: Some(deep),
    }
}

fn kinds(report: &DoctorReport) -> Vec<(&'static str, &str)> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.subject.as_str()))
        .collect()
}

#[test]
fn a_healthy_world_has_no_findings() {
    let report = report(&healthy());
    assert_eq!(kinds(&report), []);
    assert!(!report.has_warnings());
    assert_eq!(
        report.checked,
        Checked {
            nlbs: 1,
            listeners: 2,
            target_groups: 1,
            claims: 1,
            services: 1
        }
    );
}

#[test]
fn finds_leaks_orphans_stuck_services_missing_nlbs_and_dead_letters() {
    let mut world = healthy();
    let deep = world.deep.as_mut().expect("deep");
    // A listener of ours no claim names, and one whose claim is still being made (fine).
    let on_nlb = deep.listeners.get_mut(NLB).expect("listeners");
    on_nlb.push(listener("leaked", 30001, true, Some("tg-leaked")));
    on_nlb.push(listener("in-progress", 30002, true, None));
    deep.claims
        .get_mut("u1")
        .expect("claims")
        .push(claim(30002, None, None));
    // A claim whose listener is gone.
    deep.claims
        .get_mut("u1")
        .expect("claims")
        .push(claim(30003, Some("vanished"), Some("tg1")));
    // A target group of ours nobody uses, and one of another cluster.
    deep.target_groups.push(TargetGroupView {
        arn: "tg-orphan".into(),
        name: "npp-orphan".into(),
        ours: true,
    });
    deep.target_groups.push(TargetGroupView {
        arn: "tg-other".into(),
        name: "npp-other".into(),
        ours: false,
    });
    // Claims of a Service that is gone.
    deep.holders
        .get_mut(NLB)
        .expect("holders")
        .push(HolderView {
            port: 30010,
            uid: "u-gone".into(),
            service: "games/gone".into(),
            claimed_at: 9_000,
        });
    deep.dead_letters = Some(3);
    // An NLB of the pools that ELBv2 does not know.
    world.pools[0].nlbs.push(NlbSnapshot {
        arn: GONE.into(),
        name: "games-b".into(),
        claimed: 2,
        ..NlbSnapshot::default()
    });
    // A Service deleted long ago and one just now.
    world.services.push(ServiceView {
        deleting_since: Some(10_000 - STUCK_AFTER_SECONDS - 1),
        ..service("stuck", "u2")
    });
    world.services.push(ServiceView {
        deleting_since: Some(9_990),
        ..service("leaving", "u3")
    });

    let report = report(&world);
    assert_eq!(
        kinds(&report),
        [
            ("claim-without-listener", "vanished"),
            ("claim-without-service", "games/gone"),
            ("dead-letters", "dead-letter queue"),
            ("listener-without-claim", "leaked"),
            ("nlb-missing", GONE),
            ("stuck-terminating", "games/stuck"),
            ("target-group-without-claim", "tg-orphan"),
        ]
    );
    assert!(report.has_warnings());
    assert!(
        report.findings[1].detail.contains("1000 s ago"),
        "{:?}",
        report.findings[1]
    );
}

#[test]
fn a_table_of_another_cluster_or_stack_is_named() {
    let mut world = healthy();
    let deep = world.deep.as_mut().expect("deep");
    deep.kube_system_uid = Some("rebuilt".into());
    deep.stack_id = Some("other-stack".into());
    let report = report(&world);
    assert_eq!(kinds(&report), [("identity-mismatch", "claims table")]);
    let detail = &report.findings[0].detail;
    assert!(detail.contains("kube-system uid ks"), "{detail}");
    assert!(
        detail.contains("stack stack (given other-stack)"),
        "{detail}"
    );

    // No identity yet: only worth knowing.
    world.deep.as_mut().expect("deep").identity = None;
    let report = super::report(&world);
    assert_eq!(kinds(&report), [("identity-missing", "claims table")]);
    assert!(!report.has_warnings());
}
