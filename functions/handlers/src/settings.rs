//! Everything a function reads from its environment, read in this one place at start: the
//! shared configuration ([`FunctionConfig::load`], which asks AWS for what the environment only
//! names), the tuning every function uses, and its own role's.

use std::time::Duration;

use aws_config::SdkConfig;
use nlb_port_pool::adapters::aws::{AwsConfigLookups, CallRate};
use nlb_port_pool::model::config::{ConfigError, Env, EnvSource, FunctionConfig};
use nlb_port_pool::reconcile::{
    DEFAULT_CLAIM_GRACE, DEFAULT_MAX_DELETIONS, DEFAULT_STACK_ID, ReachSettings, SweepLimits,
    TendSettings,
};

use crate::role::Role;
use crate::time_budget::{DEFAULT_FUNCTION_TIMEOUT, configured_timeout};

/// A function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The runtime's `AWS_LAMBDA_FUNCTION_TIMEOUT` is not a timeout.
    #[error("{0}")]
    Timeout(String),
}

/// Each instance's ELBv2 calls that change things, unless `ELB_WRITES_PER_SECOND` and
/// `ELB_WRITE_BURST` say otherwise: ten at once after a quiet spell (a Service of five
/// listeners, target groups and listeners), then one every four seconds. At the template's
/// default reserved concurrency the functions then stay within two thirds of the account's
/// mutating bucket and about half of its registration bucket (docs/deploy.md, "The AWS API
/// budget").
pub const DEFAULT_WRITE_RATE: CallRate = CallRate {
    per_second: 0.25,
    burst: 10,
};

/// A function's settings.
pub(crate) struct Settings {
    /// The shared configuration: cluster, pools, table, Kubernetes access, target policy.
    pub(crate) config: FunctionConfig,
    /// `CLAIM_GRACE_SECONDS`.
    pub(crate) claim_grace: Duration,
    /// `STACK_ID`: the template sets it to `AWS::StackId`; local runs share one fixed id.
    pub(crate) stack_id: String,
    /// `ELB_WRITES_PER_SECOND`, `ELB_WRITE_BURST`.
    pub(crate) write_rate: CallRate,
    /// `EVENT_BUS_NAME`: where signals go; none, none are sent.
    pub(crate) event_bus: Option<String>,
    /// `REACH_CHECK_SECONDS`, `REACH_TIMEOUT_SECONDS`, `REACH_RUN_SECONDS`: when the checks
    /// every function notes are due, and how the reachability function works through them.
    pub(crate) reach: ReachSettings,
    /// The sweep's `SWEEP_MAX_DELETIONS`, `SWEEP_SERVICES_PER_RUN`, `SWEEP_RETRIES_PER_RUN`.
    pub(crate) sweep_limits: SweepLimits,
    /// The sweep's `AWS_LAMBDA_FUNCTION_TIMEOUT` (see [`crate::time_budget`]).
    pub(crate) function_timeout: Duration,
    /// The pool function's `POOL_WAIT_ACTIVE_SECONDS`, `POOL_POLL_SECONDS`,
    /// `POOL_PROVISIONING_LIMIT_SECONDS` and `NLB_QUOTA`.
    pub(crate) tend: TendSettings,
}

impl Settings {
    /// `config` (already read) with every other setting at its default, and ELBv2 calls
    /// unlimited: tests and benchmarks against the local stack.
    pub(crate) fn defaults(config: FunctionConfig, claim_grace: Duration) -> Self {
        Self {
            config,
            claim_grace,
            stack_id: DEFAULT_STACK_ID.to_owned(),
            write_rate: CallRate::UNLIMITED,
            event_bus: None,
            reach: ReachSettings::default(),
            sweep_limits: SweepLimits::default(),
            function_timeout: DEFAULT_FUNCTION_TIMEOUT,
            tend: TendSettings::default(),
        }
    }

