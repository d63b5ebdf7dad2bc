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
                    (
                        "ListenersFree",
                        "Count",
                        p.capacity.saturating_sub(p.used) as f64,
                    ),
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
            // PendingTooLongAlarm watches the oldest.
            ("ServicesPending", "Count", report.services_pending as f64),
            (
                "OldestPendingSeconds",
                "Seconds",
                report.oldest_pending_seconds as f64,
            ),
        ],
    ));
    lines
}

/// The line a pool function run reports per managed pool: NLBs per state, free capacity,
/// growth and retirement, whether the pool is at its maximum (`PoolAtMaxAlarm`) or held back by
/// the region's NLB quota (`NlbQuotaAlarm`), and NLBs given up on while provisioning
/// (`NlbStuckProvisioningAlarm`).
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
            // NlbQuotaAlarm: the pool is held back by the region's NLB quota.
            (
                "PoolAtNlbQuota",
                "Count",
                if report.nlb_quota.is_some() { 1.0 } else { 0.0 },
            ),
            // NlbStuckProvisioningAlarm: NLBs given up on after the provisioning limit.
            ("NlbsStuckProvisioning", "Count", report.stuck.len() as f64),
        ],
    )
}

/// Adds `values` to an EMF line as the list-valued metric `name` (Seconds): CloudWatch keeps
/// each value as a sample, so its percentiles are available.
fn with_samples(line: String, name: &str, values: &[i64]) -> String {
    if values.is_empty() {
        return line;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&line) else {
        return line;
    };
    value[name] = json!(values);
    if let Some(metrics) = value["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array_mut() {
        metrics.push(json!({"Name": name, "Unit": "Seconds"}));
    }
    value.to_string()
}

/// The lines an invocation of `function` reports from what its reconciler measured: the
/// latencies from creation to address of Services and pods (no dimension, list-valued), and
/// the allocation outcomes (dimension `Function`). None when it measured nothing.
pub fn run_lines(
    function: &str,
    measured: &crate::reconcile::RunMetrics,
    timestamp_ms: i64,
) -> Vec<String> {
    let mut lines = Vec::new();
    let latencies = [
        ("ServiceAddressSeconds", &measured.service_address_seconds),
        ("PodAddressSeconds", &measured.pod_address_seconds),
    ];
    if latencies.iter().any(|(_, v)| !v.is_empty()) {
        let mut line = emf_line(timestamp_ms, &[], &[]);
        for (name, values) in latencies {
            line = with_samples(line, name, values);
        }
        lines.push(line);
    }
    let outcomes = [
        ("AllocationsMade", measured.allocations_made),
        ("AllocationsPending", measured.allocations_pending),
        ("AllocationsRefused", measured.allocations_refused),
        ("Releases", measured.releases),
    ];
    if outcomes.iter().any(|(_, n)| *n > 0) {
        let metrics: Vec<(&str, &str, f64)> = outcomes
            .iter()
            .map(|(name, n)| (*name, "Count", *n as f64))
            .collect();
        lines.push(emf_line(timestamp_ms, &[("Function", function)], &metrics));
    }
    for (quota, n) in &measured.quota_refusals {
        lines.push(quota_refused_line(function, quota, *n, timestamp_ms));
    }
    lines
}

/// A function's EMF line for refusals of an AWS quota (`QuotaRefused`, by function and
/// quota, e.g. `TargetGroupsPerRegion`): each left a Service `Pending` until room frees or the
/// quota is raised (`QuotaRefusedAlarm`).
pub fn quota_refused_line(function: &str, quota: &str, count: usize, timestamp_ms: i64) -> String {
    emf_line(
        timestamp_ms,
        &[("Function", function), ("Quota", quota)],
        &[("QuotaRefused", "Count", count as f64)],
    )
}

