//! The local stack: the whole system on 127.0.0.1, around a running test bed.
//!
//! ```text
//! kube-apiserver --watch--> forwarder --PutEvents--> bus (moto) --rules--> SQS queues
//!      ^                                                                      | delivery loop
//!      +---- annotations, finalizer, Events ---- functions (cargo lambda watch) <-+
//!                                                  | DynamoDB, ELBv2 (moto)
//! ```
//! `make run` (testbed/bin/run-local and the `local_stack` binary) runs one for a user; the
//! end-to-end tests and the benchmark run their own, with names of their own, on a shared or a
//! dedicated bed. See docs/local-stack.md.

pub mod aws;
pub mod build;
pub mod delivery;
pub mod env_file;
pub mod examples;
pub mod forwarder;
pub mod functions;
pub mod http;
pub mod kube_access;
pub mod measure;
pub mod process;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_config::SdkConfig;
use tokio::task::JoinHandle;

use crate::Bed;
use crate::aws_rules::{ElbRule, HealthDelay, TargetZones};
use crate::fault_proxy::{FaultPlan, FaultProxy};
use crate::iam_gate::{GateStack, StackSpec};
use aws::{AwsStack, PoolSettings};
use build::Output;
use delivery::{Delivery, DeliverySettings};
use forwarder::{ForwarderProcess, ForwarderSettings};
use functions::{FunctionSettings, Functions};

/// What to start, and how.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Names the bus, rules, queues, table, NLBs and the forwarder's Lease.
    pub prefix: String,
    /// The cluster name the forwarder reports and the functions expect.
    pub cluster: String,
    /// Namespaces the forwarder watches and the functions manage (`WATCH_NAMESPACES`); empty
    /// means all.
    pub namespaces: Vec<String>,
    /// The NLB pool.
    pub pool: PoolSettings,
    /// Where logs and kubeconfigs go.
    pub state_dir: PathBuf,
    /// Cargo profile of the functions and the forwarder (`dev` when `None`).
    pub profile: Option<String>,
    /// Instances per function `cargo lambda watch` may run at once.
    pub concurrency: u32,
    /// Where cargo's build output goes.
    pub build_output: Output,
    /// Whether to run the forwarder and the delivery loop (off: the functions alone, invoked
    /// directly).
    pub events: bool,
    /// The delivery loop's settings.
    pub delivery: DeliverySettings,
    /// `CLAIM_GRACE_SECONDS` of the functions (their default when `None`).
    pub claim_grace: Option<Duration>,
    /// AWS's health checks as the functions see them: with a rule, their calls go through a
    /// fault proxy in front of the IAM gate where a new target reads `initial` until its
    /// delay has passed (moto says `healthy` at once) and IP targets get their zones.
    pub health: Option<Arc<HealthDelay>>,
}

impl StackConfig {
    /// Defaults for a stack named `prefix` keeping its files in `state_dir`.
    pub fn new(prefix: &str, state_dir: PathBuf) -> Self {
        Self {
            prefix: prefix.to_owned(),
            cluster: "local".into(),
            namespaces: vec![],
            pool: PoolSettings::default(),
            state_dir,
            profile: None,
            concurrency: 2,
            build_output: Output::Inherit,
            events: true,
            delivery: DeliverySettings::default(),
            claim_grace: None,
            health: None,
        }
    }
}

/// A running local stack. Dropping it stops its processes; [`LocalStack::stop`] does it in
/// order (delivery, forwarder, functions).
pub struct LocalStack {
    /// How it was started.
    pub config: StackConfig,
    /// SDK configuration pointed at moto.
    pub sdk: SdkConfig,
    /// What it made in moto.
    pub aws: AwsStack,
    /// The functions under `cargo lambda watch`.
    pub functions: Functions,
    /// The forwarder, when events are on.
    pub forwarder: Option<ForwarderProcess>,
    /// The delivery loop, when events are on.
    pub delivery: Option<Delivery>,
    /// The stack as the bed's IAM gate knows it: the functions and the forwarder sign with its
    /// key, and their calls are checked against template.yaml's policies.
    pub gate: GateStack,
    token_renewal: Option<JoinHandle<()>>,
    /// The fault proxy giving the functions AWS's health delay ([`StackConfig::health`]).
    health_proxy: Option<FaultProxy>,
    /// How the forwarder was started, to start it again after a kill.
    forwarder_settings: Option<ForwarderSettings>,
    /// Forwarder starts so far (each restart logs to a file of its own).
    forwarder_starts: u32,
}

