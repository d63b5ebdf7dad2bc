//! The pool function's handler, and the growth signal the other functions send it.

use async_trait::async_trait;
use nlb_port_pool::pool_event::{
    FUNCTIONS_SOURCE, POOL_LOW, PoolLow, TARGETS_REGISTERED, TargetsRegistered,
};
use nlb_port_pool::reconcile::{GrowthSignal, PoolReport, TendSettings};
use serde::Serialize;

use crate::{Deps, Error, Event};

/// What a pool function run did, per managed pool it looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSummary {
    /// Why it ran: `schedule`, or the `Pool Low` reason.
    pub trigger: String,
    /// Each pool's report.
    pub pools: Vec<PoolReport>,
}

/// `Pool Low` or the schedule: one run of the pool function over every managed pool (the pool
/// a `Pool Low` names is one of them; the function runs one at a time, so a pool left out
/// would wait for this run to end). Pools are tended at once (see
/// [`nlb_port_pool::reconcile::Reconciler::tend_pools`]). A pool whose run failed fails the
/// invocation after the others ran, so Lambda retries and the errors alarm sees it.
pub async fn on_pool_event(deps: &Deps, event: Event) -> Result<PoolSummary, Error> {
    let e = &event.payload;
    let (trigger, pools): (String, Vec<String>) = if e.source == "aws.events"
        && e.detail_type == "Scheduled Event"
    {
        ("schedule".into(), managed_pools(deps))
    } else if e.source == FUNCTIONS_SOURCE && e.detail_type == POOL_LOW {
        let low = PoolLow::from_parts(&e.source, &e.detail_type, &e.detail)?;
        if low.cluster != deps.config.cluster_name {
            tracing::warn!(event_cluster = %low.cluster, "ignored a Pool Low event about another cluster");
            return Ok(PoolSummary {
                trigger: crate::OTHER_CLUSTER.into(),
                pools: vec![],
            });
        }
        let managed = managed_pools(deps);
        if !managed.contains(&low.pool) {
            tracing::warn!(pool = %low.pool, "Pool Low names no managed pool");
        }
        (low.reason, managed)
    } else {
        return Err(format!(
            "invalid event: the pool function runs on schedule events and {POOL_LOW:?} events \
                 from {FUNCTIONS_SOURCE:?}, got {:?} / {:?}",
            e.source, e.detail_type
        )
        .into());
    };
    let cluster = deps.cluster().await?;
    let now = e.time.map_or_else(
        || chrono::Utc::now().timestamp_millis(),
        |t| t.timestamp_millis(),
    );
    let mut reports = Vec::with_capacity(pools.len());
    let mut failed = Vec::new();
    let runs = deps
        .reconciler
        .tend_pools(&cluster, &pools, deps.tend_settings)
        .await?;
    for (pool, run) in runs {
        match run {
            Ok(report) => {
                println!("{}", nlb_port_pool::metrics::pool_line(&report, now));
                if report.at_max {
                    tracing::warn!(
                        pool,
                        waiting = report.waiting,
                        "the managed pool needs more NLBs than its max allows"
                    );
                }
                if let Some(held) = &report.nlb_quota {
                    tracing::warn!(
                        pool,
                        outcome = "NlbQuotaReached",
                        waiting = report.waiting,
                        refused = report.quota_refused,
                        "{held}"
                    );
                }
                tracing::info!(?report, "tended the pool");
                reports.push(report);
            }
            Err(err) => {
                tracing::warn!(pool, error = %err, "tending the pool failed");
                failed.push(format!("pool {pool}: {err}"));
            }
        }
    }
    // The waiting Services it allocated, and their latencies.
    crate::print_run_metrics(deps, now);
    if !failed.is_empty() {
        return Err(failed.join("; ").into());
    }
    Ok(PoolSummary {
        trigger,
        pools: reports,
    })
}

impl Deps {
    /// The pool function's limits from the environment (see [`pool_limits`]).
    pub fn with_pool_limits_from_env(mut self) -> Result<Self, crate::StartupError> {
        self.tend_settings = pool_limits(&nlb_port_pool::config::ProcessEnv, self.tend_settings)?;
        Ok(self)
    }
}

