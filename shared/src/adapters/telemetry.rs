//! Tracing set-up shared by every binary.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: JSON lines in Lambda (CloudWatch parses them), compact text
/// elsewhere. The filter comes from `RUST_LOG`, else `LOG_LEVEL`, else `info`.
/// Calling it twice is harmless: the second call does nothing.
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if in_lambda {
        builder
            .json()
            .with_ansi(false)
            .without_time()
            .with_current_span(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // Err only means a subscriber is already installed, e.g. by a test harness.
    drop(result);
}
