//! Turning AWS SDK errors into messages and a retry decision.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes that mean "try again later", across the services this project calls.
const RETRYABLE_CODES: [&str; 9] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionConflictException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// The message of an SDK error (code and text for service errors) and whether retrying the
/// call later may succeed: connection failures, timeouts, throttling and 5xx answers may.
pub fn describe<E>(err: &SdkError<E, HttpResponse>) -> (String, bool)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("no message");
            let status = ctx.raw().status().as_u16();
            let retryable = status >= 500 || RETRYABLE_CODES.contains(&code);
            (format!("{code}: {message}"), retryable)
        }
        SdkError::TimeoutError(_) => ("timed out".to_owned(), true),
        SdkError::DispatchFailure(e) => (format!("could not send the request: {e:?}"), true),
        SdkError::ResponseError(e) => (format!("unreadable response: {e:?}"), true),
        SdkError::ConstructionFailure(e) => (format!("could not build the request: {e:?}"), false),
        other => (format!("{other}"), false),
    }
}

/// The service error code of `err`, if it is a service error.
pub fn code<E>(err: &SdkError<E, HttpResponse>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(ctx) => ctx.err().code(),
        _ => None,
    }
}