    /// Reads the settings of `function` (of role `role`) from `source`, asking AWS with `sdk`
    /// for what the environment only names. A function reads its own role's variables only.
    pub(crate) async fn read(
        function: &str,
        role: Role,
        source: &dyn EnvSource,
        sdk: &SdkConfig,
    ) -> Result<Self, StartupError> {
        let config = FunctionConfig::load(source, &AwsConfigLookups::new(sdk, function)).await?;
        let env = Env::new(source);
        let claim_grace = Duration::from_secs(
            env.parsed_or("CLAIM_GRACE_SECONDS", DEFAULT_CLAIM_GRACE.as_secs())?,
        );
        let mut settings = Self {
            stack_id: env
                .optional("STACK_ID")
                .unwrap_or_else(|| DEFAULT_STACK_ID.to_owned()),
            write_rate: CallRate {
                per_second: env
                    .parsed_or("ELB_WRITES_PER_SECOND", DEFAULT_WRITE_RATE.per_second)?,
                burst: env.parsed_or("ELB_WRITE_BURST", DEFAULT_WRITE_RATE.burst)?,
            },
            event_bus: env.optional("EVENT_BUS_NAME"),
            reach: reach_settings(&env)?,
            ..Self::defaults(config, claim_grace)
        };
        match role {
            Role::Sweeps => {
                settings.sweep_limits = sweep_limits(&env)?;
                settings.function_timeout =
                    configured_timeout(env.optional("AWS_LAMBDA_FUNCTION_TIMEOUT").as_deref())
                        .map_err(StartupError::Timeout)?;
            }
            Role::TendsPools => settings.tend = tend_settings(source)?,
            Role::Allocates | Role::Releases | Role::ChecksReach => {}
        }
        Ok(settings)
    }
}

fn reach_settings(env: &Env<'_>) -> Result<ReachSettings, ConfigError> {
    let defaults = ReachSettings::default();
    Ok(ReachSettings {
        check_every: Duration::from_secs(
            env.parsed_or("REACH_CHECK_SECONDS", defaults.check_every.as_secs())?
                .max(1),
        ),
        timeout: Duration::from_secs(
            env.parsed_or("REACH_TIMEOUT_SECONDS", defaults.timeout.as_secs())?,
        ),
        run_for: Duration::from_secs(
            env.parsed_or("REACH_RUN_SECONDS", defaults.run_for.as_secs())?,
        ),
        concurrency: defaults.concurrency,
    })
}

fn sweep_limits(env: &Env<'_>) -> Result<SweepLimits, ConfigError> {
    let defaults = SweepLimits::default();
    Ok(SweepLimits {
        max_deletions: env.parsed_or("SWEEP_MAX_DELETIONS", DEFAULT_MAX_DELETIONS)?,
        services_per_run: env.parsed_or("SWEEP_SERVICES_PER_RUN", defaults.services_per_run)?,
        retries_per_run: env.parsed_or("SWEEP_RETRIES_PER_RUN", defaults.retries_per_run)?,
        ..defaults
    })
}

/// How the pool function runs: `POOL_WAIT_ACTIVE_SECONDS`, `POOL_POLL_SECONDS` (at least 1),
/// then its limits (see [`pool_limits`]).
fn tend_settings(source: &dyn EnvSource) -> Result<TendSettings, ConfigError> {
    let env = Env::new(source);
    let defaults = TendSettings::default();
    let settings = TendSettings {
        wait_active: Duration::from_secs(
            env.parsed_or("POOL_WAIT_ACTIVE_SECONDS", defaults.wait_active.as_secs())?,
        ),
        poll: Duration::from_secs(
            env.parsed_or("POOL_POLL_SECONDS", defaults.poll.as_secs())?
                .max(1),
        ),
        ..defaults
    };
    pool_limits(source, settings)
}

/// `settings` with the pool function's limits from `source`: `POOL_PROVISIONING_LIMIT_SECONDS`
/// (how long a made NLB may provision; default 900) and `NLB_QUOTA` (the region's quota of
/// NLBs; unset: not counted).
pub(crate) fn pool_limits(
    source: &dyn EnvSource,
    mut settings: TendSettings,
) -> Result<TendSettings, ConfigError> {
    let env = Env::new(source);
    let limit = env.parsed_or(
        "POOL_PROVISIONING_LIMIT_SECONDS",
        settings.provisioning_limit.as_secs(),
    )?;
    settings.provisioning_limit = Duration::from_secs(limit);
    if env.optional("NLB_QUOTA").is_some() {
        settings.nlb_quota = Some(env.parsed_or("NLB_QUOTA", 0u32)?);
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use crate::settings::pool_limits;
    use nlb_port_pool::reconcile::TendSettings;

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