/// `settings` with the pool function's limits from `source`: `POOL_PROVISIONING_LIMIT_SECONDS`
/// (how long a made NLB may provision; default 900) and `NLB_QUOTA` (the region's quota of
/// NLBs; unset: not counted).
pub fn pool_limits(
    source: &dyn nlb_port_pool::config::EnvSource,
    mut settings: TendSettings,
) -> Result<TendSettings, nlb_port_pool::config::ConfigError> {
    let env = nlb_port_pool::config::Env::new(source);
    let limit = env.parsed_or(
        "POOL_PROVISIONING_LIMIT_SECONDS",
        settings.provisioning_limit.as_secs(),
    )?;
    settings.provisioning_limit = std::time::Duration::from_secs(limit);
    if env.optional("NLB_QUOTA").is_some() {
        settings.nlb_quota = Some(env.parsed_or("NLB_QUOTA", 0u32)?);
    }
    Ok(settings)
}

fn managed_pools(deps: &Deps) -> Vec<String> {
    deps.config
        .pools
        .pools()
        .filter(|p| p.managed().is_some())
        .map(|p| p.name().to_owned())
        .collect()
}

/// The signals as events on the stack's bus: `Pool Low` to the pool function, `Targets
/// Registered` to the reachability function.
pub struct EventBridgeSignal {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    pool_low: bool,
    /// The function sending, for its metrics.
    function: String,
}

impl EventBridgeSignal {
    /// Puts events on `bus` with `client`, as `function`.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: &str, function: &str) -> Self {
        Self {
            client,
            bus: bus.to_owned(),
            pool_low: true,
            function: function.to_owned(),
        }
    }

    /// Sends no `Pool Low` (the pool function does not signal itself).
    pub fn without_pool_low(mut self) -> Self {
        self.pool_low = false;
        self
    }

    async fn put(&self, detail_type: &str, detail: String) -> Result<(), String> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(FUNCTIONS_SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| format!("PutEvents: {}", nlb_port_pool::aws_error::describe(&e).0))?;
        if out.failed_entry_count() > 0 {
            // Refused entry by entry with HTTP 200: said, counted and alarmed on
            // (SignalsRefusedAlarm), never dropped in silence.
            let codes: Vec<&str> = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .collect();
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            tracing::error!(detail_type, codes = ?codes, why = %why, "PutEvents refused the entry");
            println!(
                "{}",
                nlb_port_pool::metrics::signal_refused_line(
                    &self.function,
                    detail_type,
                    chrono::Utc::now().timestamp_millis()
                )
            );
            return Err(format!("PutEvents refused the {detail_type} event: {why}"));
        }
        Ok(())
    }
}

#[async_trait]
impl GrowthSignal for EventBridgeSignal {
    async fn pool_low(&self, cluster: &str, pool: &str, reason: &str) -> Result<(), String> {
        if !self.pool_low {
            return Ok(());
        }
        let detail = serde_json::to_string(&PoolLow::new(cluster, pool, reason))
            .map_err(|e| format!("encoding the Pool Low detail: {e}"))?;
        self.put(POOL_LOW, detail).await
    }

    async fn checks_due(&self, cluster: &str) -> Result<(), String> {
        let detail = serde_json::to_string(&TargetsRegistered::new(cluster))
            .map_err(|e| format!("encoding the Targets Registered detail: {e}"))?;
        self.put(TARGETS_REGISTERED, detail).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_limits_come_from_the_template_variables_and_a_bad_one_is_named() {
        // GIVEN the template's variables
        let env: HashMap<&str, &str> = [
            ("POOL_PROVISIONING_LIMIT_SECONDS", "600"),
            ("NLB_QUOTA", "120"),
        ]
        .into();
        // WHEN read, THEN the settings carry them; unset, the defaults (no count)
        let read = pool_limits(&env, TendSettings::default()).expect("limits");
        assert_eq!(read.provisioning_limit, Duration::from_secs(600));
        assert_eq!(read.nlb_quota, Some(120));
        let unset =
            pool_limits(&HashMap::<&str, &str>::new(), TendSettings::default()).expect("limits");
        assert_eq!(unset.provisioning_limit, Duration::from_secs(900));
        assert_eq!(unset.nlb_quota, None);
        let bad: HashMap<&str, &str> = [("NLB_QUOTA", "fifty")].into();
        let err = pool_limits(&bad, TendSettings::default()).expect_err("refused");
        assert!(err.to_string().contains("NLB_QUOTA"), "{err}");
    }
}
