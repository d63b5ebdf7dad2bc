//! The plan alone: plain data in, plain data out, no double. Each table row is a decision the
//! reconcile tests (tests.rs, per_pod_tests.rs, options_tests.rs) make through the doubles.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::*;
use crate::contract::annotations::{ALLOCATIONS, FINALIZER, STATUS, TARGET};
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::{ListenerKey, PodSubject, ServicePortSpec, TargetPort};
use crate::model::claims::ClaimState;
use crate::model::pool::PoolSet;
use crate::model::targets::{PodEndpoint, SlicePort, without_targets};

#[path = "plan_outputs_tests.rs"]
mod outputs;

fn arn(i: usize) -> String {
    format!("arn:aws:elasticloadbalancing:r:1:loadbalancer/net/n{i}/1")
}

/// Pool `p` with `nlbs` of NLBs `0..3`, ports `7000-7009` unless `extra` says otherwise.
fn pool(nlbs: &[usize], extra: &str) -> NlbPool {
    let arns: Vec<String> = nlbs.iter().map(|i| format!("\"{}\"", arn(*i))).collect();
    let ports = if extra.contains("\"ports\"") {
        String::new()
    } else {
        "\"ports\":\"7000-7009\",".to_owned()
    };
    let json = format!(
        r#"{{"p":{{{ports}"nlbArns":[{}]{extra}}}}}"#,
        arns.join(",")
    );
    PoolSet::from_json(&json)
        .expect("pool")
        .get("p")
        .expect("p")
        .clone()
}

fn spec(name: &str, port: u16, target: TargetPort) -> ListenerSpec {
    ListenerSpec {
        key: ListenerKey::new(port, ListenerProtocol::Udp),
        name: name.into(),
        service_port: port,
        protocol: ListenerProtocol::Udp,
        ports: vec![ServicePortSpec {
            name: Some(name.into()),
            port,
            protocol: "UDP".into(),
            target_port: target,
        }],
    }
}

fn game() -> ListenerSpec {
    spec("game", 7777, TargetPort::Number(7777))
}

fn voice() -> ListenerSpec {
    spec("voice", 9000, TargetPort::Number(9000))
}

fn owner() -> Owner {
    Owner {
        key: ServiceKey {
            cluster: "c".into(),
            namespace: "n".into(),
            name: "s".into(),
        },
        uid: "u".into(),
        pod: None,
    }
}

fn request(pairs: &[(&str, &str)]) -> AllocationRequest {
    let annotations = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    annotations::parse_request(&annotations).expect("valid")
}

/// A claim of listener `service_port`/UDP on NLB `nlb`, port `port`, in pool `pool`.
fn claim(service_port: u16, nlb: usize, port: u16, pool: &str) -> Claim {
    Claim {
        owner: owner(),
        key: ListenerKey::new(service_port, ListenerProtocol::Udp),
        port_name: "p".into(),
        protocol: ListenerProtocol::Udp,
        service_port,
        pool: pool.into(),
        nlb_arn: arn(nlb),
        port,
        state: ClaimState::Active,
        listener_arn: None,
        target_group_arn: None,
        claimed_at: 0,
        token: "t".into(),
        held_at: 0,
        gone_since: None,
        applied: None,
        claim_key: None,
    }
}

fn slice(ready: &[&str], ports: &[(&str, u16)], pods: &[(&str, &str, bool)]) -> SliceView {
    let ip = |s: &str| s.parse::<Ipv4Addr>().expect("an IP");
    SliceView {
        name: "s-1".into(),
        managed_by: None,
        ports: ports
            .iter()
            .map(|(n, p)| SlicePort {
                name: Some((*n).into()),
                port: Some(*p),
            })
            .collect(),
        ready: ready.iter().map(|s| ip(s)).collect(),
        pods: pods
            .iter()
            .map(|(pod, addr, ready)| PodEndpoint {
                pod: (*pod).into(),
                ip: ip(addr),
                ready: *ready,
            })
            .collect(),
    }
}

fn plan<'a>(
    owner: &'a Owner,
    pool: &'a NlbPool,
    only: Option<&'a str>,
    request: &'a AllocationRequest,
    specs: &'a [ListenerSpec],
    slices: &'a [SliceView],
    claims: Vec<Claim>,
) -> Plan<'a> {
    let asked = Asked {
        owner,
        pool,
        only,
        request,
        specs,
        slices,
        vpc_id: "vpc-1",
        disabled: request.network_disabled,
    };
    Plan::new(&asked, claims)
}

