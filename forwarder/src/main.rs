//! The forwarder binary: parse the settings, run until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use forwarder::config::Args;

#[tokio::main]
async fn main() -> ExitCode {
    nlb_port_pool::adapters::telemetry::init_tracing();
    // clap prints unparsable values naming the flag and its variable, and exits with 2.
    let args = Args::parse();
    if let Err(e) = args.validate() {
        tracing::error!(error = %e, "bad configuration");
        return ExitCode::from(2);
    }
    match forwarder::app::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::FAILURE
        }
    }
}