/// Variables the functions must not take from this process: they would point them elsewhere
/// (real AWS credentials or profiles, an EKS cluster, another pools parameter, another
/// namespace list).
const NOT_INHERITED: [&str; 12] = [
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "EKS_ENDPOINT",
    "EKS_CA_DATA",
    "POOLS_PARAMETER",
    "WATCH_NAMESPACES",
    "CLAIM_GRACE_SECONDS",
    "TRUSTED_ENDPOINTSLICE_MANAGERS",
    "TARGET_CIDRS",
];

/// The managers of EndpointSlices trusted besides the EndpointSlice controller: the tests'
/// hand-written slices (which set up exact endpoints). The functions trust them as an operator
/// would trust another controller, through `TRUSTED_ENDPOINTSLICE_MANAGERS`.
pub const SLICE_MANAGERS: [&str; 1] = [crate::kube_fixtures::SLICE_MANAGER];

impl LocalStack {
    /// Starts everything on `bed`, calling `progress` with a line per step.
    pub async fn start(bed: &Bed, config: StackConfig, progress: &dyn Fn(&str)) -> Result<Self> {
        let root = build::workspace_root();
        std::fs::create_dir_all(config.state_dir.join("logs"))
            .with_context(|| format!("creating {}", config.state_dir.display()))?;
        let profile = config.profile.as_deref();
        progress(&format!(
            "building the functions{} (cargo build, profile {})",
            if config.events {
                " and the forwarder"
            } else {
                ""
            },
            profile.unwrap_or("dev")
        ));
        build::functions(profile, config.build_output).await?;
        let forwarder_exe = if config.events {
            Some(build::forwarder(profile, config.build_output).await?)
        } else {
            None
        };

        progress(&format!(
            "creating in moto: bus {p}, a rule and SQS queue per detail-type, dead-letter \
             queue {p}-dlq, table {p}-claims, {} NLBs{}",
            config.pool.nlbs,
            config.pool.managed.map_or(String::new(), |m| format!(
                " and subnets for a managed pool of {}..{} NLBs",
                m.min, m.max
            )),
            p = config.prefix
        ));
        let sdk = bed.sdk_config().await;
        let aws =
            AwsStack::create(&sdk, &config.prefix, &config.pool, Duration::from_secs(30)).await?;

        progress(
            "applying deploy/ RBAC (namespace nlb-port-pool, forwarder and functions roles) \
             and the functions' admission policy",
        );
        kube_access::apply_rbac(bed).await?;
        let functions_kubeconfig = kube_access::functions_kubeconfig(bed, &config.state_dir)?;

        let gate = GateStack::register(
            bed,
            &StackSpec {
                stack_name: config.prefix.clone(),
                cluster: config.cluster.clone(),
                pool_nlb_arns: aws.nlbs.iter().map(|n| n.arn.clone()).collect(),
                vpc_id: aws.vpc_id().to_owned(),
                table: aws.table.clone(),
                bus: Some(aws.bus.clone()),
            },
        )
        .await?;
        // The functions sign with the stack's key (and name themselves by their app id).
        let mut env: BTreeMap<String, String> = bed.vars().clone();
        env.insert("AWS_ACCESS_KEY_ID".into(), gate.access_key.clone());
        env.insert("CLUSTER_NAME".into(), config.cluster.clone());
        env.insert("TABLE_NAME".into(), aws.table.clone());
        // The template's is AWS::StackId; a local stack is named by its prefix.
        env.insert("STACK_ID".into(), format!("local/{}", config.prefix));
        env.insert("VPC_ID".into(), aws.vpc_id().to_owned());
        env.insert("POOLS".into(), aws.pools_json.clone());
        // Allocations ask the pool function to grow a managed pool with Pool Low events.
        env.insert("EVENT_BUS_NAME".into(), aws.bus.clone());
        // moto makes NLBs active at once: look again soon.
        env.insert("POOL_POLL_SECONDS".into(), "2".into());
        // Target health reads healthy at once in moto (and soon behind the bed's health delay):
        // look every 2 s, for a short run.
        env.insert("REACH_CHECK_SECONDS".into(), "2".into());
        env.insert("REACH_RUN_SECONDS".into(), "60".into());
        env.insert(
            "KUBECONFIG".into(),
            functions_kubeconfig.display().to_string(),
        );
        env.insert("RUST_LOG".into(), "info".into());
        // moto has no account-wide API limits to spare, and one process here serves every
        // invocation of a function (on AWS each instance has its own bucket): no write budget.
        env.insert("ELB_WRITES_PER_SECOND".into(), "0".into());
        env.insert(
            "TRUSTED_ENDPOINTSLICE_MANAGERS".into(),
            SLICE_MANAGERS.join(","),
        );
        if !config.namespaces.is_empty() {
            env.insert("WATCH_NAMESPACES".into(), config.namespaces.join(","));
        }
        if let Some(g) = config.claim_grace {
            env.insert("CLAIM_GRACE_SECONDS".into(), g.as_secs().to_string());
        }
        let health_proxy = match &config.health {
            Some(delay) => {
                let rules: Vec<Arc<dyn ElbRule>> =
                    vec![delay.clone(), Arc::new(TargetZones::new(bed.region()))];
                let proxy =
                    FaultProxy::start_with(bed.aws_endpoint(), FaultPlan::none(), rules).await;
                progress(&format!(
                    "the functions call AWS through a health-delay proxy at {} (targets read \
                     initial at first, as AWS's health checks take)",
                    proxy.url
                ));
                env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
                Some(proxy)
            }
            None => None,
        };
        let settings = FunctionSettings {
            env,
            unset: NOT_INHERITED.map(String::from).into(),
            profile: config.profile.clone(),
            concurrency: config.concurrency,
            log: config.state_dir.join("logs/functions.log"),
        };
        let mut functions = Functions::start(&root, &settings)?;
        progress(&format!(
            "starting the functions under cargo lambda watch on 127.0.0.1:{} (log {})",
            functions.invoker().port(),
            functions.log().display()
        ));
        functions
            .wait_ready(&build::FUNCTIONS, Duration::from_secs(900))
            .await?;
        if config.pool.managed.is_some() {
            progress("making the managed pool's first NLBs (the pool function, as its schedule)");
            let event = delivery::scheduled_event(bed.region());
            let run = functions.invoker().invoke("pool", event.as_bytes()).await?;
            if !run.ok {
                anyhow::bail!("the pool function failed: {}", run.body);
            }
        }

        let mut stack = Self {
            config,
            sdk,
            aws,
            functions,
            forwarder: None,
            delivery: None,
            gate,
            token_renewal: None,
            health_proxy,
            forwarder_settings: None,
            forwarder_starts: 0,
        };
        if let Some(exe) = forwarder_exe {
            stack.start_events(bed, exe, progress).await?;
        }
        Ok(stack)
    }

