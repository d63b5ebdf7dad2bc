//! The reports as text tables (`-o table`, `-o wide`); `-o json` is their serde form.

use crate::doctor::DoctorReport;
use crate::get::GetReport;
use crate::status::StatusReport;

/// An aligned table: `headers` then `rows`, columns two spaces apart, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    std::iter::once(line(headers.to_vec()))
        .chain(
            rows.iter()
                .map(|r| line(r.iter().map(String::as_str).collect())),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// `1h4m`, `5m12s`, `45s`, `2d3h`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `status` as tables.
pub fn status(report: &StatusReport, wide: bool) -> String {
    let pools: Vec<Vec<String>> = report
        .pools
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.kind.to_owned(),
                p.placement.clone(),
                p.ports.clone(),
                p.nlbs.len().to_string(),
                format!("{}/{}", p.used, p.capacity),
                p.free.to_string(),
                p.waiting.to_string(),
            ]
        })
        .collect();
    let mut nlb_headers = vec!["NLB", "POOL", "STATE", "CLAIMED", "LISTENERS/QUOTA", "FREE"];
    if wide {
        nlb_headers.extend(["DNS", "ARN"]);
    }
    let nlbs: Vec<Vec<String>> = report
        .pools
        .iter()
        .flat_map(|p| p.nlbs.iter().map(move |n| (p, n)))
        .map(|(p, n)| {
            let mut row = vec![
                n.name.clone(),
                p.name.clone(),
                n.state.clone(),
                n.claimed.to_string(),
                format!("{}/{}", n.listeners, n.quota),
                n.free.to_string(),
            ];
            if wide {
                row.push(n.dns.clone().unwrap_or_else(|| "-".into()));
                row.push(n.arn.clone());
            }
            row
        })
        .collect();
    let counts = |c: &crate::status::StateCounts| {
        format!(
            "{} (ready {}, allocated {}, disabled {}, pending {}, error {}, no status yet {})",
            c.total, c.ready, c.allocated, c.disabled, c.pending, c.error, c.unseen
        )
    };
    let mut out = vec![
        format!("Cluster {}", report.cluster),
        String::new(),
        table(
            &[
                "POOL",
                "KIND",
                "PLACEMENT",
                "PORTS",
                "NLBS",
                "USED/CAPACITY",
                "FREE",
                "WAITING",
            ],
            &pools,
        ),
        String::new(),
        table(&nlb_headers, &nlbs),
        String::new(),
        format!(
            "Services: {}; pods of per-pod Services: {}",
            counts(&report.counts.services),
            counts(&report.counts.pods)
        ),
    ];
    if !report.problems.is_empty() {
        let rows: Vec<Vec<String>> = report
            .problems
            .iter()
            .map(|p| {
                vec![
                    p.kind.to_owned(),
                    format!("{}/{}", p.namespace, p.name),
                    p.state.to_owned(),
                    age(p.age_seconds),
                    p.reason.clone(),
                ]
            })
            .collect();
        out.push(String::new());
        out.push(table(&["KIND", "NAME", "STATE", "AGE", "REASON"], &rows));
    }
    out.join("\n")
}

/// `get` as tables.
pub fn get(report: &GetReport, wide: bool) -> String {
    let mut out = vec![format!(
        "{} {}/{}: {}; address {}",
        if report.kind == "pod" {
            "Pod"
        } else {
            "Service"
        },
        report.namespace,
        report.name,
        report.status.as_deref().unwrap_or("no status"),
        report.address.as_deref().unwrap_or("none")
    )];
    let mut headers = vec!["LISTENER", "PROTOCOL", "ADDRESS", "HEALTHY/TARGETS"];
    if wide {
        headers.extend(["LISTENER ARN", "TARGET GROUP ARN"]);
    }
    let rows: Vec<Vec<String>> = report
        .listeners
        .iter()
        .map(|l| {
            let healthy = l.targets.iter().filter(|t| t.state == "healthy").count();
            let mut row = vec![
                l.name.clone(),
                l.protocol.clone(),
                l.address.clone(),
                format!("{healthy}/{}", l.targets.len()),
            ];
            if wide {
                let missing = if l.listener_found { "" } else { " (missing)" };
                row.push(format!("{}{missing}", l.listener_arn));
                row.push(l.target_group_arn.clone());
            }
            row
        })
        .collect();
    if !rows.is_empty() {
        out.push(String::new());
        out.push(table(&headers, &rows));
    }
    if report.listeners.iter().any(|l| !l.listener_found) {
        out.push(
            "warning: a listener the annotations name does not exist (kubectl nlb-pool doctor)"
                .into(),
        );
    }
    let targets: Vec<Vec<String>> = report
        .listeners
        .iter()
        .flat_map(|l| {
            l.targets.iter().map(move |t| {
                vec![
                    l.name.clone(),
                    t.target.clone(),
                    t.state.clone(),
                    t.reason.clone().unwrap_or_default(),
                ]
            })
        })
        .collect();
    if !targets.is_empty() {
        out.push(String::new());
        out.push(table(&["LISTENER", "TARGET", "STATE", "REASON"], &targets));
    }
    if wide && !report.claims.is_empty() {
        let claims: Vec<Vec<String>> = report
            .claims
            .iter()
            .map(|c| {
                vec![
                    c.key.clone(),
                    c.port.to_string(),
                    c.state.clone(),
                    c.nlb_arn.clone(),
                ]
            })
            .collect();
        out.push(String::new());
        out.push(table(&["CLAIM", "PORT", "STATE", "NLB"], &claims));
    }
    out.join("\n")
}

/// `doctor` as a table.
pub fn doctor(report: &DoctorReport, wide: bool) -> String {
    let c = &report.checked;
    let mut out = vec![format!(
        "Cluster {}: checked {} NLBs, {} listeners, {} target groups, {} claims, {} Services",
        report.cluster, c.nlbs, c.listeners, c.target_groups, c.claims, c.services
    )];
    if report.findings.is_empty() {
        out.push("Nothing found.".into());
        return out.join("\n");
    }
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            let chars = f.subject.chars().count();
            let subject = if wide || chars <= 60 {
                f.subject.clone()
            } else {
                let tail: String = f.subject.chars().skip(chars - 57).collect();
                format!("...{tail}")
            };
            vec![
                format!("{:?}", f.severity).to_lowercase(),
                f.kind.to_owned(),
                subject,
                f.detail.clone(),
            ]
        })
        .collect();
    out.push(String::new());
    out.push(table(&["SEVERITY", "KIND", "SUBJECT", "DETAIL"], &rows));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_ages_read_short() {
        let text = table(
            &["A", "LONGER"],
            &[
                vec!["wide cell".into(), "x".into()],
                vec!["y".into(), String::new()],
            ],
        );
        assert_eq!(text, "A          LONGER\nwide cell  x\ny");
        let ages: Vec<String> = [5, 312, 3_840, 183_600].map(age).to_vec();
        assert_eq!(ages, ["5s", "5m12s", "1h4m", "2d3h"]);
    }
}
