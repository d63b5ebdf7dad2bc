//! The sweep deletes on absence only in its own world, and a bounded number of times a run:
//! against an emptied table, a cluster of the same name with another identity, and a pile of
//! leaks, on the bed's real servers.

mod common;

use common::{CLUSTER, Stack, schedule_event};
use futures::StreamExt;
use handlers::{Deps, SweepSummary};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::identity::identity_item;
use nlb_port_pool::adapters::dynamo::table;
use nlb_port_pool::contract::event::ServiceKey;
use nlb_port_pool::contract::protocol::ListenerProtocol;
use nlb_port_pool::contract::service_model::ListenerKey;
use nlb_port_pool::model::claims::{Owner, TableIdentity};
use nlb_port_pool::model::elb::{LoadBalancing, ResourceTags, TargetGroupSpec, target_group_name};
use nlb_port_pool::reconcile::DEFAULT_STACK_ID;
use testbed::kube_fixtures::{PortSpec, opted_in_service};
use testbed::{Bed, unique_name};

async fn sweep(deps: &Deps) -> SweepSummary {
    handlers::on_schedule(deps, schedule_event())
        .await
        .expect("the sweep runs")
}

/// Function `function` of the same stack started afresh (a cold start), on `table`.
async fn cold_deps(stack: &Stack, function: &str, table: &str) -> Deps {
    stack.function_on_table(function, table).await
}

