//! deploy/'s RBAC on the real kube-apiserver: the forwarder's ServiceAccount may do what the
//! forwarder does and nothing else; the functions' group may do what the Lambdas do.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use testbed::kube_fixtures::{self, PortSpec};
use testbed::{Bed, unique_name};

use crate::support::{self, DEPLOY_ACCOUNT, DEPLOY_NAMESPACE};

fn assert_allowed<T: std::fmt::Debug>(what: &str, r: Result<T, kube::Error>) {
    match r {
        Ok(_) => {}
        // Allowed but absent is still allowed.
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => panic!("{what} should be allowed: {e:?}"),
    }
}

fn assert_forbidden<T: std::fmt::Debug>(what: &str, r: Result<T, kube::Error>) {
    match r {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("{what} should be forbidden (403), got {other:?}"),
    }
}

#[tokio::test]
async fn the_forwarder_account_reads_services_slices_and_pods_and_nothing_else() {
    // GIVEN deploy/ applied and a client acting as its ServiceAccount
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    support::apply_deploy();
    let ns = unique_name("fwd-rbac");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "room", &ports),
    )
    .await;
    let sa = kube_fixtures::service_account_client(&admin, DEPLOY_NAMESPACE, DEPLOY_ACCOUNT).await;
    let lp = ListParams::default().limit(1);

    // THEN what the forwarder does is allowed
    assert_allowed(
        "list services",
        Api::<Service>::all(sa.clone()).list(&lp).await,
    );
    assert_allowed(
        "list endpointslices",
        Api::<EndpointSlice>::all(sa.clone()).list(&lp).await,
    );
    // The pod watch's list, with its field selector (gated pods, forwarder/src/pod_tracker.rs)
    assert_allowed(
        "list running pods",
        Api::<Pod>::all(sa.clone())
            .list(
                &lp.clone()
                    .fields(forwarder::pod_tracker::POD_FIELD_SELECTOR),
            )
            .await,
    );
    let leases: Api<Lease> = Api::namespaced(sa.clone(), DEPLOY_NAMESPACE);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(unique_name("rbac-lease")),
            ..ObjectMeta::default()
        },
        spec: None,
    };
    assert_allowed(
        "create a lease",
        leases.create(&PostParams::default(), &lease).await,
    );
    let name = lease.metadata.name.clone().unwrap_or_default();
    let mut got = leases.get(&name).await.expect("get the lease");
    got.metadata.labels = Some([("x".to_owned(), "y".to_owned())].into());
    assert_allowed(
        "update the lease",
        leases.replace(&name, &PostParams::default(), &got).await,
    );

    // AND nothing else is: not even a get by name, which a watcher never does
    assert_forbidden(
        "get a service",
        Api::<Service>::namespaced(sa.clone(), &ns)
            .get("room")
            .await,
    );
    assert_forbidden(
        "get an endpointslice",
        Api::<EndpointSlice>::namespaced(sa.clone(), &ns)
            .get("room")
            .await,
    );
    assert_forbidden(
        "get a pod",
        Api::<Pod>::namespaced(sa.clone(), &ns).get("room-0").await,
    );
    let pod_patch = json!({"metadata": {"labels": {"x": "y"}}});
    assert_forbidden(
        "patch a pod",
        Api::<Pod>::namespaced(sa.clone(), &ns)
            .patch("room-0", &PatchParams::default(), &Patch::Merge(&pod_patch))
            .await,
    );
    assert_forbidden(
        "list secrets",
        Api::<Secret>::all(sa.clone()).list(&lp).await,
    );
    assert_forbidden(
        "get a secret",
        Api::<Secret>::namespaced(sa.clone(), DEPLOY_NAMESPACE)
            .get("x")
            .await,
    );
    assert_forbidden(
        "list configmaps",
        Api::<ConfigMap>::namespaced(sa.clone(), &ns)
            .list(&lp)
            .await,
    );
    let patch = json!({"metadata": {"annotations": {"x": "y"}}});
    let services: Api<Service> = Api::namespaced(sa.clone(), &ns);
    assert_forbidden(
        "patch a service",
        services
            .patch("room", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert_forbidden(
        "delete a service",
        services.delete("room", &DeleteParams::default()).await,
    );
    assert_forbidden(
        "get a lease elsewhere",
        Api::<Lease>::namespaced(sa.clone(), &ns).get("x").await,
    );
    assert_forbidden(
        "delete the lease",
        leases.delete(&name, &DeleteParams::default()).await,
    );
    assert_forbidden("list leases", leases.list(&lp).await);
}

/// The admin, impersonating a user in the functions' group (as the EKS access entry maps the
/// Lambdas' IAM role).
async fn functions_client() -> Client {
    let kubeconfig = Kubeconfig::read_from(Bed::get().kubeconfig()).expect("kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    config.auth_info.impersonate = Some("nlb-port-pool-lambda".to_owned());
    config.auth_info.impersonate_groups = Some(vec!["nlb-port-pool:functions".to_owned()]);
    Client::try_from(config).expect("client")
}

#[tokio::test]
async fn the_functions_group_may_patch_services_and_write_events_only() {
    // GIVEN deploy/ applied, a Service, and a client in the group nlb-port-pool:functions
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    support::apply_deploy();
    let ns = unique_name("fn-rbac");
    let _cleanup = support::Cleanup(ns.clone());
    kube_fixtures::create_namespace(&admin, &ns).await;
    let ports = [PortSpec::tcp("game", 7777, 7777)];
    kube_fixtures::create(
        &admin,
        &kube_fixtures::opted_in_service(&ns, "room", &ports),
    )
    .await;
    let fns = functions_client().await;
    let lp = ListParams::default().limit(1);
    let services: Api<Service> = Api::namespaced(fns.clone(), &ns);

    // THEN reading Services and slices, patching Services and writing Events is allowed
    assert_allowed("get a service", services.get("room").await);
    assert_allowed(
        "list services",
        Api::<Service>::all(fns.clone()).list(&lp).await,
    );
    assert_allowed(
        "list endpointslices",
        Api::<EndpointSlice>::namespaced(fns.clone(), &ns)
            .list(&lp)
            .await,
    );
    let patch = json!({"metadata": {"annotations": {"nlb.port-manager/status": "Pending: test"}}});
    assert_allowed(
        "patch a service",
        services
            .patch("room", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(unique_name("room")),
            namespace: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some(ns.clone()),
            name: Some("room".into()),
            ..ObjectReference::default()
        }),
        reporting_controller: Some("nlb-port-pool/functions".into()),
        reporting_instance: Some("test".into()),
        action: Some("Allocate".into()),
        reason: Some("Allocated".into()),
        type_: Some("Normal".into()),
        ..Event::default()
    };
    let events: Api<Event> = Api::namespaced(fns.clone(), &ns);
    assert_allowed(
        "create an event",
        events.create(&PostParams::default(), &event).await,
    );

    // AND nothing else: slices are only listed by label, never read by name
    assert_forbidden(
        "get an endpointslice",
        Api::<EndpointSlice>::namespaced(fns.clone(), &ns)
            .get("room")
            .await,
    );
    assert_forbidden(
        "delete a service",
        services.delete("room", &DeleteParams::default()).await,
    );
    assert_forbidden(
        "list secrets",
        Api::<Secret>::all(fns.clone()).list(&lp).await,
    );
    assert_forbidden("list events", events.list(&lp).await);
    assert_forbidden(
        "watch-less list of leases",
        Api::<Lease>::all(fns).list(&lp).await,
    );
}