#[test]
fn claims_are_kept_dropped_or_missing_as_the_pool_and_service_are_now() {
    struct Row {
        case: &'static str,
        nlbs: &'static [usize],
        extra: &'static str,
        /// The index of the NLB the Service names, if it names one.
        only: Option<usize>,
        specs: Vec<ListenerSpec>,
        /// (listener's service port, NLB, port, pool)
        held: Vec<(u16, usize, u16, &'static str)>,
        keep: Vec<u16>,
        drop: Vec<u16>,
        missing: Vec<&'static str>,
    }
    let rows = [
        Row {
            case: "nothing held: every listener is claimed",
            nlbs: &[0, 1],
            extra: "",
            only: None,
            specs: vec![game(), voice()],
            held: vec![],
            keep: vec![],
            drop: vec![],
            missing: vec!["game", "voice"],
        },
        Row {
            case: "claims within the pool are kept: nothing to claim",
            nlbs: &[0, 1],
            extra: "",
            only: None,
            specs: vec![game(), voice()],
            held: vec![(7777, 0, 7000, "p"), (9000, 1, 7001, "p")],
            keep: vec![7000, 7001],
            drop: vec![],
            missing: vec![],
        },
        Row {
            case: "one of two held: the other is claimed",
            nlbs: &[0, 1],
            extra: "",
            only: None,
            specs: vec![game(), voice()],
            held: vec![(7777, 1, 7003, "p")],
            keep: vec![7003],
            drop: vec![],
            missing: vec!["voice"],
        },
        Row {
            case: "the range shrank: a port outside it moves",
            nlbs: &[0, 1],
            extra: r#","ports":"7000-7004""#,
            only: None,
            specs: vec![game(), voice()],
            held: vec![(7777, 0, 7008, "p"), (9000, 0, 7001, "p")],
            keep: vec![7001],
            drop: vec![7008],
            missing: vec!["game"],
        },
        Row {
            case: "a port the pool now blocks moves",
            nlbs: &[0, 1],
            extra: r#","blockedPorts":["7002"]"#,
            only: None,
            specs: vec![game()],
            held: vec![(7777, 0, 7002, "p")],
            keep: vec![],
            drop: vec![7002],
            missing: vec!["game"],
        },
        Row {
            case: "an NLB taken out of the pool: its claims move",
            nlbs: &[0],
            extra: "",
            only: None,
            specs: vec![game(), voice()],
            held: vec![(7777, 1, 7000, "p"), (9000, 0, 7000, "p")],
            keep: vec![7000],
            drop: vec![7000],
            missing: vec!["game"],
        },
        Row {
            case: "a claim in another pool (the Service switched pools) moves",
            nlbs: &[0, 1],
            extra: "",
            only: None,
            specs: vec![game()],
            held: vec![(7777, 0, 7000, "other")],
            keep: vec![],
            drop: vec![7000],
            missing: vec!["game"],
        },
        Row {
            case: "a port the Service dropped is released, nothing claimed for it",
            nlbs: &[0, 1],
            extra: "",
            only: None,
            specs: vec![game()],
            held: vec![(7777, 0, 7000, "p"), (9000, 0, 7001, "p")],
            keep: vec![7000],
            drop: vec![7001],
            missing: vec![],
        },
        Row {
            case: "a named NLB: claims on another NLB of the pool move to it",
            nlbs: &[0, 1],
            extra: "",
            only: Some(1),
            specs: vec![game(), voice()],
            held: vec![(7777, 0, 7000, "p"), (9000, 1, 7001, "p")],
            keep: vec![7001],
            drop: vec![7000],
            missing: vec!["game"],
        },
        Row {
            case: "a port added to the Service: only it is claimed",
            nlbs: &[0, 1],
            extra: "",
            only: None,
            specs: vec![game(), voice()],
            held: vec![(7777, 0, 7000, "p")],
            keep: vec![7000],
            drop: vec![],
            missing: vec!["voice"],
        },
    ];
    let owner = owner();
    let plain = request(&[]);
    for row in rows {
        let pool = pool(row.nlbs, row.extra);
        let only = row.only.map(arn);
        let held = row
            .held
            .iter()
            .map(|(sp, nlb, port, pool)| claim(*sp, *nlb, *port, pool))
            .collect();
        let p = plan(
            &owner,
            &pool,
            only.as_deref(),
            &plain,
            &row.specs,
            &[],
            held,
        );
        let ports = |claims: &[Claim]| claims.iter().map(|c| c.port).collect::<Vec<_>>();
        assert_eq!(ports(&p.keep), row.keep, "{}: kept", row.case);
        assert_eq!(ports(&p.drop), row.drop, "{}: dropped", row.case);
        let missing: Vec<&str> = p.missing.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(missing, row.missing, "{}: missing", row.case);
        assert_eq!(p.listeners.len(), row.specs.len(), "{}", row.case);
    }
}

#[test]
fn targets_and_target_group_ports_follow_the_endpoints() {
    struct Row {
        case: &'static str,
        spec: ListenerSpec,
        slices: Vec<SliceView>,
        /// (pod, whether its not-ready endpoint counts) when the plan is one pod's.
        pod: Option<(&'static str, bool)>,
        targets: Result<Vec<(&'static str, u16)>, &'static str>,
        group_port: u16,
    }
    let named = || spec("game", 7777, TargetPort::Name("gameport".into()));
    let rows = [
        Row {
            case: "no endpoints: no targets, the group on the numeric target port",
            spec: spec("game", 7777, TargetPort::Number(7000)),
            slices: vec![],
            pod: None,
            targets: Ok(vec![]),
            group_port: 7000,
        },
        Row {
            case: "a named target port, no endpoints: the group on the Service port",
            spec: named(),
            slices: vec![],
            pod: None,
            targets: Ok(vec![]),
            group_port: 7777,
        },
        Row {
            case: "ready endpoints are the targets, at the port the slice resolves",
            spec: named(),
            slices: vec![slice(&["10.0.0.1", "10.0.0.2"], &[("game", 8000)], &[])],
            pod: None,
            targets: Ok(vec![("10.0.0.1", 8000), ("10.0.0.2", 8000)]),
            group_port: 8000,
        },
        Row {
            case: "not-ready and terminating endpoints are no targets",
            spec: game(),
            slices: vec![slice(
                &["10.0.0.1"],
                &[],
                &[("a", "10.0.0.1", true), ("b", "10.0.0.2", false)],
            )],
            pod: None,
            targets: Ok(vec![("10.0.0.1", 7777)]),
            group_port: 7777,
        },
        Row {
            case: "a named port no endpoint resolves: an error, the group on the Service port",
            spec: named(),
            slices: vec![slice(&["10.0.0.1"], &[("other", 8000)], &[])],
            pod: None,
            targets: Err("not resolved"),
            group_port: 7777,
        },
        Row {
            case: "per pod: only the pod's own endpoint",
            spec: game(),
            slices: vec![slice(
                &["10.0.0.1", "10.0.0.2"],
                &[],
                &[("a", "10.0.0.1", true), ("b", "10.0.0.2", true)],
            )],
            pod: Some(("b", false)),
            targets: Ok(vec![("10.0.0.2", 7777)]),
            group_port: 7777,
        },
        Row {
            case: "per pod: a pod not ready has no target",
            spec: game(),
            slices: vec![slice(&[], &[], &[("a", "10.0.0.1", false)])],
            pod: Some(("a", false)),
            targets: Ok(vec![]),
            group_port: 7777,
        },
        Row {
            case: "per pod: a gated pod whose containers are ready gets its target",
            spec: game(),
            slices: vec![slice(&[], &[], &[("a", "10.0.0.1", false)])],
            pod: Some(("a", true)),
            targets: Ok(vec![("10.0.0.1", 7777)]),
            group_port: 7777,
        },
    ];
    let (owner, pool, plain) = (owner(), pool(&[0], ""), request(&[]));
    for row in rows {
        let slices: Vec<SliceView> = match row.pod {
            Some((pod, not_ready_too)) => row
                .slices
                .iter()
                .map(|s| s.only_pod(pod, not_ready_too))
                .collect(),
            None => row.slices.clone(),
        };
        let specs = [row.spec.clone()];
        let p = plan(&owner, &pool, None, &plain, &specs, &slices, vec![]);
        let listener = &p.listeners[0];
        match (&listener.targets, &row.targets) {
            (Ok(got), Ok(want)) => {
                let want: BTreeSet<Target> = want
                    .iter()
                    .map(|(ip, port)| Target {
                        ip: ip.parse().expect("an IP"),
                        port: *port,
                    })
                    .collect();
                assert_eq!(got, &want, "{}", row.case);
                assert_eq!(p.targets_of(&row.spec.key), want, "{}", row.case);
            }
            (Err(got), Err(want)) => assert!(got.contains(want), "{}: {got}", row.case),
            (got, want) => panic!("{}: {got:?}, wanted {want:?}", row.case),
        }
        assert_eq!(listener.group.port, row.group_port, "{}", row.case);
        assert_eq!(
            listener.made_from,
            listener_fingerprint("p", &plain, &row.spec, &listener.targets),
            "{}",
            row.case
        );
    }
}
