//! Lambda `reachable`, on `Targets Registered` events and a schedule: checks the target health
//! of the Services on the reachability work list until each listener has a healthy target,
//! then writes status `Ready` and sets the readiness gate of the pods that declare it.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    nlb_port_pool::adapters::telemetry::init_tracing();
    let deps = handlers::Deps::from_env("reachable").await?;
    run(service_fn(|event| {
        handlers::on_reachability_event(&deps, event)
    }))
    .await
}
