//! [`ProvisioningDelay`] on answers of moto's shape (moto 5.2.5, copied from its wire
//! answers), and once through the fault proxy and the ELBv2 SDK's own XML parser.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::fault_proxy::{FaultPlan, FaultProxy};

const ARN_A: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/nlb-a/743de895ece4eefc";
const ARN_B: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/nlb-b/2e0eb956276fef40";

/// One `<member>` of moto's `<LoadBalancers>`, with its two availability zones.
fn lb(arn: &str, state: &str) -> String {
    format!(
        "<member><LoadBalancerArn>{arn}</LoadBalancerArn>\
         <DNSName>nlb-1.us-west-2.elb.amazonaws.com</DNSName>\
         <CanonicalHostedZoneId>Z2P70J7EXAMPLE</CanonicalHostedZoneId>\
         <CreatedTime>2026-12-02T06:57:34.914000Z</CreatedTime>\
         <LoadBalancerName>nlb</LoadBalancerName><VpcId>vpc-1cc6eeba458788753</VpcId>\
         <State><Code>{state}</Code></State><Type>network</Type>\
         <AvailabilityZones><member><ZoneName>us-west-2a</ZoneName>\
         <SubnetId>subnet-dc44c9185b37447d3</SubnetId></member><member>\
         <ZoneName>us-west-2b</ZoneName><SubnetId>subnet-14eab420d009094aa</SubnetId>\
         </member></AvailabilityZones><SecurityGroups/><IpAddressType>ipv4</IpAddressType>\
         </member>"
    )
}

/// moto's whole answer to `action` listing `members`.
fn answer(action: &str, members: &str) -> String {
    format!(
        "<{action}Response xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
         <{action}Result><LoadBalancers>{members}</LoadBalancers></{action}Result>\
         <ResponseMetadata><RequestId>DuVDwV0zJJNtJcTqT8uyxr9LF6AHoKy7</RequestId>\
         </ResponseMetadata></{action}Response>"
    )
}

fn call(action: &str) -> ElbCall {
    ElbCall::parse(format!("Action={action}&Version=2015-12-01").as_bytes()).expect("call")
}

