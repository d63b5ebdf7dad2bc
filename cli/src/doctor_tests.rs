use super::*;
use crate::snapshot::{
    HolderView, IdentityView, ListenerView, NlbSnapshot, PoolSnapshot, ServiceView, TargetGroupView,
};

const NLB: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/games-a/0";
const GONE: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/games-b/0";
const NOW: i64 = 10_000;

fn tg_arn(name: &str) -> String {
    format!("arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/{name}/0")
}

fn listener(arn: &str, port: u16, ours: bool, tg: Option<&str>) -> ListenerView {
    ListenerView {
        arn: arn.into(),
        port,
        ours,
        target_group: tg.map(tg_arn),
    }
}

fn holder(port: u16, uid: &str, service: &str, tg: &str, claimed_at: i64) -> HolderView {
    HolderView {
        port,
        uid: uid.into(),
        service: service.into(),
        target_group_name: tg.into(),
        claimed_at,
    }
}

fn group(name: &str, ours: bool) -> TargetGroupView {
    TargetGroupView {
        arn: tg_arn(name),
        name: name.into(),
        ours,
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
            listener("l1", 30000, true, Some("npp-room")),
            // A listener somebody made by hand: not the project's business.
            listener("hand", 80, false, Some("theirs")),
        ],
    );
    deep.holders.insert(
        NLB.into(),
        vec![holder(30000, "u1", "games/room", "npp-room", 0)],
    );
    deep.target_groups = vec![group("npp-room", true)];
    Snapshot {
        taken_at: NOW,
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
    let on_nlb = deep.listeners.get_mut(NLB).expect("listeners");
    // A listener of ours on a port nobody holds; one on a held port forwarding elsewhere.
    on_nlb.push(listener("leaked", 30001, true, Some("npp-leaked")));
    on_nlb.push(listener("stray", 30000, true, Some("npp-stray")));
    let holders = deep.holders.get_mut(NLB).expect("holders");
    // A claim whose listener is gone, held long; one just made (its run is making it).
    holders.push(holder(30003, "u1", "games/room", "npp-room-b", NOW - 500));
    holders.push(holder(30004, "u1", "games/room", "npp-room-c", NOW - 5));
    // Claims of a Service that is gone.
    holders.push(holder(30010, "u-gone", "games/gone", "npp-gone", 9_000));
    // A target group of ours nobody uses, one of another cluster, and claimed ones.
    deep.target_groups.push(group("npp-orphan", true));
    deep.target_groups.push(group("npp-other", false));
    deep.target_groups.push(group("npp-room-c", true));
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
        deleting_since: Some(NOW - STUCK_AFTER_SECONDS - 1),
        ..service("stuck", "u2")
    });
    world.services.push(ServiceView {
        deleting_since: Some(NOW - 10),
        ..service("leaving", "u3")
    });

    let report = report(&world);
    assert_eq!(
        kinds(&report),
        [
            ("claim-without-listener", "games-a port 30003"),
            ("claim-without-listener", "games-a port 30010"),
            ("claim-without-service", "games/gone"),
            ("dead-letters", "dead-letter queue"),
            ("listener-without-claim", "leaked"),
            ("listener-without-claim", "stray"),
            ("nlb-missing", GONE),
            ("stuck-terminating", "games/stuck"),
            ("target-group-without-claim", &tg_arn("npp-orphan")),
        ]
    );
    assert!(report.has_warnings());
    let gone = &report.findings[2];
    assert!(gone.detail.contains("1000 s ago"), "{gone:?}");
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
