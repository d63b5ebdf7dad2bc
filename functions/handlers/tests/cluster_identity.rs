//! What the bounded sweep relies on, against the bed's real servers: the functions' RBAC
//! (deploy/functions-rbac.yaml) lets them read the cluster's identity and nothing more about
//! namespaces, and the claims table's identity item is written once, never overwritten.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use nlb_port_pool::adapters::dynamo::{DynamoClaimStore, table};
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::model::claims::{ClaimStore, TableIdentity};
use nlb_port_pool::model::cluster::Cluster;
use testbed::{Bed, unique_name};

/// The cluster name the tests act for.
const CLUSTER: &str = "bed";

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
async fn the_functions_rbac_reads_the_kube_system_uid_and_no_other_namespace() {
    // GIVEN deploy/functions-rbac.yaml applied under names of this test's own, and a client
    // acting as its group (what the EKS access entry maps the functions' role to)
    let bed = Bed::get();
    let name = unique_name("npp-fn-rbac");
    let rbac = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/functions-rbac.yaml"),
    )
    .expect("reading deploy/functions-rbac.yaml")
    .replace("nlb-port-pool:functions", &format!("{name}:functions"))
    .replace("nlb-port-pool-functions", &name);
    kubectl(bed, &["apply", "-f", "-"], &rbac).await;
    let client = impersonating(bed, &format!("{name}-user"), &format!("{name}:functions")).await;

    // WHEN it reads the cluster's identity, and other namespaces
    let cluster = KubeCluster::new(client.clone(), CLUSTER, "test");
    let mut uid = cluster.cluster_uid().await;
    for _ in 0..20 {
        // RBAC takes a moment to see a new binding.
        if uid.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        uid = cluster.cluster_uid().await;
    }
    let other = Api::<Namespace>::all(client.clone()).get("default").await;
    let listed = Api::<Namespace>::all(client)
        .list(&Default::default())
        .await;
    kubectl(bed, &["delete", "-f", "-"], &rbac).await;

    // THEN the kube-system uid is readable, nothing else about namespaces is
    assert_eq!(uid.expect("reads kube-system"), kube_system_uid().await);
    assert!(
        matches!(&other, Err(kube::Error::Api(s)) if s.code == 403),
        "{other:?}"
    );
    assert!(
        matches!(&listed, Err(kube::Error::Api(s)) if s.code == 403),
        "{listed:?}"
    );
}

async fn kubectl(bed: &Bed, args: &[&str], stdin: &str) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", bed.kubeconfig())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .await
        .expect("writing to kubectl");
    let out = child.wait_with_output().await.expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn impersonating(bed: &Bed, user: &str, group: &str) -> kube::Client {
    let mut config =
        kube::config::Kubeconfig::read_from(bed.kubeconfig()).expect("reading the kubeconfig");
    for named in &mut config.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(user.to_owned());
            auth.impersonate_groups = Some(vec![group.to_owned()]);
        }
    }
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .expect("a client config");
    kube::Client::try_from(config).expect("a client")
}

#[tokio::test]
async fn the_identity_is_recorded_once_and_never_overwritten() {
    // GIVEN a fresh claims table in DynamoDB (moto)
    let sdk = Bed::get().sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let name = unique_name("ss-identity");
    table::create_table(&dynamodb, &name)
        .await
        .expect("creating the table");
    let store = DynamoClaimStore::new(dynamodb, &name);
    let first = TableIdentity {
        cluster_name: CLUSTER.to_owned(),
        cluster_uid: "uid-first".to_owned(),
        stack_id: "stack-1".to_owned(),
    };
    let second = TableIdentity {
        cluster_uid: "uid-second".to_owned(),
        ..first.clone()
    };
    assert_eq!(store.identity_of(CLUSTER).await.expect("reads"), None);

    // WHEN two writers record their identities one after the other
    let recorded_first = store.record_identity(&first).await.expect("records");
    let recorded_second = store.record_identity(&second).await.expect("records");

    // THEN the first one stays, and the second writer is told it
    assert_eq!(recorded_first, first);
    assert_eq!(recorded_second, first);
    assert_eq!(
        store.identity_of(CLUSTER).await.expect("reads"),
        Some(first)
    );
}

#[tokio::test]
async fn clusters_sharing_a_table_each_record_their_own_and_an_old_item_still_reads() {
    // GIVEN a table from before clusters could share it: one `identity` / `meta` item (blue's)
    let sdk = Bed::get().sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let name = unique_name("ss-identities");
    table::create_table(&dynamodb, &name)
        .await
        .expect("creating the table");
    let blue = TableIdentity {
        cluster_name: "blue".to_owned(),
        cluster_uid: "uid-blue".to_owned(),
        stack_id: "stack-blue".to_owned(),
    };
    let mut old = nlb_port_pool::adapters::dynamo::identity::identity_item(&blue, 1);
    old.insert(
        "sk".into(),
        aws_sdk_dynamodb::types::AttributeValue::S("meta".into()),
    );
    dynamodb
        .put_item()
        .table_name(&name)
        .set_item(Some(old))
        .send()
        .await
        .expect("writing the old identity item");
    let raw = dynamodb.clone();
    let store = DynamoClaimStore::new(dynamodb, &name);
    assert_eq!(
        store.identity_of("blue").await.expect("reads"),
        Some(blue.clone())
    );

    // WHEN blue records again, and green (sharing the table) records its own
    let green = TableIdentity {
        cluster_name: "green".to_owned(),
        cluster_uid: "uid-green".to_owned(),
        stack_id: "stack-green".to_owned(),
    };
    let again = TableIdentity {
        cluster_uid: "uid-blue-rebuilt".to_owned(),
        ..blue.clone()
    };
    assert_eq!(store.record_identity(&again).await.expect("records"), blue);
    assert_eq!(store.record_identity(&green).await.expect("records"), green);

    // THEN the table holds both clusters' records: blue's old one, green's new one
    let mut all = store.identities().await.expect("reads");
    all.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    assert_eq!(all, [blue, green]);

    // WHEN an operator records blue again by hand (docs/deploy.md, section 12): a `cluster#`
    // item beside the old one
    let by_hand = nlb_port_pool::adapters::dynamo::identity::identity_item(&again, 2);
    raw.put_item()
        .table_name(&name)
        .set_item(Some(by_hand))
        .send()
        .await
        .expect("writing blue's item");

    // THEN that one is blue's record; the old item is no longer read
    assert_eq!(store.identity_of("blue").await.expect("reads"), Some(again));
    assert_eq!(store.identities().await.expect("reads").len(), 2);
}