    async fn start_events(
        &mut self,
        bed: &Bed,
        exe: PathBuf,
        progress: &dyn Fn(&str),
    ) -> Result<()> {
        let admin = bed.kube_client().await;
        let (kubeconfig, token) =
            kube_access::forwarder_kubeconfig(bed, &admin, &self.config.state_dir).await?;
        self.token_renewal = Some(tokio::spawn(kube_access::keep_renewing(admin, token)));
        let settings = ForwarderSettings {
            exe,
            bus: self.aws.bus.clone(),
            cluster: self.config.cluster.clone(),
            namespaces: self.config.namespaces.clone(),
            lease: format!("{}-forwarder", self.config.prefix),
            kubeconfig,
            env: {
                let mut env = bed.vars().clone();
                env.insert("AWS_ACCESS_KEY_ID".into(), self.gate.access_key.clone());
                env
            },
            log: self.config.state_dir.join("logs/forwarder.log"),
        };
        let mut forwarder = ForwarderProcess::start(&settings)?;
        progress(&format!(
            "starting the forwarder: bus {}, cluster {}, watching {} (log {})",
            settings.bus,
            settings.cluster,
            if settings.namespaces.is_empty() {
                "all namespaces".to_owned()
            } else {
                settings.namespaces.join(",")
            },
            forwarder.log().display()
        ));
        forwarder.wait_ready(Duration::from_secs(60)).await?;
        self.forwarder = Some(forwarder);
        self.forwarder_settings = Some(settings);
        self.forwarder_starts = 1;

        let mut delivery = self.config.delivery.clone();
        delivery.region = bed.region().to_owned();
        progress(&format!(
            "starting the delivery loop: rule queues -> functions, {} receives before the \
             dead-letter queue, sweep {}",
            delivery.max_receives,
            delivery
                .sweep_every
                .map_or("off".to_owned(), |d| format!("every {}s", d.as_secs()))
        ));
        self.delivery = Some(Delivery::start(
            aws_sdk_sqs::Client::new(&self.sdk),
            self.functions.invoker(),
            &self.aws.routes,
            &self.aws.dlq_url,
            delivery,
        ));
        Ok(())
    }

