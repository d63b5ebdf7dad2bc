//! AWS fixtures in moto: VPCs and subnets, `network` load balancers, queues behind bus rules.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_elasticloadbalancingv2::types::{LoadBalancerTypeEnum, Tag};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A `network` load balancer made for one test.
#[derive(Debug, Clone)]
pub struct TestNlb {
    /// Its ARN (moto writes `loadbalancer/app/` even for NLBs).
    pub arn: String,
    /// Its DNS name.
    pub dns_name: String,
    /// The VPC it lives in; target groups for it must be made there.
    pub vpc_id: String,
}

/// Makes a VPC with three subnets (one per zone, [`crate::aws_rules::ZONE_SUBNETS`]) and a `network` NLB called `name` in it.
pub async fn create_nlb(sdk: &SdkConfig, name: &str) -> TestNlb {
    let vpc_id = create_vpc(sdk).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let mut subnets = Vec::new();
    for (prefix, az) in crate::aws_rules::ZONE_SUBNETS {
        let zone = format!("{}{az}", region(sdk));
        subnets.push(create_subnet(sdk, &vpc_id, &format!("{prefix}0/24"), &zone).await);
    }
    let out = elb
        .create_load_balancer()
        .name(name)
        .r#type(LoadBalancerTypeEnum::Network)
        .set_subnets(Some(subnets))
        .tags(
            Tag::builder()
                .key("purpose")
                .value("nlb-port-pool-test")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating NLB {name} in moto: {e:?}"));
    let lb = out
        .load_balancers()
        .first()
        .expect("CreateLoadBalancer returned no load balancer");
    TestNlb {
        arn: lb.load_balancer_arn().expect("NLB ARN").to_owned(),
        dns_name: lb.dns_name().expect("NLB DNS name").to_owned(),
        vpc_id,
    }
}

/// Makes a VPC with three subnets (one per zone, [`crate::aws_rules::ZONE_SUBNETS`]) and `count` NLBs in it (none: just the VPC and subnets, for
/// a managed pool); returns the NLBs, the VPC and the subnets.
pub async fn create_nlbs_with_subnets(
    sdk: &SdkConfig,
    prefix: &str,
    count: usize,
) -> (Vec<TestNlb>, String, Vec<String>) {
    let vpc_id = create_vpc(sdk).await;
    let mut subnets = Vec::new();
    for (prefix, az) in crate::aws_rules::ZONE_SUBNETS {
        let zone = format!("{}{az}", region(sdk));
        subnets.push(create_subnet(sdk, &vpc_id, &format!("{prefix}0/24"), &zone).await);
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let mut nlbs = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let out = elb
            .create_load_balancer()
            .name(&name)
            .r#type(LoadBalancerTypeEnum::Network)
            .set_subnets(Some(subnets.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating NLB {name} in moto: {e:?}"));
        let lb = &out.load_balancers()[0];
        nlbs.push(TestNlb {
            arn: lb.load_balancer_arn().expect("NLB ARN").to_owned(),
            dns_name: lb.dns_name().expect("NLB DNS name").to_owned(),
            vpc_id: vpc_id.clone(),
        });
    }
    (nlbs, vpc_id, subnets)
}

/// Turns an NLB's cross-zone load balancing on or off (moto's default, as AWS's: off).
pub async fn set_nlb_cross_zone(sdk: &SdkConfig, nlb_arn: &str, enabled: bool) {
    aws_sdk_elasticloadbalancingv2::Client::new(sdk)
        .modify_load_balancer_attributes()
        .load_balancer_arn(nlb_arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
                .key("load_balancing.cross_zone.enabled")
                .value(if enabled { "true" } else { "false" })
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("setting cross-zone of {nlb_arn} in moto: {e:?}"));
}

/// Makes several NLBs sharing one VPC, for a pool.
pub async fn create_nlbs(sdk: &SdkConfig, prefix: &str, count: usize) -> Vec<TestNlb> {
    create_nlbs_with_subnets(sdk, prefix, count.max(1)).await.0
}

fn region(sdk: &SdkConfig) -> String {
    sdk.region()
        .expect("the bed's SDK config has a region")
        .to_string()
}

/// Makes a VPC through EC2's query API (the Rust EC2 SDK is too large to build for two calls).
pub async fn create_vpc(sdk: &SdkConfig) -> String {
    let body = ec2_call(
        sdk,
        &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
    )
    .await;
    xml_value(&body, "vpcId").unwrap_or_else(|| panic!("CreateVpc answered without vpcId: {body}"))
}

/// Makes a subnet in `vpc_id`.
pub async fn create_subnet(sdk: &SdkConfig, vpc_id: &str, cidr: &str, zone: &str) -> String {
    let body = ec2_call(
        sdk,
        &[
            ("Action", "CreateSubnet"),
            ("VpcId", vpc_id),
            ("CidrBlock", cidr),
            ("AvailabilityZone", zone),
        ],
    )
    .await;
    xml_value(&body, "subnetId")
        .unwrap_or_else(|| panic!("CreateSubnet answered without subnetId: {body}"))
}

/// A signed EC2 query call to moto; panics on any failure (test fixtures only).
async fn ec2_call(sdk: &SdkConfig, params: &[(&str, &str)]) -> String {
    let endpoint = crate::Bed::get().aws_endpoint();
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut form = String::from("Version=2016-11-15");
    for (k, v) in params {
        form.push_str(&format!("&{k}={}", encode(v)));
    }
    let url = format!("http://{host}/");
    let headers = [
        ("host", host.as_str()),
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    ];
    let credentials = Credentials::new("testing", "testing", None, None, "test-bed");
    let identity = Identity::from(credentials);
    let region = region(sdk);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(form.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signing").into_parts();
    let mut request = format!(
        "POST / HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        form.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in instructions.headers() {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&form);
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .unwrap_or_else(|e| panic!("connecting to moto at {host}: {e}"));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sending the EC2 call");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("reading the EC2 answer");
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "EC2 {params:?} failed: {response}"
    );
    response
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

/// An SQS queue that receives every event of `bus` matching `pattern` through a rule.
pub async fn queue_behind_rule(sdk: &SdkConfig, bus: &str, name: &str, pattern: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("creating the SQS queue")
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("reading the queue ARN")
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue ARN");
    events
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern)
        .send()
        .await
        .expect("creating the rule");
    events
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("adding the queue as the rule's target");
    queue_url
}

/// Receives messages from `queue_url` until `count` arrived or `timeout` passed; each body is
/// parsed as JSON (EventBridge delivers the event itself).
pub async fn receive_json(
    sdk: &SdkConfig,
    queue_url: &str,
    count: usize,
    timeout: std::time::Duration,
) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && tokio::time::Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receiving from SQS");
        for m in received.messages() {
            let body = m.body().unwrap_or_default();
            out.push(
                serde_json::from_str(body)
                    .unwrap_or_else(|e| panic!("message is not JSON ({e}): {body}")),
            );
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("deleting a received message");
            }
        }
    }
    out
}

/// A claims table and a pool of NLBs made for one test.
#[derive(Debug, Clone)]
pub struct PoolFixture {
    /// The claims table.
    pub table: String,
    /// The pool's NLBs, sharing one VPC.
    pub nlbs: Vec<TestNlb>,
    /// The pool set naming them as pool `default`.
    pub pools: nlb_port_pool::model::pool::PoolSet,
}

/// Makes a claims table and `count` NLBs forming pool `default` with `ports` and `quota`.
pub async fn pool_fixture(
    sdk: &SdkConfig,
    prefix: &str,
    count: usize,
    ports: &str,
    quota: u32,
) -> PoolFixture {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let table = crate::unique_name(prefix);
    nlb_port_pool::adapters::dynamo::table::create_table(&dynamodb, &table)
        .await
        .expect("creating the claims table");
    let nlbs = create_nlbs(sdk, &crate::unique_name(prefix), count).await;
    let arns: Vec<String> = nlbs.iter().map(|n| format!("\"{}\"", n.arn)).collect();
    let pools = nlb_port_pool::model::pool::PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"{ports}","listenerQuota":{quota}}}}}"#,
        arns.join(",")
    ))
    .expect("pool JSON");
    PoolFixture { table, nlbs, pools }
}
