//! What listener options cost in AWS calls, against the test bed (moto + kube-apiserver).
//!
//! Run with a bed up: `cargo run --profile benchmark -p handlers --example bench_options [N]`
//! (N Services per profile, default 40). Three profiles of one-port TCP Services, each with a
//! warm reconciler of its own: plain; target group attributes (PROXY v2, a 60 s
//! deregistration delay, connection termination); TLS (two ACM certificates, the default
//! policy). Each profile's Services go through four passes, one Service at a time: allocation
//! (the events' way), a change in place (the delay, or the default certificate), the same
//! event again (nothing to do), and the sweep's thorough check. Prints Markdown for
//! BENCHMARKS.md: median calls per Service by service and operation, median wall time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use nlb_port_pool::adapters::aws::{AwsCertificates, AwsLoadBalancing};
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::contract::listener_options::{
    CONNECTION_TERMINATION, DEREGISTRATION_DELAY, PROXY_PROTOCOL, SSL_CERT,
};
use nlb_port_pool::model::claims::RunToken;
use nlb_port_pool::reconcile::{Outcome, Reconciler};
use testbed::acm_fixtures::imported_certificate;
use testbed::call_counter::{CallCounter, Calls};
use testbed::kube_fixtures::{PortSpec, create_namespace, service};
use testbed::moto::pool_fixture;
use testbed::{Bed, unique_name};

/// A profile: its name, the annotations its Services start with, and the change made in place.
struct Profile {
    name: &'static str,
    annotations: Vec<(&'static str, String)>,
    change: Option<(&'static str, String)>,
}

/// One pass's calls for one Service, and its wall time.
type Run = (Calls, Duration);

fn median_of(runs: &[Run]) -> (usize, String, Duration) {
    let mut totals: Vec<(usize, usize)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.0.total(), i))
        .collect();
    totals.sort_unstable();
    let (total, at) = totals[totals.len() / 2];
    let ops = runs[at]
        .0
        .counts
        .iter()
        .map(|(op, n)| format!("{} {n}", op.split('.').next_back().unwrap_or(op)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut times: Vec<Duration> = runs.iter().map(|r| r.1).collect();
    times.sort_unstable();
    (total, ops, times[times.len() / 2])
}

/// Calls of one pass by service prefix (`ElasticLoadBalancingV2`, `DynamoDB`, `ACM`), summed.
fn by_service(runs: &[Run]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (calls, _) in runs {
        for (op, n) in &calls.counts {
            let service = op.split('.').next().unwrap_or(op).to_owned();
            *out.entry(service).or_default() += n;
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let per_profile: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("N: a number of Services"))
        .unwrap_or(40);
    let bed = Bed::get();
    let sdk = bed.sdk_config_at(bed.aws_endpoint(), None).await;
    let admin = bed.kube_client().await;
    let nlbs = (3 * per_profile).div_ceil(50) + 1;
    let fixture = pool_fixture(&sdk, "bench-options", nlbs, "30000-32767", 50).await;
    let namespace = unique_name("bench-options");
    create_namespace(&admin, &namespace).await;
    let cluster = KubeCluster::new(admin.clone(), "bench", "bench");
    let certs = [
        imported_certificate(&sdk, "a.bench.example").await,
        imported_certificate(&sdk, "b.bench.example").await,
        imported_certificate(&sdk, "c.bench.example").await,
    ]
    .map(|c| c.expect("importing a certificate"));
    let profiles = [
        Profile {
            name: "plain",
            annotations: vec![],
            change: None,
        },
        Profile {
            name: "attributes",
            annotations: vec![
                (PROXY_PROTOCOL, "v2".into()),
                (DEREGISTRATION_DELAY, "60".into()),
                (CONNECTION_TERMINATION, "true".into()),
            ],
            change: Some((DEREGISTRATION_DELAY, "30".into())),
        },
        Profile {
            name: "TLS",
            annotations: vec![(SSL_CERT, format!("{},{}", certs[0], certs[1]))],
            change: Some((SSL_CERT, format!("{},{}", certs[2], certs[1]))),
        },
    ];
    let api: Api<Service> = Api::namespaced(admin.clone(), &namespace);
    println!("### Listener options: calls per Service ({per_profile} Services per profile)\n");
    println!(
        "| profile | pass | median calls | of which (the median Service) | median wall time |"
    );
    println!("|---|---|---|---|---|");
    let mut totals = Vec::new();
    for profile in &profiles {
        let counter = CallCounter::default();
        let (dynamodb, elb) = counter.clients(&sdk);
        let acm = aws_sdk_acm::config::Builder::from(&sdk)
            .interceptor(counter.clone())
            .build();
        let reconciler = Reconciler::new(
            "bench",
            &fixture.nlbs[0].vpc_id,
            fixture.pools.clone(),
            Arc::new(DynamoClaimStore::new(dynamodb, &fixture.table)),
            Arc::new(AwsLoadBalancing::new(elb)),
        )
        .with_certificates(Arc::new(AwsCertificates::new(
            aws_sdk_acm::Client::from_conf(acm),
        )));
        let names: Vec<String> = (0..per_profile)
            .map(|i| format!("{}-{i:03}", profile.name.to_lowercase()))
            .collect();
        let notes: Vec<(&str, &str)> =
            std::iter::once((nlb_port_pool::contract::annotations::AUTO_ASSIGN, "true"))
                .chain(profile.annotations.iter().map(|(k, v)| (*k, v.as_str())))
                .collect();
        for name in &names {
            let svc = service(
                &namespace,
                name,
                &notes,
                &[PortSpec::tcp("game", 7777, 7777)],
            );
            api.create(&PostParams::default(), &svc)
                .await
                .expect("creating a Service");
        }
        // One Service at a time, the events' way or the sweep's: its calls and wall time.
        let pass = |thorough: bool| {
            let (names, reconciler, cluster, namespace, counter) =
                (&names, &reconciler, &cluster, &namespace, &counter);
            async move {
                let mut runs = Vec::new();
                for name in names {
                    counter.take();
                    let started = Instant::now();
                    let outcome = if thorough {
                        reconciler
                            .reconcile_service(cluster, namespace, name, None)
                            .await
                    } else {
                        reconciler
                            .reconcile_service_as(
                                &RunToken::random(),
                                cluster,
                                namespace,
                                name,
                                None,
                            )
                            .await
                    };
                    assert!(
                        matches!(outcome, Ok(Outcome::Allocated { .. })),
                        "{name}: {outcome:?}"
                    );
                    runs.push((counter.take(), started.elapsed()));
                }
                runs
            }
        };
        let mut passes = vec![("allocation", pass(false).await)];
        if let Some((key, value)) = &profile.change {
            for name in &names {
                let patch = serde_json::json!({"metadata": {"annotations": {*key: value}}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("changing an option");
            }
            passes.push(("change in place", pass(false).await));
        }
        passes.push(("the same event again", pass(false).await));
        passes.push(("the sweep's check", pass(true).await));
        for (what, runs) in &passes {
            let (total, ops, time) = median_of(runs);
            println!(
                "| {} | {what} | {total} | {ops} | {:.1} ms |",
                profile.name,
                time.as_secs_f64() * 1e3
            );
            totals.push((profile.name, *what, by_service(runs)));
        }
    }
    println!("\nCalls by service, summed over each pass's {per_profile} Services:\n");
    for (profile, what, calls) in totals {
        println!("- {profile}, {what}: {calls:?}");
    }
}
