//! 500 Services handled by 50 handlers at once: every port is owned once, no NLB goes over
//! its quota, and deleting them all leaves nothing. moto enforces neither quotas nor unique
//! listener ports, so both are checked by counting what moto holds.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{CLUSTER, FunctionDeps, Stack, event_for};
use futures::StreamExt;
use nlb_port_pool::contract::annotations;
use nlb_port_pool::contract::event::DetailType;
use nlb_port_pool::model::config::{FunctionConfig, KubeAccess};
use testbed::Bed;
use testbed::kube_fixtures::{PortSpec, opted_in_service};

const SERVICES: usize = 500;
const HANDLERS: usize = 50;
const NLBS: usize = 11;
const QUOTA: u32 = 50;

/// Delivers like EventBridge: a failed delivery is retried (a few times, after a pause).
async fn deliver(
    fns: &FunctionDeps,
    event: impl Fn() -> handlers::Event,
    detail_type: DetailType,
) -> usize {
    for attempt in 0..8 {
        let result = match detail_type {
            DetailType::ServiceDeleted => handlers::on_service_deleted(&fns.release, event()).await,
            _ => handlers::on_service_changed(&fns.allocate, event()).await,
        };
        match result {
            Ok(_) => return attempt,
            Err(e) => {
                eprintln!("delivery {attempt} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(200 * (attempt as u64 + 1))).await;
            }
        }
    }
    panic!("a delivery kept failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_services_fifty_handlers_no_double_allocation() {
    // GIVEN 11 NLBs of quota 50 and 500 opted-in Services
    let stack = Stack::new("conc", NLBS, "30000-32767", QUOTA).await;
    let ns = stack.namespace.clone();
    let names: Vec<String> = (0..SERVICES).map(|i| format!("room-{i:03}")).collect();
    futures::stream::iter(&names)
        .for_each_concurrent(20, |n| {
            let svc = opted_in_service(&ns, n, &[PortSpec::udp("game", 7777, 7777)]);
            let stack = &stack;
            async move {
                stack.create_service(&svc).await;
            }
        })
        .await;
    let mut uids = BTreeMap::new();
    for svc in stack
        .services()
        .list(&Default::default())
        .await
        .expect("list")
        .items
    {
        uids.insert(
            svc.metadata.name.clone().expect("name"),
            svc.metadata.uid.clone().expect("uid"),
        );
    }
    // 50 independent handlers, as 50 Lambda instances would be: each its own caches.
    let sdk = stack.gate.sdk_config(Bed::get()).await;
    let handlers: Vec<FunctionDeps> = (0..HANDLERS)
        .map(|_| {
            let config = FunctionConfig {
                cluster_name: CLUSTER.to_owned(),
                table_name: stack.table.clone(),
                vpc_id: stack.nlbs[0].vpc_id.clone(),
                pools: stack.deps.config.pools.clone(),
                kube: KubeAccess::Kubeconfig(Bed::get().kubeconfig()),
                namespaces: stack.namespaces.clone(),
                targets: stack.deps.config.targets.clone(),
                shared_clusters: vec![],
            };
            FunctionDeps::new(&config, &sdk, Duration::from_secs(120))
        })
        .collect();

    // WHEN every Service Changed is handled, 50 at a time
    let retries: usize = futures::stream::iter(names.iter().enumerate())
        .map(|(i, n)| {
            let deps = &handlers[i % HANDLERS];
            let uid = uids[n].clone();
            let ns = ns.clone();
            async move {
                deliver(
                    deps,
                    || event_for(DetailType::ServiceChanged, &ns, n, &uid, false),
                    DetailType::ServiceChanged,
                )
                .await
            }
        })
        .buffer_unordered(HANDLERS)
        .fold(0, |a, b| async move { a + b })
        .await;

    // THEN 500 distinct (NLB, port) pairs, as annotated and as moto holds them
    let mut annotated = BTreeSet::new();
    for svc in stack
        .services()
        .list(&Default::default())
        .await
        .expect("list")
        .items
    {
        let ann = svc.metadata.annotations.unwrap_or_default();
        assert_eq!(
            ann.get(annotations::STATUS).map(String::as_str),
            Some("Allocated"),
            "{:?}",
            svc.metadata.name
        );
        let records: Vec<annotations::AllocationRecord> =
            serde_json::from_str(&ann[annotations::ALLOCATIONS]).expect("allocations JSON");
        annotated.insert((records[0].nlb_arn.clone(), records[0].port));
    }
    assert_eq!(
        annotated.len(),
        SERVICES,
        "distinct annotated (NLB, port) pairs"
    );
    let mut per_nlb: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for nlb in &stack.nlbs {
        let mut marker = None;
        loop {
            let page = stack
                .elb
                .describe_listeners()
                .load_balancer_arn(&nlb.arn)
                .set_marker(marker)
                .send()
                .await
                .expect("listeners");
            per_nlb.entry(nlb.arn.clone()).or_default().extend(
                page.listeners()
                    .iter()
                    .filter_map(|l| l.port())
                    .map(|p| p as u16),
            );
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
    }
    let total: usize = per_nlb.values().map(Vec::len).sum();
    assert_eq!(total, SERVICES, "one listener per Service");
    for (nlb, ports) in &per_nlb {
        assert!(
            ports.len() <= QUOTA as usize,
            "{nlb} holds {} listeners",
            ports.len()
        );
        let distinct: BTreeSet<_> = ports.iter().collect();
        assert_eq!(
            distinct.len(),
            ports.len(),
            "a port of {nlb} has two listeners"
        );
    }
    eprintln!(
        "allocated {SERVICES} Services with {HANDLERS} handlers; {retries} retried deliveries"
    );

    // WHEN all are deleted and released, 50 at a time
    for n in &names {
        stack.delete_service(n).await;
    }
    futures::stream::iter(names.iter().enumerate())
        .map(|(i, n)| {
            let deps = &handlers[i % HANDLERS];
            let uid = uids[n].clone();
            let ns = ns.clone();
            async move {
                deliver(
                    deps,
                    || event_for(DetailType::ServiceDeleted, &ns, n, &uid, true),
                    DetailType::ServiceDeleted,
                )
                .await
            }
        })
        .buffer_unordered(HANDLERS)
        .for_each(|_| async {})
        .await;

    // THEN no listener, target group or claim is left
    assert!(stack.listeners().await.is_empty());
    assert_eq!(stack.claim_items().await, 0);
    let groups = stack
        .elb
        .describe_target_groups()
        .send()
        .await
        .expect("target groups");
    let ours: Vec<_> = groups
        .target_groups()
        .iter()
        .filter(|t| t.vpc_id() == Some(stack.nlbs[0].vpc_id.as_str()))
        .collect();
    assert!(ours.is_empty(), "{} target groups left", ours.len());
    assert!(
        stack
            .services()
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}
