//! Each function acts only on events about its own cluster (`detail.cluster` = `CLUSTER_NAME`).
//! No bed needed: the functions here can reach neither Kubernetes nor AWS, so an event that got
//! past the check fails, and one that is ignored proves no call was tried.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use handlers::{Deps, Event, OTHER_CLUSTER};
use lambda_runtime::{Context, LambdaEvent};
use nlb_port_pool::model::config::{FunctionConfig, KubeAccess};
use nlb_port_pool::model::pool::PoolSet;
use nlb_port_pool::model::target_policy::TargetPolicy;

/// Functions of cluster `cluster` whose kubeconfig does not exist and whose AWS endpoint is a
/// closed port: any Kubernetes or AWS call fails.
fn unreachable_deps(cluster: &str) -> Deps {
    let config = FunctionConfig {
        cluster_name: cluster.to_owned(),
        table_name: "claims".into(),
        vpc_id: "vpc-1".into(),
        pools: PoolSet::from_json(
            r#"{"default":{"nlbArns":["arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/a/1"],"ports":"30000-30099"}}"#,
        )
        .expect("pools"),
        kube: KubeAccess::Kubeconfig("/nonexistent/kubeconfig".into()),
        namespaces: vec![],
        targets: TargetPolicy::default(),
        shared_clusters: vec![],
    };
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .endpoint_url("http://127.0.0.1:1")
        .build();
    Deps::new("test", config, &sdk, Duration::ZERO)
}

/// The sample event `file` of events/ (they name cluster `local`).
fn sample(file: &str) -> Event {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let event: EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&text).expect("sample JSON");
    assert_eq!(event.detail["cluster"], "local", "{file}");
    LambdaEvent::new(event, Context::default())
}

async fn handle(deps: &Deps, file: &str) -> Result<handlers::Summary, handlers::Error> {
    match file {
        "service-changed.json" => handlers::on_service_changed(deps, sample(file)).await,
        "service-deleted.json" => handlers::on_service_deleted(deps, sample(file)).await,
        "endpoints-changed.json" => handlers::on_endpoints_changed(deps, sample(file)).await,
        other => panic!("no handler for {other}"),
    }
}

const FORWARDER_SAMPLES: [&str; 3] = [
    "service-changed.json",
    "service-deleted.json",
    "endpoints-changed.json",
];

#[tokio::test]
async fn an_event_about_another_cluster_is_ignored_without_a_call() {
    // GIVEN the functions of cluster "prod", and the samples, about cluster "local"
    let deps = unreachable_deps("prod");
    for file in FORWARDER_SAMPLES {
        // WHEN each is handled
        let summary = handle(&deps, file)
            .await
            .unwrap_or_else(|e| panic!("{file}: a call was tried: {e}"));

        // THEN it succeeds (no retry, no dead letter) and says why nothing was done
        assert!(
            summary.outcome.contains(OTHER_CLUSTER),
            "{file}: {summary:?}"
        );
        assert!(summary.service.starts_with("local/"), "{file}: {summary:?}");
    }
}

#[tokio::test]
async fn an_event_about_its_own_cluster_goes_on_to_the_cluster() {
    // GIVEN the functions of cluster "local", which the samples name
    let deps = unreachable_deps("local");
    for file in FORWARDER_SAMPLES {
        // WHEN each is handled THEN it gets past the check and fails on the kubeconfig
        let err = handle(&deps, file).await.expect_err(file);
        assert!(
            err.to_string().contains("kubeconfig"),
            "{file}: expected the kubeconfig failure, got: {err}"
        );
    }
}
