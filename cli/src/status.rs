//! `status`: each pool and NLB (state, listeners used of the quota, free ports) and the
//! Services and pods that are Pending or in Error, with their reasons and ages.

use serde::Serialize;

use crate::snapshot::{NlbSnapshot, PoolSnapshot, Snapshot};

/// The `status` report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusReport {
    /// The cluster.
    pub cluster: String,
    /// Per pool.
    pub pools: Vec<PoolStatus>,
    /// How many Services (and per-pod pods) are in each state.
    pub counts: Counts,
    /// Pending and Error Services and pods, the longest waiting first.
    pub problems: Vec<Problem>,
}

/// One pool's use.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolStatus {
    /// Its name.
    pub name: String,
    /// `fixed` or `managed`.
    pub kind: &'static str,
    /// Its placement.
    pub placement: String,
    /// Its port range.
    pub ports: String,
    /// Listeners it can hold: per NLB, the quota or the usable ports if fewer.
    pub capacity: usize,
    /// Listeners claimed.
    pub used: usize,
    /// Listeners it can still take (NLBs that take claims only).
    pub free: usize,
    /// Services waiting for its managed NLBs.
    pub waiting: usize,
    /// Per NLB.
    pub nlbs: Vec<NlbStatus>,
}

/// One NLB's use.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NlbStatus {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its DNS name.
    pub dns: Option<String>,
    /// `pre-made`, or a made NLB's state; `missing` when ELBv2 does not know it.
    pub state: String,
    /// Ports claimed.
    pub claimed: usize,
    /// Every listener on it, the project's or not.
    pub listeners: usize,
    /// Listeners per NLB.
    pub quota: u32,
    /// Listeners it can still take.
    pub free: usize,
}

/// How many Services (and, apart, per-pod pods) are in each state.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    /// Opted-in Services.
    pub services: StateCounts,
    /// Pods of per-pod Services.
    pub pods: StateCounts,
}

/// Counts by `nlb.port-manager/status`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StateCounts {
    /// All of them.
    pub total: usize,
    /// `Allocated` (listeners made, no healthy target yet).
    pub allocated: usize,
    /// `Ready`.
    pub ready: usize,
    /// `Disabled` (taken out of its listeners by `nlb.port-manager/network-disabled`).
    pub disabled: usize,
    /// `Pending: ...`.
    pub pending: usize,
    /// `Error: ...`.
    pub error: usize,
    /// No status yet.
    pub unseen: usize,
}

/// A Service or pod that is Pending or in Error.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    /// `service` or `pod`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `Pending` or `Error`.
    pub state: &'static str,
    /// The status's reason.
    pub reason: String,
    /// Seconds since it was created.
    pub age_seconds: i64,
}

/// The report of `snapshot`.
pub fn report(snapshot: &Snapshot) -> StatusReport {
    let mut counts = Counts::default();
    let mut problems = Vec::new();
    let services = snapshot
        .services
        .iter()
        .filter(|s| s.opted_in)
        .map(|s| ("service", &s.namespace, &s.name, &s.status, s.created));
    let pods = snapshot
        .pods
        .iter()
        .map(|p| ("pod", &p.namespace, &p.name, &p.status, p.created));
    for (kind, namespace, name, status, created) in services.chain(pods) {
        let counts = match kind {
            "service" => &mut counts.services,
            _ => &mut counts.pods,
        };
        counts.total += 1;
        let status = status.as_deref().unwrap_or_default();
        let problem = |state: &'static str, reason: &str| Problem {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
            state,
            reason: reason.trim().to_owned(),
            age_seconds: (snapshot.taken_at - created).max(0),
        };
        if let Some(reason) = status.strip_prefix("Pending:") {
            counts.pending += 1;
            problems.push(problem("Pending", reason));
        } else if let Some(reason) = status.strip_prefix("Error:") {
            counts.error += 1;
            problems.push(problem("Error", reason));
        } else if status == "Ready" {
            counts.ready += 1;
        } else if status == "Allocated" {
            counts.allocated += 1;
        } else if status == "Disabled" {
            counts.disabled += 1;
        } else {
            counts.unseen += 1;
        }
    }
    problems.sort_by(|a, b| b.age_seconds.cmp(&a.age_seconds).then(a.name.cmp(&b.name)));
    StatusReport {
        cluster: snapshot.cluster.clone(),
        pools: snapshot.pools.iter().map(pool_status).collect(),
        counts,
        problems,
    }
}

fn pool_status(pool: &PoolSnapshot) -> PoolStatus {
    let per_nlb = (pool.quota as usize).min(pool.usable_ports as usize);
    let nlbs: Vec<NlbStatus> = pool.nlbs.iter().map(|n| nlb_status(pool, n)).collect();
    PoolStatus {
        name: pool.name.clone(),
        kind: if pool.managed { "managed" } else { "fixed" },
        placement: pool.placement.clone(),
        ports: pool.ports.clone(),
        capacity: per_nlb * nlbs.len(),
        used: nlbs.iter().map(|n| n.claimed).sum(),
        free: nlbs.iter().map(|n| n.free).sum(),
        waiting: pool.waiting,
        nlbs,
    }
}

