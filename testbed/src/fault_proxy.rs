//! A fault-injecting HTTP proxy in front of moto: a share of DynamoDB and ELBv2 calls is
//! answered with throttling, with a 5xx, or not in time (the request is held past the client's
//! timeout and never forwarded), the way AWS misbehaves under load. Other calls pass through.
//! Rules ([`crate::aws_rules`]) give AWS's answer to ELBv2 calls where moto's differs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::aws_rules::{Answer, ElbCall, ElbRule};

/// How often each fault happens, as shares of the DynamoDB and ELBv2 calls (0.0 to 1.0).
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Answered with a throttling error (400).
    pub throttle: f64,
    /// Answered with 503 Service Unavailable.
    pub server_error: f64,
    /// Held for `hold` and never forwarded (the client times out first).
    pub timeout: f64,
    /// How long a "timed out" request is held.
    pub hold: Duration,
}

impl FaultPlan {
    /// No random faults (a proxy for its rules only).
    pub fn none() -> Self {
        Self {
            throttle: 0.0,
            server_error: 0.0,
            timeout: 0.0,
            hold: Duration::ZERO,
        }
    }
}

/// The rules of a proxy.
type Rules = Arc<[Arc<dyn ElbRule>]>;

/// What the proxy did.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Calls forwarded to moto.
    pub forwarded: AtomicUsize,
    /// Throttling answers.
    pub throttled: AtomicUsize,
    /// 503 answers.
    pub server_errors: AtomicUsize,
    /// Requests held until the client gave up.
    pub timeouts: AtomicUsize,
}

/// A running proxy; dropped, it stops.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use as the AWS endpoint.
    pub url: String,
    /// What it did so far.
    pub counts: Arc<FaultCounts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy)]
enum Service {
    DynamoDb,
    Elb,
    Other,
}

fn classify(req: &Request<Incoming>) -> Service {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    if header("x-amz-target").starts_with("DynamoDB") {
        Service::DynamoDb
    } else if header("authorization").contains("/elasticloadbalancing/") {
        Service::Elb
    } else {
        Service::Other
    }
}

fn error(service: Service, status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let (content_type, body) = match service {
        Service::DynamoDb => (
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#
            ),
        ),
        _ => (
            "text/xml",
            format!(
                "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
                 <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

fn roll() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::Instant::now()) % 1_000_000) as f64 / 1_000_000.0
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port.
    pub async fn start(upstream: &str, plan: FaultPlan) -> FaultProxy {
        Self::start_with(upstream, plan, Vec::new()).await
    }

    /// As [`FaultProxy::start`], with `rules` answering ELBv2 calls as AWS would.
    pub async fn start_with(
        upstream: &str,
        plan: FaultPlan,
        rules: Vec<Arc<dyn ElbRule>>,
    ) -> FaultProxy {
        let rules: Rules = rules.into();
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("binding the fault proxy");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let counts = Arc::new(FaultCounts::default());
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let task_counts = counts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (client, upstream, counts, rules) = (
                    client.clone(),
                    upstream.clone(),
                    task_counts.clone(),
                    rules.clone(),
                );
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (client, upstream, counts, rules) = (
                            client.clone(),
                            upstream.clone(),
                            counts.clone(),
                            rules.clone(),
                        );
                        async move {
                            Ok::<_, Infallible>(
                                handle(req, &client, &upstream, &counts, plan, &rules).await,
                            )
                        }
                    });
                    // A client that gives up closes the connection; the held request is dropped.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { url, counts, task }
    }
}

async fn handle(
    req: Request<Incoming>,
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &str,
    counts: &FaultCounts,
    plan: FaultPlan,
    rules: &Rules,
) -> Response<Full<Bytes>> {
    let service = classify(&req);
    if !matches!(service, Service::Other) {
        let r = roll();
        if r < plan.throttle {
            counts.throttled.fetch_add(1, Ordering::Relaxed);
            let code = if matches!(service, Service::DynamoDb) {
                "ThrottlingException"
            } else {
                "Throttling"
            };
            return error(service, StatusCode::BAD_REQUEST, code, "Rate exceeded");
        }
        if r < plan.throttle + plan.server_error {
            counts.server_errors.fetch_add(1, Ordering::Relaxed);
            return error(
                service,
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Service unavailable",
            );
        }
        if r < plan.throttle + plan.server_error + plan.timeout {
            counts.timeouts.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(plan.hold).await;
            return error(
                service,
                StatusCode::GATEWAY_TIMEOUT,
                "RequestTimeout",
                "held by the fault proxy",
            );
        }
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(
            service,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "unreadable body",
        );
    };
    let call = match service {
        Service::Elb if !rules.is_empty() => ElbCall::parse(&body),
        _ => None,
    };
    if let Some(call) = &call {
        for rule in rules.iter() {
            match rule.answer(call).await {
                None => {}
                Some(Answer::Error(status, code, message)) => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                    return error(service, status, &code, &message);
                }
                Some(Answer::Ok(xml)) => {
                    let mut response = Response::new(Full::new(Bytes::from(xml)));
                    if let Ok(v) = "text/xml".parse() {
                        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
                    }
                    return response;
                }
            }
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = Request::builder()
        .method(parts.method)
        .uri(format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        forward = forward.header(k, v);
    }
    let Ok(forward) = forward.body(Full::new(body)) else {
        return error(
            service,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "unforwardable request",
        );
    };
    counts.forwarded.fetch_add(1, Ordering::Relaxed);
    match client.request(forward).await {
        Ok(answer) => {
            let (mut parts, body) = answer.into_parts();
            let mut body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if let Some(call) = call.filter(|_| parts.status.is_success()) {
                let mut text = String::from_utf8_lossy(&body).into_owned();
                for rule in rules.iter() {
                    text = rule.rewrite(&call, text);
                }
                body = Bytes::from(text);
                parts.headers.remove(http::header::CONTENT_LENGTH);
            }
            Response::from_parts(parts, Full::new(body))
        }
        Err(e) => error(
            service,
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            &format!("moto: {e}"),
        ),
    }
}
