//! AWS clients from one shared configuration load.
//!
//! `aws_config` reads the region, credentials and `AWS_ENDPOINT_URL` from the environment, so
//! the same code talks to AWS in Lambda and to moto on 127.0.0.1 in tests.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls;

/// Attempts per AWS call, the first included, before an error reaches the caller.
pub const MAX_ATTEMPTS: u32 = 5;

/// Loads the shared SDK configuration from the environment for `component` (`allocate`,
/// `forwarder`, ...); see [`config_loader`] and [`app_name`].
pub async fn load_sdk_config(component: &str) -> SdkConfig {
    let mut loader = config_loader();
    if let Some(name) = app_name(component) {
        loader = loader.app_name(name);
    }
    loader.load().await
}

/// The SDK app id `npp-<component>`, sent in every call's user agent: CloudTrail's `userAgent`
/// then says which function made a call, and the test bed's IAM gate judges the call by that
/// function's role. `None` for a name the SDK would refuse (it never is for the project's own).
pub fn app_name(component: &str) -> Option<AppName> {
    AppName::new(format!("npp-{component}")).ok()
}

/// The project's SDK settings: adaptive retry (ELB APIs throttle under load) and bounded
/// timeouts, so a hung call fails and is retried instead of eating the Lambda's time. Tests
/// add their endpoint, region and credentials to it.
pub fn config_loader() -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .retry_config(RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(40))
                .build(),
        )
}
