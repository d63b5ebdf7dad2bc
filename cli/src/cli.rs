//! Arguments, connecting to the sources, and one run (or a `--watch` loop) of a command.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::model::pool::PoolSet;

use crate::collect::Sources;
use crate::get::Subject;
use crate::progress::Progress;

/// Exit code: success (`doctor`: no warning).
pub const EXIT_OK: u8 = 0;
/// Exit code: `doctor` found something to look at.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: bad arguments or settings (clap's own usage errors are 2 as well).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: something could not be read (AWS, the Kubernetes API); the message says what.
pub const EXIT_UNREADABLE: u8 = 3;

/// The operator's view of nlb-port-pool: pools, Services and leaks, read-only.
///
/// Settings come from flags or the functions' own variables (CLUSTER_NAME, TABLE_NAME, POOLS,
/// STACK_ID), AWS from the usual AWS_* variables and ~/.aws, Kubernetes from KUBECONFIG.
/// `source .local/stack.env` sets all of them for the local stack.
#[derive(Debug, Parser)]
#[command(name = "kubectl nlb-pool", bin_name = "kubectl nlb-pool", version)]
pub struct Args {
    /// The cluster's name, as the stack's ClusterName.
    #[arg(long, env = "CLUSTER_NAME", global = true, default_value = "")]
    pub cluster: String,
    /// The claims table.
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "")]
    pub table: String,
    /// The pools, as the functions' POOLS JSON.
    #[arg(
        long,
        env = "POOLS",
        global = true,
        default_value = "",
        hide_env_values = true
    )]
    pub pools: String,
    /// The stack's id (STACK_ID), to check the claims table's identity against.
    #[arg(long, env = "STACK_ID", global = true)]
    pub stack_id: Option<String>,
    /// The dead-letter queue's URL, for its depth (doctor).
    #[arg(long, env = "DEAD_LETTER_QUEUE_URL", global = true)]
    pub dead_letter_queue: Option<String>,
    /// Only this namespace's Services and pods (default: every namespace).
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// Every namespace, as kubectl's -A (what no -n means); a named Service or pod then
    /// needs its namespace as NAMESPACE/NAME.
    #[arg(short = 'A', long, global = true, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Run again every --interval seconds until interrupted (JSON: one document per line).
    #[arg(short, long, global = true)]
    pub watch: bool,
    /// Seconds between two runs of --watch.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub interval: u64,
    /// No progress on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to show.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Each pool and NLB (state, listeners used of the quota, free), and the Pending and
    /// Error Services and pods with their reasons and ages.
    Status,
    /// One Service or pod: address, listeners, target groups, targets with health, claims.
    /// Without a name: every Service (each pod of a per-pod Service), one row per listener.
    Get {
        /// `svc/NAME`, `pod/NAME` (with -n), `NAMESPACE/NAME` or a Service's `NAME`.
        subject: Option<String>,
    },
    /// What the sweep would find: leaked listeners and target groups, claims without
    /// Services or listeners, Services stuck terminating, the table's identity, dead letters.
    Doctor,
}

/// How reports are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned tables.
    Table,
    /// Tables with ARNs and DNS names.
    Wide,
    /// The report as JSON.
    Json,
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// [`EXIT_USAGE`] or [`EXIT_UNREADABLE`].
    pub code: u8,
    /// What failed, and why.
    pub error: anyhow::Error,
}

fn usage(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_USAGE,
        error,
    }
}

fn unreadable(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_UNREADABLE,
        error,
    }
}

/// Connects to the claims table, ELBv2, SQS and the Kubernetes API as `args` say.
pub async fn connect(args: &Args) -> Result<Sources, Failure> {
    let missing: Vec<&str> = [
        ("--cluster (CLUSTER_NAME)", &args.cluster),
        ("--table (TABLE_NAME)", &args.table),
        ("--pools (POOLS)", &args.pools),
    ]
    .into_iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(name, _)| name)
    .collect();
    if !missing.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "missing {}: give them, or export the functions' variables (README, \"The \
             operator's view\")",
            missing.join(", ")
        )));
    }
    let sdk = nlb_port_pool::adapters::aws::sdk::load_sdk_config("operator").await;
    // NLBs may be given by name, as the functions take them (found with DescribeLoadBalancers).
    let lookups = nlb_port_pool::adapters::aws::AwsConfigLookups::new(&sdk, "operator");
    let json = nlb_port_pool::model::config_source::resolve_names(&args.pools, &lookups)
        .await
        .map_err(|e| usage(anyhow::anyhow!("POOLS: {e}")))?;
    let pools = PoolSet::from_json(&json).map_err(|e| usage(anyhow::anyhow!("POOLS: {e}")))?;
    let kube = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG, or in-cluster)")
        .map_err(unreadable)?;
    Ok(Sources {
        cluster: args.cluster.clone(),
        pools,
        stack_id: args.stack_id.clone(),
        namespace: args.namespace.clone(),
        store: Arc::new(DynamoClaimStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &args.table,
        )),
        elb: Arc::new(AwsLoadBalancing::new(
            aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        )),
        kube,
        dead_letters: args
            .dead_letter_queue
            .clone()
            .map(|url| (aws_sdk_sqs::Client::new(&sdk), url)),
    })
}

