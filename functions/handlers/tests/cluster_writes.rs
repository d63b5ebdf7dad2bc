//! The Kubernetes adapter's writes against the real API server: preconditions and manners.

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::contract::annotations::{FINALIZER, STATUS};
use nlb_port_pool::model::cluster::{Cluster, ServiceOutputs, Written};
use testbed::kube_fixtures::{PortSpec, create, create_namespace, opted_in_service};
use testbed::{Bed, unique_name};

async fn setup(prefix: &str) -> (kube::Client, KubeCluster, Api<Service>, String) {
    let admin = Bed::get().kube_client().await;
    let ns = unique_name(prefix);
    create_namespace(&admin, &ns).await;
    create(
        &admin,
        &opted_in_service(&ns, "room", &[PortSpec::tcp("g", 1, 1)]),
    )
    .await;
    let cluster = KubeCluster::new(admin.clone(), "bed", "test");
    let api = Api::namespaced(admin.clone(), &ns);
    (admin, cluster, api, ns)
}

fn outputs(status: &str, finalizer: bool) -> ServiceOutputs {
    ServiceOutputs {
        annotations: [(STATUS.to_owned(), status.to_owned())].into(),
        finalizer,
    }
}

#[tokio::test]
async fn a_stale_read_is_refreshed_and_other_writers_are_kept() {
    // GIVEN a Service read, then changed by someone else (new annotation and finalizer)
    let (_, cluster, api, ns) = setup("kw-stale").await;
    let stale = cluster
        .service(&ns, "room")
        .await
        .expect("get")
        .expect("exists");
    let theirs = serde_json::json!({"metadata": {"annotations": {"team/owner": "blue"}, "finalizers": ["team/keep"]}});
    api.patch("room", &PatchParams::default(), &Patch::Merge(&theirs))
        .await
        .expect("their patch");

    // WHEN outputs are written from the stale read
    let written = cluster
        .write_outputs(&stale, &outputs("Allocated", true))
        .await
        .expect("writes");

    // THEN both writers' changes are there
    assert!(matches!(written, Written::Done(_)));
    let svc = api.get("room").await.expect("get");
    let ann = svc.metadata.annotations.expect("annotations");
    assert_eq!(ann.get("team/owner").map(String::as_str), Some("blue"));
    assert_eq!(ann.get(STATUS).map(String::as_str), Some("Allocated"));
    assert_eq!(
        svc.metadata.finalizers.expect("finalizers"),
        ["team/keep", FINALIZER]
    );

    // WHEN the system's outputs are removed
    let current = cluster
        .service(&ns, "room")
        .await
        .expect("get")
        .expect("exists");
    cluster
        .write_outputs(&current, &ServiceOutputs::default())
        .await
        .expect("writes");

    // THEN only its own keys and finalizer go
    let svc = api.get("room").await.expect("get");
    assert_eq!(svc.metadata.finalizers.expect("finalizers"), ["team/keep"]);
    let ann = svc.metadata.annotations.expect("annotations");
    assert!(!ann.contains_key(STATUS) && ann.contains_key("team/owner"));
}

#[tokio::test]
async fn a_replaced_service_is_never_written() {
    // GIVEN a read of a Service that is then deleted and made again under the same name
    let (admin, cluster, api, ns) = setup("kw-uid").await;
    let old = cluster
        .service(&ns, "room")
        .await
        .expect("get")
        .expect("exists");
    api.delete("room", &DeleteParams::default())
        .await
        .expect("delete");
    create(
        &admin,
        &opted_in_service(&ns, "room", &[PortSpec::tcp("g", 1, 1)]),
    )
    .await;

    // WHEN outputs are written for the old object
    let written = cluster
        .write_outputs(&old, &outputs("Allocated", true))
        .await
        .expect("answers");

    // THEN the new object is untouched
    assert_eq!(written, Written::Gone);
    let svc = api.get("room").await.expect("get");
    assert!(svc.metadata.finalizers.unwrap_or_default().is_empty());
    assert!(
        !svc.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(STATUS)
    );
}

#[tokio::test]
async fn a_deleting_service_takes_no_new_finalizer_and_goes_when_released() {
    // GIVEN a Service that holds another finalizer and is being deleted
    let (_, cluster, api, ns) = setup("kw-del").await;
    let theirs = serde_json::json!({"metadata": {"finalizers": ["team/keep"]}});
    api.patch("room", &PatchParams::default(), &Patch::Merge(&theirs))
        .await
        .expect("their finalizer");
    api.delete("room", &DeleteParams::default())
        .await
        .expect("delete");
    let deleting = cluster
        .service(&ns, "room")
        .await
        .expect("get")
        .expect("held");
    assert!(deleting.deleting);

    // WHEN the system tries to hold its finalizer
    let written = cluster
        .write_outputs(&deleting, &outputs("Allocated", true))
        .await
        .expect("answers");

    // THEN it is told the Service is on its way out
    assert_eq!(written, Written::Gone);
    assert_eq!(
        api.get("room")
            .await
            .expect("get")
            .metadata
            .finalizers
            .expect("f"),
        ["team/keep"]
    );
}