/// Creates and allocates `count` one-port Services `room-0..`, eight at a time.
async fn allocate(stack: &Stack, count: usize) {
    let ns = stack.namespace.clone();
    futures::stream::iter(0..count)
        .map(|i| {
            let ns = ns.clone();
            async move {
                let name = format!("room-{i}");
                stack
                    .create_service(&opted_in_service(
                        &ns,
                        &name,
                        &[PortSpec::tcp("game", 7777, 7777)],
                    ))
                    .await;
                stack.changed(&name).await.expect("allocates");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// The Service disappears without its finalizer's release (removed by hand) and no event is
/// delivered: only the sweep can find its claims.
async fn vanish(stack: &Stack, name: &str) {
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    stack
        .services()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("removing the finalizer");
    stack.delete_service(name).await;
}

async fn kube_system_uid() -> String {
    let admin = Bed::get().kube_client().await;
    Api::<Namespace>::all(admin)
        .get("kube-system")
        .await
        .expect("the bed has kube-system")
        .metadata
        .uid
        .expect("uid")
}

#[tokio::test]
async fn an_empty_table_facing_fifty_live_listeners_deletes_nothing() {
    // GIVEN 50 Services allocated with one table
    let stack = Stack::new("ss-empty", 1, "30000-30099", 50).await;
    allocate(&stack, 50).await;
    let listeners = stack.listeners().await;
    assert_eq!(listeners.len(), 50);

    // WHEN the sweep runs against a fresh, empty claims table (replaced, or emptied)
    let empty = unique_name("ss-empty-table");
    table::create_table(&stack.dynamodb, &empty)
        .await
        .expect("creating the empty table");
    let replaced = cold_deps(&stack, "sweep", &empty).await;
    let summary = sweep(&replaced).await;

    // THEN it deletes nothing, records nothing, and says why
    let why = summary.deletions_blocked.clone().expect("blocked");
    assert!(
        why.contains("50 listener(s)") && why.contains("emptied or replaced"),
        "{why}"
    );
    assert_eq!(summary.leaked_listeners_deleted, 0, "{summary:?}");
    assert_eq!(summary.leaked_target_groups_deleted, 0, "{summary:?}");
    assert_eq!(summary.services_reconciled, 0, "a blocked run only reports");
    assert!(summary.deletions_left >= 50, "{summary:?}");
    assert_eq!(
        stack.listeners().await,
        listeners,
        "every listener is there"
    );
    let uid = stack.uid("room-0").await;
    assert_eq!(stack.target_groups_of(&uid).await.len(), 1);
    let scanned = stack
        .dynamodb
        .scan()
        .table_name(&empty)
        .send()
        .await
        .expect("scanning the empty table");
    let keys: Vec<_> = scanned
        .items()
        .iter()
        .map(|i| i.get("pk").cloned())
        .collect();
    assert!(
        keys.iter()
            .all(|k| k == &Some(aws_sdk_dynamodb::types::AttributeValue::S("sweep".into()))),
        "no identity and no claim written, only the sweep's cursor: {keys:?}"
    );

    // AND the table in use is untouched and still this cluster's
    let own = sweep(&stack.sweep).await;
    assert_eq!(own.deletions_blocked, None, "{own:?}");
    assert_eq!(stack.listeners().await.len(), 50);
}

#[tokio::test]
async fn a_cluster_of_the_same_name_with_another_identity_deletes_nothing() {
    // GIVEN a table whose identity was recorded by a cluster of this name with another
    // kube-system uid (the cluster was rebuilt), and 5 of its Services' claims, whose
    // Services this cluster does not have
    let stack = Stack::new("ss-rebuilt", 1, "30000-30099", 50).await;
    allocate(&stack, 5).await;
    let live = TableIdentity {
        cluster_name: CLUSTER.to_owned(),
        cluster_uid: kube_system_uid().await,
        stack_id: DEFAULT_STACK_ID.to_owned(),
    };
    let recorded = stack
        .dynamodb
        .get_item()
        .table_name(&stack.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("identity".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("cluster#{CLUSTER}")),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("reading the identity item");
    assert_eq!(
        recorded.item().map(|i| i.get("clusterUid").cloned()),
        Some(Some(aws_sdk_dynamodb::types::AttributeValue::S(
            live.cluster_uid.clone()
        ))),
        "the first allocation recorded the live cluster's uid"
    );
    let old = TableIdentity {
        cluster_uid: "0b5f4c9e-old-cluster".to_owned(),
        ..live.clone()
    };
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.table)
        .set_item(Some(identity_item(&old, 0)))
        .send()
        .await
        .expect("writing the old cluster's identity");
    for i in 0..5 {
        vanish(&stack, &format!("room-{i}")).await;
    }
    let claims_before = stack.claim_items().await;

    // WHEN the sweep runs
    let summary = sweep(&stack.sweep).await;

    // THEN nothing is released or deleted, and the summary names both identities
    let why = summary.deletions_blocked.clone().expect("blocked");
    assert!(
        why.contains("0b5f4c9e-old-cluster") && why.contains(&live.cluster_uid),
        "{why}"
    );
    assert_eq!(summary.orphan_claims_released, 0, "{summary:?}");
    assert_eq!(summary.deletions_left, 5, "{summary:?}");
    assert_eq!(stack.claim_items().await, claims_before);
    assert_eq!(stack.listeners().await.len(), 5);

    // AND a function started afresh refuses to claim ports in that table
    let cold = cold_deps(&stack, "allocate", &stack.table).await;
    let ns = stack.namespace.clone();
    stack
        .create_service(&opted_in_service(
            &ns,
            "newcomer",
            &[PortSpec::tcp("game", 7777, 7777)],
        ))
        .await;
    let uid = stack.uid("newcomer").await;
    let refused = handlers::on_service_changed(
        &cold,
        stack.event(
            nlb_port_pool::contract::event::DetailType::ServiceChanged,
            "newcomer",
            &uid,
            false,
        ),
    )
    .await;
    let err = refused.expect_err("no claim in another cluster's table");
    assert!(err.to_string().contains("0b5f4c9e-old-cluster"), "{err}");
    assert_eq!(stack.claim_items().await, claims_before);
}

/// A listener and target group tagged for a Service that is gone, with no claim: what a run
/// stopped between making them and claiming leaves. Made with the functions' own adapter.
async fn leave_leak(stack: &Stack, i: u16) -> String {
    let elb = AwsLoadBalancing::new(stack.elb.clone());
    let owner = Owner {
        key: ServiceKey {
            cluster: CLUSTER.to_owned(),
            namespace: stack.namespace.clone(),
            name: format!("gone-{i}"),
        },
        uid: unique_name("uid-gone"),
        pod: None,
    };
    let listener = ListenerKey::new(7777, ListenerProtocol::Tcp);
    let tags = ResourceTags {
        owner: owner.clone(),
        pool: "default".into(),
        listener: listener.clone(),
    };
    let spec = TargetGroupSpec {
        attributes: Default::default(),
        name: target_group_name(&owner, &listener),
        protocol: ListenerProtocol::Tcp,
        port: 7777,
        vpc_id: stack.nlbs[0].vpc_id.clone(),
        health_check: Default::default(),
        tags: tags.clone(),
    };
    let tg = elb.ensure_target_group(&spec).await.expect("tg").arn;
    elb.create_listener(
        &stack.nlbs[0].arn,
        30090 + i,
        ListenerProtocol::Tcp,
        None,
        &tg,
        &tags,
    )
    .await
    .expect("listener");
    owner.uid
}

#[tokio::test]
async fn deletions_are_capped_per_run_and_later_runs_finish() {
    // GIVEN a live Service (its allocation recorded the table's identity) and 4 leaked
    // listener and target group pairs: 8 deletions
    let mut stack = Stack::new("ss-cap", 1, "30000-30089", 50).await;
    allocate(&stack, 1).await;
    let mut leaked = Vec::new();
    for i in 0..4 {
        leaked.push(leave_leak(&stack, i).await);
    }
    assert_eq!(stack.listeners().await.len(), 5);
    stack.sweep.sweep_limits.max_deletions = 3;

    // WHEN the sweep runs with a cap of 3
    let first = sweep(&stack.sweep).await;

    // THEN it deletes exactly 3 and counts what it left
    assert_eq!(first.deletions_blocked, None, "{first:?}");
    assert_eq!(
        first.leaked_listeners_deleted + first.leaked_target_groups_deleted,
        3,
        "{first:?}"
    );
    assert!(first.deletions_left >= 1, "{first:?}");

    // AND the next runs, each within the cap, finish the rest
    let mut deleted = 3;
    let mut runs = 1;
    loop {
        let r = sweep(&stack.sweep).await;
        let n = r.leaked_listeners_deleted + r.leaked_target_groups_deleted;
        assert!(n <= 3, "{r:?}");
        deleted += n;
        runs += 1;
        if r.deletions_left == 0 {
            break;
        }
        assert!(runs < 6, "8 deletions take 3 runs of at most 3: {r:?}");
    }
    assert_eq!(deleted, 8);
    assert_eq!(
        stack.listeners().await.len(),
        1,
        "the live Service keeps its own"
    );
    for uid in &leaked {
        assert!(stack.target_groups_of(uid).await.is_empty(), "{uid}");
    }
    let live = stack.uid("room-0").await;
    assert_eq!(stack.target_groups_of(&live).await.len(), 1);
}
