//! `kubectl-nlb_pool`: the kubectl plugin `kubectl nlb-pool` (see the crate's library).

use std::process::ExitCode;

use clap::Parser as _;
use nlb_pool_cli::cli::{Args, run};

#[tokio::main]
async fn main() -> ExitCode {
    ExitCode::from(run(Args::parse()).await)
}
