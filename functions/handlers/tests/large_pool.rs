//! A deployed stack's start on the bed, with a 60-NLB pool: the pools read from the SSM
//! parameter the template makes, the NLBs given by name (resolved with DescribeLoadBalancers,
//! 20 names a call), the cluster's endpoint and CA from eks:DescribeCluster; then Services
//! allocated across every NLB. Each function starts as on Lambda ([`Deps::load`]) under its
//! own role, judged by the IAM gate.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{CLUSTER, Stack};
use handlers::Deps;
use nlb_port_pool::adapters::kube::client::KubeConnector;
use nlb_port_pool::contract::annotations;
use nlb_port_pool::model::config::KubeAccess;
use nlb_port_pool::model::pool::nlb_name_of;
use testbed::config_fixtures::{create_eks_cluster, put_parameter};
use testbed::iam_gate::{GateStack, StackSpec};
use testbed::{Bed, kube_fixtures};

const NLBS: usize = 60;
const FUNCTIONS: [&str; 6] = [
    "allocate",
    "release",
    "sync-targets",
    "sweep",
    "pool",
    "reachable",
];

/// The environment template.yaml gives the functions (POOLS_PARAMETER, no EKS_* variables),
/// with the bed's namespace filter, slice manager and no ELBv2 write limit.
fn lambda_env(stack: &Stack, parameter: &str) -> HashMap<String, String> {
    [
        ("CLUSTER_NAME", CLUSTER),
        ("TABLE_NAME", stack.table.as_str()),
        ("VPC_ID", stack.nlbs[0].vpc_id.as_str()),
        ("POOLS_PARAMETER", parameter),
        ("WATCH_NAMESPACES", stack.namespace.as_str()),
        (
            "TRUSTED_ENDPOINTSLICE_MANAGERS",
            kube_fixtures::SLICE_MANAGER,
        ),
        ("CLAIM_GRACE_SECONDS", "0"),
        // moto has no account limits: no write buckets (as the local stack).
        ("ELB_WRITES_PER_SECOND", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn a_60_nlb_pool_by_name_from_ssm_starts_every_function_and_fills_every_nlb() {
    // GIVEN 60 NLBs, and a stack whose template lists them by name (PoolNlbNames) in its SSM
    // parameter, for cluster `bed` (in moto; the gate answers DescribeCluster as AWS would for
    // the bed's kube-apiserver)
    let bed = Bed::get();
    let mut stack = Stack::new("big", NLBS, "30000-30099", 1).await;
    let names: Vec<String> = stack
        .nlbs
        .iter()
        .map(|n| nlb_name_of(&n.arn).expect("an NLB ARN").to_owned())
        .collect();
    let stack_name = format!("{}-names", stack.table);
    let parameter = format!("/nlb-port-pool/{stack_name}/pools");
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let pools = format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"30000-30099","listenerQuota":1,"placement":"spread"}}}}"#,
        quoted.join(",")
    );
    put_parameter(&stack.sdk, &parameter, &pools).await;
    create_eks_cluster(&stack.sdk, CLUSTER).await;
    GateStack::answer_cluster_as_the_bed(bed, CLUSTER)
        .await
        .expect("the gate answers for the cluster");
    let gate = GateStack::register_with(
        bed,
        &StackSpec {
            stack_name: stack_name.clone(),
            cluster: CLUSTER.to_owned(),
            pool_nlb_arns: vec![String::new()],
            vpc_id: stack.nlbs[0].vpc_id.clone(),
            table: stack.table.clone(),
            bus: None,
        },
        serde_json::json!({ "PoolNlbNames": names }),
    )
    .await
    .expect("registering the stack with the IAM gate");
    let sdk = gate.sdk_config(bed).await;
    let earlier = std::mem::replace(&mut stack.gate, gate);
    if let Ok(mut gates) = stack.other_gates.lock() {
        gates.push(earlier);
    }

    // WHEN each function starts as on Lambda
    let env = lambda_env(&stack, &parameter);
    let mut started = HashMap::new();
    for function in FUNCTIONS {
        let deps = Deps::load(function, &env, &sdk)
            .await
            .unwrap_or_else(|e| panic!("{function} does not start: {e}"));
        started.insert(function, deps);
    }

    // THEN each has the 60 NLBs' ARNs, in the parameter's order, and the bed's endpoint and CA
    let arns: Vec<String> = stack.nlbs.iter().map(|n| n.arn.clone()).collect();
    let expected_kube = KubeAccess::Eks {
        endpoint: bed.kube_server().to_owned(),
        ca_pem: bed.kube_ca_pem(),
    };
    for (function, deps) in &started {
        let pool = deps.config.pools.get("default").expect("the default pool");
        assert_eq!(pool.nlb_arns(), arns.as_slice(), "{function}'s pool");
        assert_eq!(
            deps.config.kube, expected_kube,
            "{function}'s cluster access"
        );
    }
    // AND the endpoint and CA reach kube-apiserver over verified TLS: it reads the EKS token and
    // refuses it (401; the bed runs no AWS IAM authenticator), where a wrong CA would fail the
    // handshake and a wrong endpoint the connection
    let client = started["allocate"]
        .kube
        .client()
        .await
        .expect("an EKS client from DescribeCluster's answer");
    match client.apiserver_version().await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
        other => panic!("kube-apiserver should refuse the EKS token with 401: {other:?}"),
    }

    // WHEN the functions reach the bed as its admin (the token cannot) and 60 rooms arrive
    let mut take = |function: &str| {
        let mut deps = started.remove(function).expect("started");
        deps.config.kube = KubeAccess::Kubeconfig(bed.kubeconfig());
        deps.kube = KubeConnector::new(deps.config.kube.clone(), CLUSTER, &sdk);
        deps
    };
    stack.deps = take("allocate");
    stack.release = take("release");
    stack.sync_targets = take("sync-targets");
    stack.sweep = take("sweep");
    for i in 0..NLBS {
        let name = format!("room-{i}");
        stack.create_room(&name).await;
        stack
            .changed(&name)
            .await
            .unwrap_or_else(|e| panic!("allocating {name}: {e}"));
    }

    // THEN every room is Allocated, one on each NLB (quota 1): all 60 names were usable
    let mut used = BTreeSet::new();
    for i in 0..NLBS {
        let ann = stack.annotations(&format!("room-{i}")).await;
        assert_eq!(ann[annotations::STATUS], "Allocated", "room-{i}: {ann:?}");
        let listener = &ann[annotations::LISTENER_ARN];
        let nlb = arns
            .iter()
            .find(|a| listener.starts_with(&a.replace(":loadbalancer/", ":listener/")))
            .unwrap_or_else(|| panic!("room-{i}'s listener {listener} is on no pool NLB"));
        used.insert(nlb.clone());
    }
    assert_eq!(used.len(), NLBS, "every NLB holds one room");
    assert_eq!(stack.listeners().await.len(), NLBS);

    // AND release and the sweep work on the same pool: ten rooms leave
    for i in 0..10 {
        let name = format!("room-{i}");
        let uid = stack.uid(&name).await;
        stack.delete_service(&name).await;
        stack
            .deleted(&name, &uid)
            .await
            .unwrap_or_else(|e| panic!("releasing {name}: {e}"));
    }
    stack.run_sweep().await;
    assert_eq!(stack.listeners().await.len(), NLBS - 10);
}

