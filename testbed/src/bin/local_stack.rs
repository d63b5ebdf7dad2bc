//! The local stack of `make run`: the functions, the forwarder, the bus, rules, queues, table
//! and NLB pool around the running test bed, example game rooms, and a table of what they got.
//! testbed/bin/run-local starts the bed, builds this and runs it; see docs/local-stack.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use testbed::Bed;
use testbed::local_stack::aws::{ManagedSettings, PoolSettings};
use testbed::local_stack::{LocalStack, StackConfig, build, env_file, examples};
use tokio::signal::unix::{SignalKind, signal};

/// Runs nlb-port-pool on 127.0.0.1 around the test bed of NLB_STACK_ENV until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "local_stack")]
struct Args {
    /// Manifests applied once the stack is up; their opted-in Services are waited for and shown.
    #[arg(long, default_value_os_t = build::workspace_root().join("examples/game-rooms.yaml"))]
    examples: PathBuf,
    /// Apply no examples.
    #[arg(long)]
    no_examples: bool,
    /// Namespaces the forwarder watches and the functions manage, comma-separated; empty: all.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    namespaces: Vec<String>,
    /// Pre-made NLBs in the pool (made by hand, never deleted by the system).
    #[arg(long, default_value_t = 0)]
    nlbs: usize,
    /// NLBs the pool function keeps made (the pool's managed.min).
    #[arg(long, default_value_t = 1)]
    managed_min: u32,
    /// Most NLBs the pool function makes (managed.max); 0: the pool is not managed.
    #[arg(long, default_value_t = 4)]
    managed_max: u32,
    /// Free listeners the pool function keeps ready (managed.spare).
    #[arg(long, default_value_t = 10)]
    managed_spare: u32,
    /// Listener ports of the pool.
    #[arg(long, default_value = "30000-32767")]
    ports: String,
    /// Listeners per NLB.
    #[arg(long, default_value_t = 50)]
    quota: u32,
    /// Instances per function `cargo lambda watch` may run at once.
    #[arg(long, default_value_t = 2)]
    concurrency: u32,
    /// Cargo profile for the functions and the forwarder (e.g. release); default dev.
    #[arg(long)]
    profile: Option<String>,
    /// Seconds between sweep runs; 0: no sweep.
    #[arg(long, default_value_t = 60)]
    sweep_every: u64,
    /// Where logs and kubeconfigs go; default `local-stack/` next to the stack file.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

fn step(n: &std::sync::atomic::AtomicUsize, text: &str) {
    let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    eprintln!("\x1b[1m==> [{i}] {text}\x1b[0m");
}

#[tokio::main]
async fn main() -> ExitCode {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let stack_env = testbed::stack_env_path();
    let bed = Bed::load(&stack_env)
        .map_err(|e| anyhow::anyhow!("{e}\nstart the bed first (testbed/bin/run-local does it)"))?;
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        stack_env
            .parent()
            .map_or_else(|| PathBuf::from(".local"), PathBuf::from)
            .join("local-stack")
    });
    let mut config = StackConfig::new(&testbed::unique_name("nlb-port-pool"), state_dir);
    config.namespaces = args
        .namespaces
        .iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect();
    if args.nlbs == 0 && args.managed_max == 0 {
        anyhow::bail!("the pool needs NLBs: --nlbs above 0 or --managed-max above 0");
    }
    config.pool = PoolSettings {
        nlbs: args.nlbs,
        ports: args.ports.clone(),
        quota: args.quota,
        managed: (args.managed_max > 0).then_some(ManagedSettings {
            min: args.managed_min,
            max: args.managed_max,
            spare: args.managed_spare,
        }),
    };
    config.concurrency = args.concurrency;
    config.profile = args.profile.clone();
    config.delivery.sweep_every =
        (args.sweep_every > 0).then(|| Duration::from_secs(args.sweep_every));
    let steps = std::sync::atomic::AtomicUsize::new(0);
    let progress = |text: &str| step(&steps, text);

    // A signal during start-up drops what was started (each process stops with its handle).
    let mut started = tokio::select! {
        s = LocalStack::start(&bed, config, &progress) => s?,
        _ = term.recv() => return Ok(stopped_early()),
        _ = int.recv() => return Ok(stopped_early()),
    };
    env_file::write_block(&stack_env, &started.env_vars())?;
    let shown = tokio::select! {
        r = show_examples(&bed, &started, &args, &progress) => r,
        _ = term.recv() => Err(anyhow::anyhow!("stopping")),
        _ = int.recv() => Err(anyhow::anyhow!("stopping")),
    };
    if let Err(e) = &shown
        && e.to_string() == "stopping"
    {
        return Ok(stop(started, &stack_env).await);
    } else if let Err(e) = shown {
        eprintln!("warning: the examples did not settle: {e:#}");
    }
    ready_message(&started, &stack_env);

    let mut health = tokio::time::interval(Duration::from_secs(5));
    let failed = loop {
        tokio::select! {
            _ = term.recv() => break false,
            _ = int.recv() => break false,
            _ = health.tick() => {
                if let Some(what) = started.exited() {
                    eprintln!("error: {what} stopped; stopping the stack");
                    break true;
                }
            }
        }
    };
    let code = stop(started, &stack_env).await;
    Ok(if failed { ExitCode::FAILURE } else { code })
}

