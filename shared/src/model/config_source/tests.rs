use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine;

use super::*;
use crate::model::config::{ConfigError, FunctionConfig, KubeAccess};
use crate::model::target_policy::TargetPolicy;

const ARN_A: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/a/1";
const POOLS: &str = r#"{"default":{"nlbArns":["arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/a/1"],"ports":"30000-30099"}}"#;
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/// AWS as a few maps; records the calls made.
#[derive(Default)]
struct Fake {
    parameters: HashMap<String, String>,
    lbs: Vec<NamedLoadBalancer>,
    cluster: Option<ClusterEndpoint>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn with_nlbs(count: usize) -> Self {
        let lbs = (0..count)
            .map(|i| NamedLoadBalancer {
                name: format!("games-{i}"),
                arn: format!(
                    "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/games-{i}/{i}"
                ),
                kind: "network".to_owned(),
            })
            .collect();
        Self {
            lbs,
            ..Self::default()
        }
    }

    fn with_cluster(cluster: ClusterEndpoint) -> Self {
        Self {
            cluster: Some(cluster),
            ..Self::default()
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn note(&self, call: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

#[async_trait]
impl ConfigLookups for Fake {
    async fn parameter(&self, name: &str) -> Result<String, String> {
        self.note(format!("GetParameter {name}"));
        self.parameters
            .get(name)
            .cloned()
            .ok_or_else(|| "ssm:GetParameter: ParameterNotFound".to_owned())
    }

    async fn load_balancers(&self, names: &[String]) -> Result<Vec<NamedLoadBalancer>, String> {
        self.note(format!("DescribeLoadBalancers {}", names.len()));
        assert!(names.len() <= MAX_NAMES_PER_CALL, "{} names", names.len());
        Ok(self
            .lbs
            .iter()
            .filter(|lb| names.contains(&lb.name))
            .cloned()
            .collect())
    }

    async fn cluster(&self, name: &str) -> Result<ClusterEndpoint, String> {
        self.note(format!("DescribeCluster {name}"));
        self.cluster
            .clone()
            .ok_or_else(|| "ResourceNotFoundException: No cluster found".to_owned())
    }
}

fn complete() -> Vec<(&'static str, String)> {
    vec![
        ("CLUSTER_NAME", "prod".to_owned()),
        ("TABLE_NAME", "claims".to_owned()),
        ("VPC_ID", "vpc-1".to_owned()),
        ("POOLS", POOLS.to_owned()),
        ("KUBECONFIG", "/tmp/kubeconfig".to_owned()),
    ]
}

fn env(pairs: &[(&'static str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn without(name: &str) -> Vec<(&'static str, String)> {
    complete().into_iter().filter(|(k, _)| *k != name).collect()
}

async fn load(
    pairs: &[(&'static str, String)],
    fake: &Fake,
) -> Result<FunctionConfig, ConfigError> {
    FunctionConfig::load(&env(pairs), fake).await
}

#[tokio::test]
async fn reads_a_complete_environment_without_asking_aws() {
    let fake = Fake::default();
    let config = load(&complete(), &fake)
        .await
        .expect("complete environment");
    assert_eq!(config.cluster_name, "prod");
    assert_eq!(config.table_name, "claims");
    assert_eq!(
        config.kube,
        KubeAccess::Kubeconfig(PathBuf::from("/tmp/kubeconfig"))
    );
    assert_eq!(config.pools.pools().count(), 1);
    assert!(config.manages("anything"), "no list: every namespace");
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn reads_the_namespace_list_and_the_target_policy() {
    let mut pairs = complete();
    pairs.push(("WATCH_NAMESPACES", "games, tools".to_owned()));
    let config = load(&pairs, &Fake::default()).await.expect("valid");
    assert!(config.manages("games") && config.manages("tools") && !config.manages("other"));
    assert_eq!(
        config.targets,
        TargetPolicy::default(),
        "unset: the controller only"
    );

    for (name, bad) in [
        ("WATCH_NAMESPACES", "games,Bad_NS"),
        ("TRUSTED_ENDPOINTSLICE_MANAGERS", "ok,bad manager"),
        ("TARGET_CIDRS", "10.0.0.1/16"),
    ] {
        let mut pairs = complete();
        pairs.push((name, bad.to_owned()));
        let err = load(&pairs, &Fake::default()).await.expect_err(bad);
        assert_eq!(err.name, name, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("environment variable {name}: "))
        );
    }
}

#[tokio::test]
async fn names_each_missing_variable() {
    for missing in ["CLUSTER_NAME", "TABLE_NAME", "VPC_ID", "POOLS"] {
        let err = load(&without(missing), &Fake::default())
            .await
            .expect_err(missing);
        assert_eq!(err.name, missing);
        assert!(err.to_string().contains("is required"), "{err}");
    }
    let mut pairs = without("TABLE_NAME");
    pairs.push(("TABLE_NAME", "  ".to_owned()));
    let err = load(&pairs, &Fake::default()).await.expect_err("blank");
    assert_eq!(err.name, "TABLE_NAME", "blank counts as missing");
}

#[tokio::test]
async fn pools_come_from_the_parameter_pools_parameter_names() {
    let mut fake = Fake::default();
    fake.parameters
        .insert("/npp/s/pools".to_owned(), POOLS.to_owned());
    let mut pairs = without("POOLS");
    pairs.push(("POOLS_PARAMETER", "/npp/s/pools".to_owned()));
    let config = load(&pairs, &fake).await.expect("parameter");
    let pool = config.pools.get("default").expect("default pool");
    assert_eq!(pool.nlb_arns(), [ARN_A.to_owned()]);
    assert_eq!(fake.calls(), ["GetParameter /npp/s/pools"]);

    // A parameter that is not there: the error names the variable and the parameter.
    let err = load(&pairs, &Fake::default()).await.expect_err("missing");
    assert_eq!(err.name, "POOLS_PARAMETER");
    assert!(
        err.problem.contains("/npp/s/pools") && err.problem.contains("ParameterNotFound"),
        "{err}"
    );

    // Both: which one is meant is not guessed.
    pairs.push(("POOLS", POOLS.to_owned()));
    let err = load(&pairs, &fake).await.expect_err("both");
    assert_eq!(err.name, "POOLS");
    assert!(err.problem.contains("POOLS_PARAMETER"), "{err}");
}

#[tokio::test]
async fn nlb_names_become_arns_twenty_names_a_call() {
    let fake = Fake::with_nlbs(100);
    let names: Vec<String> = (0..100).map(|i| format!("\"games-{i}\"")).collect();
    let json = format!(
        r#"{{"default":{{"nlbArns":[{},"{ARN_A}"],"ports":"30000-32767"}}}}"#,
        names.join(",")
    );
    let mut pairs = without("POOLS");
    pairs.push(("POOLS", json));
    let config = load(&pairs, &fake).await.expect("every name known");
    let arns = config
        .pools
        .get("default")
        .expect("default")
        .nlb_arns()
        .to_vec();
    assert_eq!(arns.len(), 101);
    assert_eq!(arns[0], fake.lbs[0].arn);
    assert_eq!(arns[99], fake.lbs[99].arn);
    assert_eq!(arns[100], ARN_A, "ARNs are kept as given");
    assert_eq!(fake.calls(), vec!["DescribeLoadBalancers 20".to_owned(); 5]);
}

#[tokio::test]
async fn an_unknown_or_non_network_name_stops_start_up_naming_it() {
    let mut fake = Fake::with_nlbs(2);
    let mut pairs = without("POOLS");
    pairs.push((
        "POOLS",
        r#"{"eu":{"nlbArns":["games-0","games-7"],"ports":"1-9"}}"#.to_owned(),
    ));
    let err = load(&pairs, &fake).await.expect_err("unknown name");
    assert_eq!(err.name, "POOLS");
    assert!(
        err.problem.contains(r#"pool "eu""#) && err.problem.contains(r#""games-7""#),
        "{err}"
    );

    fake.lbs[0].kind = "application".to_owned();
    let mut pairs = without("POOLS");
    pairs.push((
        "POOLS",
        r#"{"eu":{"nlbArns":["games-0"],"ports":"1-9"}}"#.to_owned(),
    ));
    let err = load(&pairs, &fake).await.expect_err("an ALB");
    assert!(
        err.problem.contains(r#""games-0""#) && err.problem.contains("application"),
        "{err}"
    );
}

fn eks_env() -> Vec<(&'static str, String)> {
    without("KUBECONFIG")
}

#[tokio::test]
async fn without_kubeconfig_or_eks_variables_the_cluster_is_described() {
    let fake = Fake::with_cluster(ClusterEndpoint {
        endpoint: Some("https://abc.gr7.us-west-2.eks.amazonaws.com".to_owned()),
        ca_data: Some(base64::engine::general_purpose::STANDARD.encode(PEM)),
        status: Some("ACTIVE".to_owned()),
    });
    let config = load(&eks_env(), &fake).await.expect("described");
    assert_eq!(
        config.kube,
        KubeAccess::Eks {
            endpoint: "https://abc.gr7.us-west-2.eks.amazonaws.com".to_owned(),
            ca_pem: PEM.to_owned(),
        }
    );
    assert_eq!(fake.calls(), ["DescribeCluster prod"]);

    // The variables still win: no call.
    let fake_unused = Fake::default();
    let mut pairs = eks_env();
    pairs.push(("EKS_ENDPOINT", "https://override.example".to_owned()));
    pairs.push((
        "EKS_CA_DATA",
        base64::engine::general_purpose::STANDARD.encode(PEM),
    ));
    let config = load(&pairs, &fake_unused).await.expect("override");
    assert!(
        matches!(config.kube, KubeAccess::Eks { ref endpoint, .. } if endpoint == "https://override.example")
    );
    assert!(fake_unused.calls().is_empty());
}

#[tokio::test]
async fn a_cluster_that_cannot_be_reached_stops_start_up_naming_it() {
    let err = load(&eks_env(), &Fake::default())
        .await
        .expect_err("no cluster");
    assert_eq!(err.name, "CLUSTER_NAME");
    assert!(
        err.problem.contains("DescribeCluster of \"prod\"") && err.problem.contains("No cluster"),
        "{err}"
    );

    let creating = Fake::with_cluster(ClusterEndpoint {
        status: Some("CREATING".to_owned()),
        ..ClusterEndpoint::default()
    });
    let err = load(&eks_env(), &creating).await.expect_err("creating");
    assert!(err.problem.contains("CREATING"), "{err}");

    // moto's answer: a made-up CA that is not base64 PEM.
    let fake_ca = Fake::with_cluster(ClusterEndpoint {
        endpoint: Some("https://abc.eks.amazonaws.com".to_owned()),
        ca_data: Some("x".repeat(1400)),
        status: Some("ACTIVE".to_owned()),
    });
    let err = load(&eks_env(), &fake_ca).await.expect_err("bad CA");
    assert_eq!(err.name, "CLUSTER_NAME");
    assert!(err.problem.contains("certificateAuthority.data"), "{err}");
}