    /// What `kubectl nlb-pool` reads for this stack, as its operator role (the IAM gate checks
    /// the calls against template.yaml's OperatorRole) and the bed's admin in Kubernetes.
    pub async fn operator_view(&self, bed: &Bed) -> Result<nlb_pool_cli::collect::Sources> {
        let app = aws_config::AppName::new("npp-operator").context("the operator's app id")?;
        let sdk = self
            .gate
            .operator_sdk_config(bed)
            .await
            .into_builder()
            .app_name(app)
            .build();
        Ok(nlb_pool_cli::collect::Sources {
            cluster: self.config.cluster.clone(),
            pools: nlb_port_pool::model::pool::PoolSet::from_json(&self.aws.pools_json)
                .map_err(|e| anyhow::anyhow!("the local stack's POOLS: {e}"))?,
            stack_id: Some(format!("local/{}", self.config.prefix)),
            namespace: None,
            store: Arc::new(nlb_port_pool::adapters::dynamo::DynamoClaimStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                &self.aws.table,
            )),
            elb: Arc::new(nlb_port_pool::adapters::aws::AwsLoadBalancing::new(
                aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            )),
            kube: bed.kube_client().await,
            dead_letters: Some((aws_sdk_sqs::Client::new(&sdk), self.aws.dlq_url.clone())),
        })
    }

    /// What a shell needs to reach the stack (the block of `.local/stack.env`): its resources,
    /// what `kubectl nlb-pool` reads (CLUSTER_NAME, TABLE_NAME, POOLS, STACK_ID,
    /// DEAD_LETTER_QUEUE_URL), and the operator's credentials: the shell's AWS calls (the
    /// CLI's, the AWS CLI's) are the stack's OperatorRole's, checked by the IAM gate.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            (
                "AWS_ACCESS_KEY_ID".to_owned(),
                self.gate.operator_key.clone(),
            ),
            // The gate checks who signed, not the signature: the bed's secret serves every key.
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
            ("CLUSTER_NAME".to_owned(), self.config.cluster.clone()),
            ("POOLS".to_owned(), self.aws.pools_json.clone()),
            (
                "STACK_ID".to_owned(),
                format!("local/{}", self.config.prefix),
            ),
            ("DEAD_LETTER_QUEUE_URL".to_owned(), self.aws.dlq_url.clone()),
            ("BUS_NAME".to_owned(), self.aws.bus.clone()),
            ("TABLE_NAME".to_owned(), self.aws.table.clone()),
            ("VPC_ID".to_owned(), self.aws.vpc_id().to_owned()),
            ("POOL_NLB_ARNS".to_owned(), self.nlb_field(|n| &n.arn)),
            (
                "POOL_NLB_DNS_NAMES".to_owned(),
                self.nlb_field(|n| &n.dns_name),
            ),
        ];
        for r in &self.aws.routes {
            let name = format!("QUEUE_URL_{}", aws::slug(r.detail_type).replace('-', "_"));
            vars.push((name.to_ascii_uppercase(), r.queue_url.clone()));
        }
        vars.push(("DLQ_URL".into(), self.aws.dlq_url.clone()));
        let invoker = self.functions.invoker();
        vars.push(("FUNCTIONS_INVOKE_URL".into(), invoker.base_url()));
        vars.push(("FUNCTIONS_PORT".into(), invoker.port().to_string()));
        if let Some(f) = &self.forwarder {
            vars.push((
                "FORWARDER_METRICS_URL".into(),
                format!("http://127.0.0.1:{}/metrics", f.port()),
            ));
        }
        vars.push((
            "LOCAL_STACK_LOGS".into(),
            self.config.state_dir.join("logs").display().to_string(),
        ));
        vars
    }

    fn nlb_field(&self, f: impl Fn(&crate::moto::TestNlb) -> &String) -> String {
        let all: Vec<&str> = self.aws.nlbs.iter().map(|n| f(n).as_str()).collect();
        all.join(",")
    }

    /// The AWS calls the functions made so far, when they go through the health-delay proxy
    /// ([`StackConfig::health`]).
    pub fn functions_aws_calls(&self) -> Option<usize> {
        self.health_proxy.as_ref().map(|p| {
            p.counts
                .forwarded
                .load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// The first of the stack's processes that has exited, if one has.
    pub fn exited(&mut self) -> Option<&'static str> {
        if !self.functions.running() {
            return Some("cargo lambda watch");
        }
        let forwarder_down = self.forwarder.as_mut().is_some_and(|f| !f.running());
        forwarder_down.then_some("the forwarder")
    }

    /// Kills the forwarder (SIGKILL, as a crash), if it runs.
    pub async fn kill_forwarder(&mut self) {
        if let Some(mut f) = self.forwarder.take() {
            let _ = tokio::task::spawn_blocking(move || f.kill()).await;
        }
    }

    /// Starts the forwarder again, as its Deployment would after a crash, and waits until it
    /// is ready (Lease taken, everything listed and resent). Its log is `forwarder-<n>.log`.
    pub async fn restart_forwarder(&mut self) -> Result<()> {
        self.kill_forwarder().await;
        let mut settings = self
            .forwarder_settings
            .clone()
            .context("the stack runs without events: there is no forwarder to restart")?;
        self.forwarder_starts += 1;
        settings.log = (self.config.state_dir.join("logs"))
            .join(format!("forwarder-{}.log", self.forwarder_starts));
        let mut forwarder = ForwarderProcess::start(&settings)?;
        // The Lease of the killed one lapses within its 5 s duration.
        forwarder.wait_ready(Duration::from_secs(60)).await?;
        self.forwarder = Some(forwarder);
        Ok(())
    }

    /// Stops the delivery loop, then the forwarder (it drains), then the functions.
    pub async fn stop(mut self) {
        if let Some(d) = self.delivery.take() {
            d.stop(Duration::from_secs(15)).await;
        }
        if let Some(t) = self.token_renewal.take() {
            t.abort();
        }
        let forwarder = self.forwarder.take();
        let mut functions = self.functions;
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(mut f) = forwarder {
                f.stop();
            }
            functions.stop();
        })
        .await;
        // Last: the functions may call AWS through it until they stop.
        drop(self.health_proxy.take());
    }
}