async fn show_examples(
    bed: &Bed,
    stack: &LocalStack,
    args: &Args,
    progress: &dyn Fn(&str),
) -> Result<()> {
    if args.no_examples {
        progress("no examples to apply (--no-examples)");
        return Ok(());
    }
    // The TLS room's certificate: a self-signed one in the local ACM (imported: issued).
    let certificate =
        testbed::acm_fixtures::imported_certificate(&stack.sdk, "room-tls.game-rooms.example")
            .await?;
    let manifests = examples::substituted(
        &args.examples,
        &[(examples::CERTIFICATE_PLACEHOLDER, certificate.as_str())],
        &stack.config.state_dir,
    )?;
    progress(&format!(
        "applying {} (the TLS room's certificate put in; edit and apply it again at will) and \
         waiting for the Services' ports",
        manifests.display()
    ));
    let applied = examples::apply(&bed.kubeconfig(), &manifests).await?;
    let client = bed.kube_client().await;
    examples::wait_settled(&client, &applied.services, Duration::from_secs(180)).await?;
    // The tables `kubectl nlb-pool status` and `kubectl nlb-pool get` print.
    let view = stack.operator_view(bed).await?;
    let silent = nlb_pool_cli::progress::Progress::silent();
    let snapshot = view.snapshot(false, &silent).await?;
    let status = nlb_pool_cli::status::report(&snapshot);
    let rows = nlb_pool_cli::list::list(&view).await?;
    println!(
        "\n{}\n\n{}\n",
        nlb_pool_cli::render::status(&status, false),
        nlb_pool_cli::list::render(&rows, false)
    );
    // A per-pod StatefulSet makes its pods one by one, each once the one before is Ready (its
    // reachable gate): they get their addresses over some seconds after the table.
    for fleet in &applied.fleets {
        progress(&format!(
            "waiting for the {} pods of StatefulSet {fleet} to have their addresses (each is \
             made once the one before is Ready)",
            fleet.replicas
        ));
        let pods = fleet
            .wait_for_addresses(&client, Duration::from_secs(180))
            .await?;
        println!("{}", examples::fleet::render(fleet, &pods));
    }
    Ok(())
}

fn ready_message(stack: &LocalStack, stack_env: &std::path::Path) {
    let logs = stack.config.state_dir.join("logs");
    println!(
        "The local stack is up. In another shell:\n\
         \x20 source {env}\n\
         \x20 kubectl apply -f examples/my-room.yaml # an opted-in Service and its Deployment\n\
         \x20 kubectl get svc -A -o custom-columns=NAME:.metadata.name,ADDRESS:'.metadata.annotations.nlb\\.port-manager/address'\n\
         \x20 kubectl -n game-rooms get pods -o wide  # the rooms' pods on kwok's nodes\n\
         \x20 cargo run -q -p nlb-pool-cli -- status  # or get -A, doctor: kubectl nlb-pool (README)\n\
         Logs: {logs}/functions.log, {logs}/forwarder.log; deliveries below.\n\
         Press Ctrl-C to stop.",
        env = stack_env.display(),
        logs = logs.display()
    );
}

async fn stop(stack: LocalStack, stack_env: &std::path::Path) -> ExitCode {
    eprintln!("\x1b[1m==> stopping: delivery loop, forwarder, functions\x1b[0m");
    stack.stop().await;
    if let Err(e) = env_file::remove_block(stack_env) {
        eprintln!("warning: {e:#}");
    }
    eprintln!("\x1b[1m==> the local stack is stopped\x1b[0m");
    ExitCode::SUCCESS
}

fn stopped_early() -> ExitCode {
    eprintln!("\x1b[1m==> stopped during start-up\x1b[0m");
    ExitCode::from(130)
}
