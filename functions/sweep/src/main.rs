//! Lambda `sweep`, on a schedule: releases claims of Services that are gone, deletes leaked
//! listeners and target groups, retries Pending Services, repairs drift, reports pool use.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let deps = handlers::Deps::from_env("sweep").await?;
    run(service_fn(|event| handlers::on_schedule(&deps, event))).await
}
