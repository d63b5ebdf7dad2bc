//! AWS clients from one shared configuration load.
//!
//! `aws_config` reads the region, credentials and `AWS_ENDPOINT_URL` from the environment, so
//! the same code talks to AWS in Lambda and to moto on 127.0.0.1 in tests.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls;

/// Attempts per AWS call, the first included, before an error reaches the caller.
pub const MAX_ATTEMPTS: u32 = 5;

/// Loads the shared SDK configuration from the environment; see [`config_loader`].
pub async fn load_sdk_config() -> SdkConfig {
    config_loader().load().await
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
