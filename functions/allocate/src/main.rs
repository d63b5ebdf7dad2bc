//! Lambda `allocate`: on `Service Changed`, gives an opted-in Service its listeners, repairs
//! them, or releases them when the Service no longer asks for them.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let deps = handlers::Deps::from_env("allocate").await?;
    run(service_fn(|event| {
        handlers::on_service_changed(&deps, event)
    }))
    .await
}
