//! Lambda `sync-targets`: on `Endpoints Changed`, registers and deregisters the Service's pods
//! in its target groups.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let deps = handlers::Deps::from_env("sync-targets").await?;
    run(service_fn(|event| {
        handlers::on_endpoints_changed(&deps, event)
    }))
    .await
}
