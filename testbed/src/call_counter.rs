//! Counts and times AWS calls per operation, as an SDK interceptor: one count per operation
//! sent (the SDK's own retries are not counted again), for benchmarks and cost assertions.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Calls and their total time, by `Service.Operation`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    /// How many calls of each operation.
    pub counts: BTreeMap<String, usize>,
    /// Their summed duration.
    pub time: BTreeMap<String, Duration>,
}

impl Calls {
    /// All calls.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }
}

/// Shared counts of the calls made by clients built with [`CallCounter::clients`].
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<Calls>>,
}

#[derive(Debug, Clone)]
struct CallStart(Instant);

impl Storable for CallStart {
    type Storer = StoreReplace<Self>;
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>().map_or_else(
        || "unknown".to_owned(),
        |m| format!("{}.{}", m.service(), m.name()),
    )
}

impl CallCounter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The calls so far, and zero them.
    pub fn take(&self) -> Calls {
        std::mem::take(&mut *self.lock())
    }

    /// The calls so far.
    pub fn snapshot(&self) -> Calls {
        self.lock().clone()
    }

    /// DynamoDB and ELBv2 clients on `sdk` that count their calls here.
    pub fn clients(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> (
        aws_sdk_dynamodb::Client,
        aws_sdk_elasticloadbalancingv2::Client,
    ) {
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        let elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        (
            aws_sdk_dynamodb::Client::from_conf(dynamodb),
            aws_sdk_elasticloadbalancingv2::Client::from_conf(elb),
        )
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Not read_before_execution: client interceptors see that before the operation's
    // configuration (and its name) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.lock().counts.entry(operation(cfg)).or_default() += 1;
        cfg.interceptor_state().store_put(CallStart(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(start) = cfg.load::<CallStart>() {
            let took = start.0.elapsed();
            *self.lock().time.entry(operation(cfg)).or_default() += took;
        }
        Ok(())
    }
}