/// The state codes of `body`'s load balancers, in order.
fn codes(body: &str) -> Vec<String> {
    load_balancer_members(body)
        .into_iter()
        .map(|m| {
            let state = element_text(&body[m], "State")
                .unwrap_or_default()
                .to_owned();
            element_text(&state, "Code").unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn a_created_nlb_is_provisioning_until_the_delay_has_passed() {
    // GIVEN a rule with a minute's delay, and an NLB created through it at t0
    let rule = ProvisioningDelay::new(Duration::from_secs(60));
    let t0 = Instant::now();
    let created = rule.rewrite_at(
        &call("CreateLoadBalancer"),
        answer("CreateLoadBalancer", &lb(ARN_A, "provisioning")),
        t0,
    );
    assert_eq!(codes(&created), ["provisioning"]);
    let describe = call("DescribeLoadBalancers");
    let moto = answer("DescribeLoadBalancers", &lb(ARN_A, "active"));

    // WHEN it is described within the minute THEN it is provisioning, all else as moto said
    let early = rule.rewrite_at(&describe, moto.clone(), t0 + Duration::from_secs(59));
    assert_eq!(codes(&early), ["provisioning"]);
    assert_eq!(
        early,
        moto.replace("<Code>active</Code>", "<Code>provisioning</Code>")
    );

    // WHEN it is described after the minute THEN moto's answer (active) shows through
    let late = rule.rewrite_at(&describe, moto.clone(), t0 + Duration::from_secs(60));
    assert_eq!(late, moto);
    assert_eq!(rule.reported.load(Ordering::Relaxed), 2);
}

#[test]
fn only_nlbs_the_rule_knows_of_are_rewritten() {
    // GIVEN an NLB created through the rule (A) and one made straight in moto (B)
    let rule = ProvisioningDelay::new(Duration::from_secs(60));
    let t0 = Instant::now();
    rule.rewrite_at(
        &call("CreateLoadBalancer"),
        answer("CreateLoadBalancer", &lb(ARN_A, "provisioning")),
        t0,
    );

    // WHEN both are described, B first
    let body = rule.rewrite_at(
        &call("DescribeLoadBalancers"),
        answer(
            "DescribeLoadBalancers",
            &format!("{}{}", lb(ARN_B, "active"), lb(ARN_A, "active")),
        ),
        t0,
    );

    // THEN only A is provisioning
    assert_eq!(codes(&body), ["active", "provisioning"]);
    // AND once B is counted as created, it is provisioning too
    rule.created(ARN_B);
    let body = rule.rewrite(
        &call("DescribeLoadBalancers"),
        answer("DescribeLoadBalancers", &lb(ARN_B, "active")),
    );
    assert_eq!(codes(&body), ["provisioning"]);
}

#[test]
fn a_failed_nlb_reports_failed_for_good() {
    // GIVEN an NLB created through the rule, then made to fail
    let rule = ProvisioningDelay::new(Duration::from_secs(60));
    let t0 = Instant::now();
    rule.rewrite_at(
        &call("CreateLoadBalancer"),
        answer("CreateLoadBalancer", &lb(ARN_A, "provisioning")),
        t0,
    );
    rule.fail(ARN_A);

    // WHEN it is described long after the delay THEN it is failed, not moto's active
    let body = rule.rewrite_at(
        &call("DescribeLoadBalancers"),
        answer("DescribeLoadBalancers", &lb(ARN_A, "active")),
        t0 + Duration::from_secs(3600),
    );
    assert_eq!(codes(&body), ["failed"]);
}

#[test]
fn the_state_is_replaced_whatever_its_shape() {
    // GIVEN NLBs counted as created, described with a state of other shapes than moto's
    let rule = ProvisioningDelay::new(Duration::from_secs(60));
    rule.created(ARN_A);
    rule.created(ARN_B);
    let with_reason = lb(ARN_A, "active").replace(
        "<State><Code>active</Code></State>",
        "<State>\n  <Code>active_impaired</Code>\n  <Reason>impaired</Reason>\n</State>",
    );
    let without_state = lb(ARN_B, "active").replace("<State><Code>active</Code></State>", "");
    let describe = call("DescribeLoadBalancers");

    // WHEN they are described THEN each has one state: provisioning, with no Reason left
    let body = rule.rewrite(
        &describe,
        answer(
            "DescribeLoadBalancers",
            &format!("{with_reason}{without_state}"),
        ),
    );
    assert_eq!(codes(&body), ["provisioning", "provisioning"]);
    assert_eq!(body.matches("<State>").count(), 2, "{body}");
    assert!(!body.contains("Reason"), "{body}");

    // AND an empty state element is replaced too
    let empty = lb(ARN_A, "active").replace("<State><Code>active</Code></State>", "<State/>");
    let body = rule.rewrite(&describe, answer("DescribeLoadBalancers", &empty));
    assert_eq!(codes(&body), ["provisioning"]);
    assert!(!body.contains("<State/>"), "{body}");
}

#[test]
fn other_answers_pass_untouched() {
    let rule = ProvisioningDelay::new(Duration::from_secs(60));
    rule.created(ARN_A);
    // Another action naming the NLB.
    let tags = format!(
        "<DescribeTagsResponse><DescribeTagsResult><TagDescriptions><member>\
         <ResourceArn>{ARN_A}</ResourceArn><Tags/></member></TagDescriptions>\
         </DescribeTagsResult></DescribeTagsResponse>"
    );
    assert_eq!(rule.rewrite(&call("DescribeTags"), tags.clone()), tags);
    // No load balancer at all.
    let none = "<DescribeLoadBalancersResponse><DescribeLoadBalancersResult><LoadBalancers/>\
                </DescribeLoadBalancersResult></DescribeLoadBalancersResponse>";
    assert_eq!(
        rule.rewrite(&call("DescribeLoadBalancers"), none.to_owned()),
        none
    );
    assert_eq!(rule.reported.load(Ordering::Relaxed), 0);
}

/// A stand-in for moto that answers every request with `answer_to(action)`.
async fn fake_moto(answer_to: fn(&str) -> String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The SDK's form body is short: read until the head and Content-Length bytes.
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    let action = ElbCall::parse(body.as_bytes()).map(|c| c.action);
                    let xml = answer_to(action.as_deref().unwrap_or_default());
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{xml}",
                        xml.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    return;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn the_sdk_reads_the_rewritten_states() {
    use aws_sdk_elasticloadbalancingv2::types::LoadBalancerStateEnum;

    // GIVEN the rule in a proxy in front of a moto that makes NLB A
    let upstream = fake_moto(|action| match action {
        "CreateLoadBalancer" => answer(action, &lb(ARN_A, "provisioning")),
        _ => answer("DescribeLoadBalancers", &lb(ARN_A, "active")),
    })
    .await;
    let rule = Arc::new(ProvisioningDelay::new(Duration::from_secs(600)));
    let proxy = FaultProxy::start_with(&upstream, FaultPlan::none(), vec![rule.clone()]).await;
    // The project's loader: it brings the HTTP client (the SDK is built without one).
    let sdk = nlb_port_pool::adapters::aws::sdk::config_loader()
        .region(aws_config::Region::new("us-west-2"))
        .endpoint_url(&proxy.url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let state = |lbs: &[aws_sdk_elasticloadbalancingv2::types::LoadBalancer]| {
        lbs.first()
            .and_then(|lb| lb.state())
            .and_then(|s| s.code())
            .cloned()
    };

    // WHEN it is created and described through the proxy
    let created = elb
        .create_load_balancer()
        .name("nlb-a")
        .send()
        .await
        .expect("create");
    let described = elb
        .describe_load_balancers()
        .load_balancer_arns(ARN_A)
        .send()
        .await
        .expect("describe");

    // THEN the SDK reads provisioning both times
    assert_eq!(
        state(created.load_balancers()),
        Some(LoadBalancerStateEnum::Provisioning)
    );
    assert_eq!(
        state(described.load_balancers()),
        Some(LoadBalancerStateEnum::Provisioning)
    );
    // AND once failed, failed
    rule.fail(ARN_A);
    let described = elb
        .describe_load_balancers()
        .send()
        .await
        .expect("describe");
    assert_eq!(
        state(described.load_balancers()),
        Some(LoadBalancerStateEnum::Failed)
    );
}

#[test]
fn a_stuck_nlb_stays_provisioning_and_a_named_one_takes_its_own_delay() {
    // GIVEN a rule with a 2 s delay whose next NLB sticks, and NLBs named `slow` taking 60 s
    let rule = ProvisioningDelay::new(Duration::from_secs(2));
    rule.stick_next(1);
    rule.delay_named("slow", Duration::from_secs(60));
    let t0 = Instant::now();
    let create = |name: &str| {
        ElbCall::parse(format!("Action=CreateLoadBalancer&Name={name}").as_bytes()).expect("call")
    };

    // WHEN three NLBs are created at t0: the stuck one, a slow one and a plain one
    rule.rewrite_at(
        &create("plain-1"),
        answer("CreateLoadBalancer", &lb(ARN_A, "provisioning")),
        t0,
    );
    rule.rewrite_at(
        &create("npp-slow-1"),
        answer("CreateLoadBalancer", &lb(ARN_B, "provisioning")),
        t0,
    );
    const ARN_C: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/c/1";
    rule.rewrite_at(
        &create("plain-2"),
        answer("CreateLoadBalancer", &lb(ARN_C, "provisioning")),
        t0,
    );

    // THEN ten seconds later the stuck and the slow one provision, the plain one is active;
    // an hour later only the stuck one does
    let described = |at: Instant| {
        codes(
            &rule.rewrite_at(
                &call("DescribeLoadBalancers"),
                answer(
                    "DescribeLoadBalancers",
                    &[ARN_A, ARN_B, ARN_C]
                        .iter()
                        .map(|a| lb(a, "active"))
                        .collect::<String>(),
                ),
                at,
            ),
        )
    };
    assert_eq!(
        described(t0 + Duration::from_secs(10)),
        ["provisioning", "provisioning", "active"]
    );
    assert_eq!(
        described(t0 + Duration::from_secs(3600)),
        ["provisioning", "active", "active"]
    );
}
