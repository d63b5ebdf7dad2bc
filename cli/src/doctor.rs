//! `doctor`: what the sweep would find, read-only: listeners and target groups no claim
//! accounts for, claims whose Service or listener is gone, Services stuck terminating, a
//! claims table that is not this cluster's and stack's, NLBs that are gone, dead letters.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::snapshot::{DeepSnapshot, Snapshot};

/// How long a Service may be terminating before `doctor` calls it stuck: the functions'
/// claim grace (120 s), after which the sweep retries the release.
pub const STUCK_AFTER_SECONDS: i64 = 120;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to do.
    Info,
    /// Something leaked, waits or is refused: look at it.
    Warning,
}

/// One thing found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// What kind, e.g. `listener-without-claim` (README, "The operator's view").
    pub kind: &'static str,
    /// What it is about: an ARN, `namespace/name`, the table.
    pub subject: String,
    /// What was seen, and what the sweep or the operator does about it.
    pub detail: String,
}

/// The `doctor` report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DoctorReport {
    /// The cluster.
    pub cluster: String,
    /// What was looked at.
    pub checked: Checked,
    /// What was found, warnings first.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// Whether any finding is a warning (the exit code says so).
    pub fn has_warnings(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Warning)
    }
}

/// Counts of what was looked at.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Checked {
    /// NLBs of the pools.
    pub nlbs: usize,
    /// Listeners on them.
    pub listeners: usize,
    /// Target groups of the project's prefix.
    pub target_groups: usize,
    /// Claimed ports (port items).
    pub claims: usize,
    /// Services.
    pub services: usize,
}

/// The report of `snapshot` (which must hold the deep read).
pub fn report(snapshot: &Snapshot) -> DoctorReport {
    let empty = DeepSnapshot::default();
    let deep = snapshot.deep.as_ref().unwrap_or(&empty);
    let mut findings = Vec::new();
    identity(snapshot, deep, &mut findings);
    nlbs_and_listeners(snapshot, deep, &mut findings);
    target_groups(deep, &mut findings);
    claims_without_services(snapshot, deep, &mut findings);
    stuck_terminating(snapshot, &mut findings);
    if let Some(n) = deep.dead_letters.filter(|n| *n > 0) {
        findings.push(Finding {
            severity: Severity::Warning,
            kind: "dead-letters",
            subject: "dead-letter queue".into(),
            detail: format!(
                "{n} event(s) failed three times; each names its Service and the error \
                 (docs/deploy.md, Alarms: DeadLetterAlarm)"
            ),
        });
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(b.kind)));
    DoctorReport {
        cluster: snapshot.cluster.clone(),
        checked: Checked {
            nlbs: snapshot.pools.iter().map(|p| p.nlbs.len()).sum(),
            listeners: deep.listeners.values().map(Vec::len).sum(),
            target_groups: deep.target_groups.len(),
            claims: deep.holders.values().map(Vec::len).sum(),
            services: snapshot.services.len(),
        },
        findings,
    }
}

fn identity(snapshot: &Snapshot, deep: &DeepSnapshot, findings: &mut Vec<Finding>) {
    let Some(id) = &deep.identity else {
        findings.push(Finding {
            severity: Severity::Info,
            kind: "identity-missing",
            subject: "claims table".into(),
            detail: "the table records no cluster yet: the first allocation records it".into(),
        });
        return;
    };
    let mut wrong = Vec::new();
    if id.cluster_name != snapshot.cluster {
        wrong.push(format!(
            "cluster {} (this is {})",
            id.cluster_name, snapshot.cluster
        ));
    }
    if let Some(uid) = &deep.kube_system_uid
        && *uid != id.cluster_uid
    {
        wrong.push(format!(
            "kube-system uid {} (this cluster's is {uid}: rebuilt under its name?)",
            id.cluster_uid
        ));
    }
    if let Some(stack) = &deep.stack_id
        && *stack != id.stack_id
    {
        wrong.push(format!("stack {} (given {stack})", id.stack_id));
    }
    if !wrong.is_empty() {
        findings.push(Finding {
            severity: Severity::Warning,
            kind: "identity-mismatch",
            subject: "claims table".into(),
            detail: format!(
                "the table records {}; the sweep deletes nothing and allocate refuses it \
                 (docs/deploy.md section 12)",
                wrong.join(", ")
            ),
        });
    }
}