/// One run of `command`: the text to print and the exit code.
pub async fn run_once(
    sources: &Sources,
    command: &Command,
    output: Output,
    namespace: Option<&str>,
    progress: &Progress,
) -> Result<(String, u8), Failure> {
    let wide = output == Output::Wide;
    let json = |v: serde_json::Result<String>| v.context("writing JSON").map_err(unreadable);
    match command {
        Command::Status => {
            let snapshot = sources
                .snapshot(false, progress)
                .await
                .map_err(unreadable)?;
            let report = crate::status::report(&snapshot);
            let text = match output {
                Output::Json => json(serde_json::to_string_pretty(&report))?,
                _ => crate::render::status(&report, wide),
            };
            Ok((text, EXIT_OK))
        }
        Command::Get { subject: None } => {
            progress.say("reading Services and their targets");
            let rows = crate::list::list(sources).await.map_err(unreadable)?;
            progress.done();
            let text = match output {
                Output::Json => json(serde_json::to_string_pretty(&rows))?,
                _ => crate::list::render(&rows, wide),
            };
            Ok((text, EXIT_OK))
        }
        Command::Get {
            subject: Some(subject),
        } => {
            let subject = Subject::parse(subject, namespace).map_err(usage)?;
            let report = crate::get::get(sources, &subject)
                .await
                .map_err(unreadable)?;
            let text = match output {
                Output::Json => json(serde_json::to_string_pretty(&report))?,
                _ => crate::render::get(&report, wide),
            };
            Ok((text, EXIT_OK))
        }
        Command::Doctor => {
            let snapshot = sources.snapshot(true, progress).await.map_err(unreadable)?;
            let report = crate::doctor::report(&snapshot);
            let code = if report.has_warnings() {
                EXIT_FINDINGS
            } else {
                EXIT_OK
            };
            let text = match output {
                Output::Json => json(serde_json::to_string_pretty(&report))?,
                _ => crate::render::doctor(&report, wide),
            };
            Ok((text, code))
        }
    }
}

/// Refuses what kubectl refuses: a Service or pod by name across all namespaces (kubectl:
/// "a resource cannot be retrieved by name across all namespaces").
pub fn check_scope(args: &Args) -> Result<(), Failure> {
    match &args.command {
        Command::Get {
            subject: Some(subject),
        } if args.all_namespaces && !Subject::names_its_namespace(subject) => {
            Err(usage(anyhow::anyhow!(
                "{subject}: a Service or pod cannot be read by name across all namespaces (-A): \
                 give -n NAMESPACE, or NAMESPACE/NAME"
            )))
        }
        _ => Ok(()),
    }
}

/// Runs `args`: once, printing the report, or every `--interval` seconds with `--watch`.
pub async fn run(args: Args) -> u8 {
    if let Err(f) = check_scope(&args) {
        return fail(&f);
    }
    let sources = match connect(&args).await {
        Ok(s) => s,
        Err(f) => return fail(&f),
    };
    let progress = Progress::to_terminal(args.quiet);
    let once = || {
        run_once(
            &sources,
            &args.command,
            args.output,
            args.namespace.as_deref(),
            &progress,
        )
    };
    if !args.watch {
        return match once().await {
            Ok((text, code)) => {
                println!("{text}");
                code
            }
            Err(f) => fail(&f),
        };
    }
    let interval = Duration::from_secs(args.interval);
    loop {
        match once().await {
            Ok((text, _)) if args.output == Output::Json => {
                // One document per line, for `| jq -c` and log shippers.
                let compact = serde_json::from_str::<serde_json::Value>(&text)
                    .map(|v| v.to_string())
                    .unwrap_or(text);
                println!("{compact}");
            }
            Ok((text, _)) => {
                use std::io::IsTerminal as _;
                if std::io::stdout().is_terminal() {
                    print!("\x1b[H\x1b[2J");
                }
                println!("Every {}s (Ctrl-C to stop)\n\n{text}\n", args.interval);
            }
            // A watch outlives a transient failure: say it, and look again.
            Err(f) => eprintln!("error: {:#}", f.error),
        }
        tokio::time::sleep(interval).await;
    }
}

fn fail(f: &Failure) -> u8 {
    eprintln!("error: {:#}", f.error);
    f.code
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("kubectl-nlb_pool").chain(args.iter().copied()))
    }

    #[test]
    fn namespaces_are_chosen_as_kubectl_chooses_them() {
        // -A and --all-namespaces, before or after the command, as kubectl users type them
        for args in [
            &["get", "-A"][..],
            &["get", "--all-namespaces"],
            &["-A", "status"],
            &["status", "-A", "-o", "wide"],
        ] {
            let parsed = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(parsed.all_namespaces, "{args:?}");
            assert!(check_scope(&parsed).is_ok(), "{args:?}");
        }
        let one = parse(&["get", "svc/room", "-n", "games"]).expect("-n");
        assert_eq!(one.namespace.as_deref(), Some("games"));
        assert!(!one.all_namespaces);
        // -A and -n together: refused by clap, as a usage error (exit 2)
        let both = parse(&["get", "-A", "-n", "games"]).expect_err("-A with -n");
        assert_eq!(both.exit_code(), 2, "{both}");
        // a name across all namespaces: refused, unless it names its namespace
        let named = parse(&["get", "svc/room", "-A"]).expect("parses");
        let refused = check_scope(&named).expect_err("svc/NAME with -A");
        assert_eq!(refused.code, EXIT_USAGE);
        assert!(
            refused.error.to_string().contains("across all namespaces"),
            "{}",
            refused.error
        );
        let qualified = parse(&["get", "games/room", "-A"]).expect("parses");
        assert!(check_scope(&qualified).is_ok());
    }

    #[test]
    fn the_help_tells_of_all_namespaces() {
        let help = parse(&["get", "--help"]).expect_err("help").to_string();
        assert!(help.contains("-A, --all-namespaces"), "{help}");
        assert!(help.contains("-n, --namespace"), "{help}");
    }
}
