//! CloudWatch metrics as embedded metric format (EMF) log lines: a function prints one JSON
//! object per line to stdout and CloudWatch Logs turns it into metrics, with no API call.

use serde_json::{Map, Value, json};

use crate::reconcile::{PoolReport, SweepReport};

/// The metrics namespace of the project.
pub const NAMESPACE: &str = "NlbPortPool";

/// One EMF line: `metrics` (name, unit, value) with `dimensions` (name, value).
pub fn emf_line(
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, &str, f64)],
) -> String {
    let mut root = Map::new();
    let dimension_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimension_names],
                "Metrics": definitions,
            }]
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), json!(v));
    }
    for (name, _, value) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

/// The lines a sweep run reports: pool use per pool, and what the run found and did.
pub fn sweep_lines(report: &SweepReport, timestamp_ms: i64) -> Vec<String> {
    let mut lines: Vec<String> = report
        .pools
        .iter()
        .map(|p| {
            emf_line(
                timestamp_ms,
                &[("Pool", &p.pool)],
                &[
                    ("PoolUsePercent", "Percent", p.percent()),
                    ("ListenersUsed", "Count", p.used as f64),
                    ("ListenerCapacity", "Count", p.capacity as f64),
                ],
            )
        })
        .collect();
    lines.push(emf_line(
        timestamp_ms,
        &[("Function", "sweep")],
        &[
            (
                "OrphanClaimsReleased",
                "Count",
                report.orphan_claims_released as f64,
            ),
            (
                "LeakedListenersDeleted",
                "Count",
                report.leaked_listeners_deleted as f64,
            ),
            (
                "LeakedTargetGroupsDeleted",
                "Count",
                report.leaked_target_groups_deleted as f64,
            ),
            (
                "ServicesReconciled",
                "Count",
                report.services_reconciled as f64,
            ),
            ("PendingRetried", "Count", report.pending_retried as f64),
            ("SweepFailures", "Count", report.failures as f64),
            // 1 when the run deleted nothing because the claims table is not provably this
            // cluster's and stack's: template.yaml's SweepDeletionsBlockedAlarm watches it.
            (
                "SweepDeletionsBlocked",
                "Count",
                if report.deletions_blocked.is_some() {
                    1.0
                } else {
                    0.0
                },
            ),
            ("SweepDeletionsLeft", "Count", report.deletions_left as f64),
            ("NlbsMissing", "Count", report.nlbs_missing.len() as f64),
            ("ServicesMoved", "Count", report.services_moved as f64),
        ],
    ));
    lines
}

/// The line a pool function run reports per managed pool: NLBs per state, free capacity,
/// growth and retirement, and whether the pool is at its maximum (`PoolAtMaxAlarm`).
pub fn pool_line(report: &PoolReport, timestamp_ms: i64) -> String {
    emf_line(
        timestamp_ms,
        &[("Pool", &report.pool)],
        &[
            ("NlbsProvisioning", "Count", report.provisioning as f64),
            ("NlbsActive", "Count", report.active as f64),
            ("NlbsDraining", "Count", report.draining as f64),
            ("FreeListeners", "Count", f64::from(report.free)),
            ("ServicesWaiting", "Count", report.waiting as f64),
            ("NlbsMade", "Count", report.made.len() as f64),
            ("NlbsAdopted", "Count", report.adopted.len() as f64),
            ("NlbsRetired", "Count", report.retired.len() as f64),
            ("NlbsGone", "Count", report.gone.len() as f64),
            ("WaitingAllocated", "Count", report.woken as f64),
            ("PoolAtMax", "Count", if report.at_max { 1.0 } else { 0.0 }),
        ],
    )
}

/// The seconds from creation to address of pods allocated in an invocation (the metric's
/// values); `None` when there were none.
pub fn pod_address_line(seconds: &[i64], timestamp_ms: i64) -> Option<String> {
    if seconds.is_empty() {
        return None;
    }
    let mut value: Value = serde_json::from_str(&emf_line(timestamp_ms, &[], &[])).ok()?;
    value["PodAddressSeconds"] = json!(seconds);
    value["_aws"]["CloudWatchMetrics"][0]["Metrics"] =
        json!([{"Name": "PodAddressSeconds", "Unit": "Seconds"}]);
    Some(value.to_string())
}

/// The reachability function's EMF line: what a run checked and found, and the seconds from
/// pod creation to reachable of each pod that became reachable (the metric's values).
pub fn reach_line(report: &crate::reconcile::ReachReport, timestamp_ms: i64) -> String {
    let mut line = emf_line(
        timestamp_ms,
        &[],
        &[
            ("ReachabilityChecks", "Count", report.checked as f64),
            ("BecameReady", "Count", report.ready as f64),
            ("GatesSet", "Count", report.gates_set as f64),
            ("ServicesUnreachable", "Count", report.waiting as f64),
            ("ReachabilityTimeouts", "Count", report.timed_out as f64),
        ],
    );
    if !report.pod_reachable_seconds.is_empty()
        && let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&line)
    {
        value["PodReachableSeconds"] = serde_json::json!(report.pod_reachable_seconds);
        if let Some(metrics) = value["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array_mut() {
            metrics.push(serde_json::json!({"Name": "PodReachableSeconds", "Unit": "Seconds"}));
        }
        line = value.to_string();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::PoolUse;

    #[test]
    fn the_pool_line_names_the_pool_and_the_alarms_metric() {
        let report = PoolReport {
            pool: "default".into(),
            at_max: true,
            free: 7,
            ..PoolReport::default()
        };
        let line: serde_json::Value =
            serde_json::from_str(&pool_line(&report, 1_764_150_000_000)).expect("json");
        assert_eq!(line["Pool"], "default");
        assert_eq!(line["PoolAtMax"], 1.0);
        assert_eq!(line["FreeListeners"], 7.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Pool"
        );
    }

    #[test]
    fn lines_are_valid_emf() {
        let report = SweepReport {
            pools: vec![PoolUse {
                pool: "default".into(),
                used: 40,
                capacity: 50,
            }],
            ..SweepReport::default()
        };
        let lines = sweep_lines(&report, 1_764_150_000_000);
        assert_eq!(lines.len(), 2);
        let pool: Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(pool["Pool"], "default");
        assert_eq!(pool["PoolUsePercent"], 80.0);
        let def = &pool["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(def["Namespace"], NAMESPACE);
        assert_eq!(def["Dimensions"], json!([["Pool"]]));
        assert_eq!(
            def["Metrics"][0],
            json!({"Name": "PoolUsePercent", "Unit": "Percent"})
        );
        assert!(!lines[0].contains('\n'));
    }

    #[test]
    fn a_blocked_sweep_says_so_in_a_metric() {
        let run = |blocked: Option<&str>| {
            let report = SweepReport {
                deletions_blocked: blocked.map(str::to_owned),
                deletions_left: 7,
                ..SweepReport::default()
            };
            let lines = sweep_lines(&report, 1_764_150_000_000);
            let sweep: Value = serde_json::from_str(lines.last().expect("a line")).expect("JSON");
            (
                sweep["SweepDeletionsBlocked"].clone(),
                sweep["SweepDeletionsLeft"].clone(),
            )
        };
        assert_eq!(
            run(Some("another cluster's table")),
            (json!(1.0), json!(7.0))
        );
        assert_eq!(run(None), (json!(0.0), json!(7.0)));
    }
}