/// A function's EMF line for an event the bus refused (`SignalsRefused`, by function and
/// detail-type): PutEvents answers a refused entry with HTTP 200 and an error code, and a
/// refused `Pool Low` or `Targets Registered` would otherwise leave rooms waiting unseen.
pub fn signal_refused_line(function: &str, detail_type: &str, timestamp_ms: i64) -> String {
    emf_line(
        timestamp_ms,
        &[("Function", function), ("DetailType", detail_type)],
        &[("SignalsRefused", "Count", 1.0)],
    )
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
    line = with_samples(line, "PodReachableSeconds", &report.pod_reachable_seconds);
    with_samples(
        line,
        "ServiceReachableSeconds",
        &report.service_reachable_seconds,
    )
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
    fn the_pool_line_carries_the_nlb_quota_and_stuck_nlbs() {
        // GIVEN a pool held back by the NLB quota that gave up on one stuck NLB
        let report = PoolReport {
            pool: "default".into(),
            nlb_quota: Some("NLB quota reached".into()),
            stuck: vec!["arn:nlb".into()],
            ..PoolReport::default()
        };
        // WHEN its line is printed
        let line: serde_json::Value =
            serde_json::from_str(&pool_line(&report, 1_764_150_000_000)).expect("json");
        // THEN NlbQuotaAlarm's and NlbStuckProvisioningAlarm's metrics say so
        assert_eq!(line["PoolAtNlbQuota"], 1.0);
        assert_eq!(line["NlbsStuckProvisioning"], 1.0);
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
        assert_eq!(pool["ListenersFree"], 10.0);
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

    fn metric_names(line: &Value) -> Vec<String> {
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Name"].as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_sweep_reports_pending_services_and_the_oldest_wait() {
        let report = SweepReport {
            services_pending: 3,
            oldest_pending_seconds: 1_200,
            ..SweepReport::default()
        };
        let lines = sweep_lines(&report, 1_764_150_000_000);
        let sweep: Value = serde_json::from_str(lines.last().expect("a line")).expect("JSON");
        assert_eq!(sweep["Function"], "sweep");
        assert_eq!(
            (&sweep["ServicesPending"], &sweep["OldestPendingSeconds"]),
            (&json!(3.0), &json!(1200.0))
        );
        let names = metric_names(&sweep);
        assert!(
            names.iter().any(|n| n == "OldestPendingSeconds"),
            "{names:?}"
        );
    }

    #[test]
    fn a_run_reports_its_latencies_as_samples_and_its_outcomes_by_function() {
        let measured = crate::reconcile::RunMetrics {
            service_address_seconds: vec![2, 3],
            pod_address_seconds: vec![],
            allocations_made: 2,
            allocations_pending: 1,
            allocations_refused: 0,
            releases: 0,
            quota_refusals: std::collections::BTreeMap::new(),
        };
        let lines: Vec<Value> = run_lines("allocate", &measured, 1_764_150_000_000)
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["ServiceAddressSeconds"], json!([2, 3]));
        assert_eq!(metric_names(&lines[0]), ["ServiceAddressSeconds"]);
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(lines[1]["Function"], "allocate");
        assert_eq!(
            (
                &lines[1]["AllocationsMade"],
                &lines[1]["AllocationsPending"]
            ),
            (&json!(2.0), &json!(1.0))
        );
        // Nothing measured: nothing printed.
        let none = crate::reconcile::RunMetrics::default();
        assert!(run_lines("allocate", &none, 0).is_empty());
    }

    #[test]
    fn a_quota_refusal_is_a_metric_by_function_and_quota() {
        // GIVEN a run that met the target group quota twice
        let measured = crate::reconcile::RunMetrics {
            quota_refusals: [("TargetGroupsPerRegion", 2)].into_iter().collect(),
            ..crate::reconcile::RunMetrics::default()
        };

        // WHEN its lines are printed
        let lines: Vec<Value> = run_lines("allocate", &measured, 1_764_150_000_000)
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();

        // THEN one line counts them under QuotaRefused, by function and quota
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(metric_names(&lines[0]), ["QuotaRefused"]);
        assert_eq!(lines[0]["QuotaRefused"], json!(2.0));
        assert_eq!(lines[0]["Quota"], json!("TargetGroupsPerRegion"));
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Quota"]])
        );
    }

    #[test]
    fn the_reachable_line_carries_both_latencies() {
        let report = crate::reconcile::ReachReport {
            ready: 2,
            pod_reachable_seconds: vec![100],
            service_reachable_seconds: vec![95],
            ..crate::reconcile::ReachReport::default()
        };
        let line: Value =
            serde_json::from_str(&reach_line(&report, 1_764_150_000_000)).expect("JSON");
        assert_eq!(line["ServiceReachableSeconds"], json!([95]));
        assert_eq!(line["PodReachableSeconds"], json!([100]));
        let names = metric_names(&line);
        assert!(
            names.iter().any(|n| n == "ServiceReachableSeconds"),
            "{names:?}"
        );
    }
}
