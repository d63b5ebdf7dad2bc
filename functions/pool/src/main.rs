//! Lambda `pool`, on `Pool Low` events and a schedule: makes NLBs for managed pools that run
//! low, promotes them when AWS reports them active (allocating the Services that waited at
//! once), and retires NLBs that have been idle past their time.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let deps = handlers::Deps::from_env("pool").await?;
    run(service_fn(|event| handlers::on_pool_event(&deps, event))).await
}