fn nlb_status(pool: &PoolSnapshot, nlb: &NlbSnapshot) -> NlbStatus {
    let state = match (&nlb.dns, &nlb.state) {
        (None, _) => "missing".to_owned(),
        (Some(_), Some(state)) => state.clone(),
        (Some(_), None) if nlb.made => "unrecorded".to_owned(),
        (Some(_), None) => "pre-made".to_owned(),
    };
    let takes_claims = matches!(state.as_str(), "pre-made" | "active");
    let listeners = nlb.listeners.unwrap_or(0);
    // Every listener counts against the quota, whoever made it; a claimed port whose listener
    // is not made yet counts too.
    let taken = listeners.max(nlb.claimed);
    let free = if takes_claims {
        (pool.quota as usize)
            .saturating_sub(taken)
            .min((pool.usable_ports as usize).saturating_sub(nlb.claimed))
    } else {
        0
    };
    NlbStatus {
        name: nlb.name.clone(),
        arn: nlb.arn.clone(),
        dns: nlb.dns.clone(),
        state,
        claimed: nlb.claimed,
        listeners,
        quota: pool.quota,
        free,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{PodView, ServiceView};

    fn nlb(
        name: &str,
        claimed: usize,
        listeners: Option<usize>,
        made: Option<&str>,
    ) -> NlbSnapshot {
        NlbSnapshot {
            arn: format!("arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/{name}/0"),
            name: name.into(),
            dns: listeners.map(|_| format!("{name}.elb.example")),
            made: made.is_some(),
            state: made.map(str::to_owned),
            claimed,
            listeners,
        }
    }

    fn service(name: &str, status: Option<&str>, created: i64) -> ServiceView {
        ServiceView {
            namespace: "games".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            created,
            opted_in: true,
            status: status.map(str::to_owned),
            ..ServiceView::default()
        }
    }

    #[test]
    fn counts_free_listeners_per_nlb_and_lists_problems_oldest_first() {
        let snapshot = Snapshot {
            taken_at: 1_000,
            cluster: "c".into(),
            pools: vec![PoolSnapshot {
                name: "default".into(),
                managed: true,
                placement: "balanced".into(),
                ports: "30000-30099".into(),
                usable_ports: 100,
                quota: 50,
                nlbs: vec![
                    // 10 claimed, 2 foreign listeners besides: 38 free.
                    nlb("a", 10, Some(12), None),
                    // Gone from ELBv2: nothing free.
                    nlb("b", 3, None, None),
                    // Made and draining: takes no claims.
                    nlb("npp-default-1", 0, Some(0), Some("draining")),
                    nlb("npp-default-2", 1, Some(1), Some("active")),
                ],
                waiting: 2,
            }],
            services: vec![
                service("ok", Some("Ready"), 10),
                service("new", Some("Allocated"), 900),
                service("drained", Some("Disabled"), 50),
                service(
                    "late",
                    Some("Pending: pool default has no NLB with room"),
                    100,
                ),
                service(
                    "bad",
                    Some("Error: annotation nlb.port-manager/mode: x"),
                    400,
                ),
                service("unseen", None, 990),
                ServiceView {
                    opted_in: false,
                    ..service("out", Some("Ready"), 0)
                },
            ],
            pods: vec![PodView {
                namespace: "games".into(),
                name: "fleet-0".into(),
                service: "fleet".into(),
                created: 0,
                status: Some("Pending: no port".into()),
                address: None,
            }],
            deep: None,
        };
        let report = report(&snapshot);
        let pool = &report.pools[0];
        let states: Vec<&str> = pool.nlbs.iter().map(|n| n.state.as_str()).collect();
        assert_eq!(states, ["pre-made", "missing", "draining", "active"]);
        let free: Vec<usize> = pool.nlbs.iter().map(|n| n.free).collect();
        assert_eq!(free, [38, 0, 0, 49]);
        assert_eq!((pool.capacity, pool.used, pool.free), (200, 14, 87));
        assert_eq!((pool.kind, pool.waiting), ("managed", 2));
        assert_eq!(
            report.counts.services,
            StateCounts {
                total: 6,
                allocated: 1,
                ready: 1,
                disabled: 1,
                pending: 1,
                error: 1,
                unseen: 1,
            }
        );
        assert_eq!(
            report.counts.pods,
            StateCounts {
                total: 1,
                pending: 1,
                ..StateCounts::default()
            }
        );
        let problems: Vec<(&str, &str, i64)> = report
            .problems
            .iter()
            .map(|p| (p.name.as_str(), p.state, p.age_seconds))
            .collect();
        assert_eq!(
            problems,
            [
                ("fleet-0", "Pending", 1000),
                ("late", "Pending", 900),
                ("bad", "Error", 600)
            ]
        );
        assert_eq!(
            report.problems[1].reason,
            "pool default has no NLB with room"
        );
    }

    #[test]
    fn a_range_smaller_than_the_quota_bounds_what_an_nlb_takes() {
        let snapshot = Snapshot {
            pools: vec![PoolSnapshot {
                usable_ports: 5,
                quota: 50,
                nlbs: vec![nlb("a", 2, Some(2), None), nlb("b", 0, Some(0), None)],
                ..PoolSnapshot::default()
            }],
            ..Snapshot::default()
        };
        let pool = &report(&snapshot).pools[0];
        assert_eq!((pool.capacity, pool.used, pool.free), (10, 2, 8));
    }
}
