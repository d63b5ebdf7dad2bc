//! Lambda `release`: on `Service Deleted`, releases the Service's listeners and lets its
//! deletion finish. It never allocates.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let deps = handlers::Deps::from_env("release").await?;
    run(service_fn(|event| {
        handlers::on_service_deleted(&deps, event)
    }))
    .await
}