#[tokio::test]
async fn a_pool_naming_an_nlb_that_does_not_exist_stops_start_up_naming_it() {
    // GIVEN a parameter whose pool names one real NLB and one that is not there
    let bed = Bed::get();
    let stack = Stack::new("badname", 1, "30000-30099", 50).await;
    let real = nlb_name_of(&stack.nlbs[0].arn)
        .expect("an NLB ARN")
        .to_owned();
    let missing = format!("{real}-gone");
    let parameter = format!("/nlb-port-pool/{}-bad/pools", stack.table);
    put_parameter(
        &stack.sdk,
        &parameter,
        &format!(r#"{{"default":{{"nlbArns":["{real}","{missing}"],"ports":"30000-30099"}}}}"#),
    )
    .await;
    let mut env = lambda_env(&stack, &parameter);
    env.insert(
        "KUBECONFIG".to_owned(),
        bed.kubeconfig().display().to_string(),
    );
    let gate = GateStack::register_with(
        bed,
        &StackSpec {
            stack_name: format!("{}-bad", stack.table),
            cluster: CLUSTER.to_owned(),
            pool_nlb_arns: vec![String::new()],
            vpc_id: stack.nlbs[0].vpc_id.clone(),
            table: stack.table.clone(),
            bus: None,
        },
        serde_json::json!({ "PoolNlbNames": [real, missing] }),
    )
    .await
    .expect("registering the stack with the IAM gate");

    // WHEN the allocate function starts
    let err = Deps::load("allocate", &env, &gate.sdk_config(bed).await)
        .await
        .err()
        .expect("no start with an unknown NLB");

    // THEN the error names the variable, the pool and the name
    let text = err.to_string();
    assert!(
        text.starts_with("environment variable POOLS_PARAMETER: "),
        "{text}"
    );
    assert!(
        text.contains(&format!("{missing:?}")) && text.contains(r#"pool "default""#),
        "{text}"
    );
    gate.assert_no_denials().await;
}