fn nlbs_and_listeners(snapshot: &Snapshot, deep: &DeepSnapshot, findings: &mut Vec<Finding>) {
    for nlb in snapshot.pools.iter().flat_map(|p| &p.nlbs) {
        if nlb.dns.is_none() {
            findings.push(Finding {
                severity: Severity::Warning,
                kind: "nlb-missing",
                subject: nlb.arn.clone(),
                detail: format!(
                    "NLB {} is in the pools but ELBv2 does not know it; the sweep moves its \
                     {} Service port(s) to the rest of the pool (remove it from POOLS)",
                    nlb.name, nlb.claimed
                ),
            });
            continue;
        }
        let listeners = deep
            .listeners
            .get(&nlb.arn)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let holders = deep.holders.get(&nlb.arn).map(Vec::as_slice).unwrap_or(&[]);
        for l in listeners.iter().filter(|l| l.ours) {
            // The holder of its port, forwarding to the holder's target group.
            let accounted = holders.iter().any(|h| {
                h.port == l.port && Some(h.target_group_name.as_str()) == l.target_group_name()
            });
            if !accounted {
                findings.push(Finding {
                    severity: Severity::Warning,
                    kind: "listener-without-claim",
                    subject: l.arn.clone(),
                    detail: format!(
                        "port {} of {} is tagged as this cluster's but no claim holds it with \
                         this listener; the sweep deletes it",
                        l.port, nlb.name
                    ),
                });
            }
        }
        for h in holders {
            let waited = snapshot.taken_at - h.claimed_at;
            // A claim younger than the grace may be a run making its listener right now.
            if waited > STUCK_AFTER_SECONDS && !listeners.iter().any(|l| l.port == h.port) {
                findings.push(Finding {
                    severity: Severity::Warning,
                    kind: "claim-without-listener",
                    subject: format!("{} port {}", nlb.name, h.port),
                    detail: format!(
                        "{} has held port {} for {waited} s and no listener is on it; the \
                         sweep makes it again",
                        h.service, h.port
                    ),
                });
            }
        }
    }
}

fn target_groups(deep: &DeepSnapshot, findings: &mut Vec<Finding>) {
    let used: BTreeSet<&str> = deep
        .holders
        .values()
        .flatten()
        .map(|h| h.target_group_name.as_str())
        .chain(
            deep.listeners
                .values()
                .flatten()
                .filter_map(|l| l.target_group_name()),
        )
        .collect();
    for tg in deep.target_groups.iter().filter(|t| t.ours) {
        if !used.contains(tg.name.as_str()) {
            findings.push(Finding {
                severity: Severity::Warning,
                kind: "target-group-without-claim",
                subject: tg.arn.clone(),
                detail: format!(
                    "target group {} is tagged as this cluster's but no claim or listener uses \
                     it; the sweep deletes it",
                    tg.name
                ),
            });
        }
    }
}

fn claims_without_services(snapshot: &Snapshot, deep: &DeepSnapshot, findings: &mut Vec<Finding>) {
    let live: BTreeSet<&str> = snapshot.services.iter().map(|s| s.uid.as_str()).collect();
    let mut seen = BTreeSet::new();
    for holder in deep.holders.values().flatten() {
        if live.contains(holder.uid.as_str()) || !seen.insert(holder.uid.as_str()) {
            continue;
        }
        let ports = deep
            .holders
            .values()
            .flatten()
            .filter(|h| h.uid == holder.uid)
            .count();
        findings.push(Finding {
            severity: Severity::Warning,
            kind: "claim-without-service",
            subject: holder.service.clone(),
            detail: format!(
                "{ports} claim(s) of Service uid {} (claimed {} s ago), which no longer exists; \
                 the sweep releases them once older than the grace",
                holder.uid,
                (snapshot.taken_at - holder.claimed_at).max(0)
            ),
        });
    }
}

fn stuck_terminating(snapshot: &Snapshot, findings: &mut Vec<Finding>) {
    for s in &snapshot.services {
        let Some(since) = s.deleting_since.filter(|_| s.finalizer) else {
            continue;
        };
        let for_seconds = snapshot.taken_at - since;
        if for_seconds > STUCK_AFTER_SECONDS {
            findings.push(Finding {
                severity: Severity::Warning,
                kind: "stuck-terminating",
                subject: format!("{}/{}", s.namespace, s.name),
                detail: format!(
                    "deleted {for_seconds} s ago and still held by the finalizer \
                     nlb.port-manager/release: read the release function's log; the sweep \
                     retries the release"
                ),
            });
        }
    }
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;
