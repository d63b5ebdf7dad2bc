//! deploy/functions-admission.yaml and functions-rbac.yaml on the real kube-apiserver, for
//! per-pod mode: acting as the functions' group, a patch of a pod may change its output
//! `nlb.port-manager/*` annotations (no input), and a patch of its status only the
//! `nlb.port-manager/reachable` condition; nothing else (labels, other annotations, other
//! conditions, the IP, finalizers). The group may not create or delete pods (RBAC).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::model::cluster::Cluster;
use serde_json::{Value, json};
use testbed::local_stack::kube_access::{self, FUNCTIONS_GROUP, FUNCTIONS_USER};
use testbed::{Bed, kube_fixtures, pod_fixtures, unique_name};

const DENIED_BY: &str = "ValidatingAdmissionPolicy 'nlb-port-pool-functions'";
const ENFORCEMENT_WAIT: Duration = Duration::from_secs(20);

async fn functions_client() -> Client {
    let kubeconfig = Kubeconfig::read_from(Bed::get().kubeconfig()).expect("kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    config.auth_info.impersonate = Some(FUNCTIONS_USER.to_owned());
    config.auth_info.impersonate_groups = Some(vec![FUNCTIONS_GROUP.to_owned()]);
    Client::try_from(config).expect("client")
}

fn refused_by_policy(r: &Result<Pod, kube::Error>, why: &str) -> bool {
    matches!(r, Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains(DENIED_BY) && e.message.contains(why))
}

/// deploy/ applied, a namespace with a running pod `room-0` (someone else's annotation), and
/// the policy shown enforced on pods there.
async fn enforced(prefix: &str) -> (Client, Client, String) {
    let bed = Bed::get();
    let admin = bed.kube_client().await;
    kube_access::apply_rbac(bed)
        .await
        .expect("applying deploy/ RBAC and admission policy");
    let ns = unique_name(prefix);
    kube_fixtures::create_namespace(&admin, &ns).await;
    pod_fixtures::run_pod(
        &admin,
        &ns,
        "room-0",
        "room",
        true,
        ("10.30.0.1", true, false),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    pods.patch(
        "room-0",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": {"example.com/keep": "1"}}})),
    )
    .await
    .expect("the admin annotates the pod");
    let fns = functions_client().await;
    let theirs: Api<Pod> = Api::namespaced(fns.clone(), &ns);
    let started = Instant::now();
    for n in 0.. {
        let label = json!({"metadata": {"labels": {"probe": n.to_string()}}});
        let r = theirs
            .patch("room-0", &PatchParams::default(), &Patch::Merge(&label))
            .await;
        if refused_by_policy(&r, "labels") {
            break;
        }
        assert!(
            started.elapsed() < ENFORCEMENT_WAIT,
            "the policy was not enforced on pods within {ENFORCEMENT_WAIT:?}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (admin, fns, ns)
}

#[tokio::test]
async fn the_functions_write_a_pods_annotations_and_its_reachable_condition() {
    let (admin, fns, ns) = enforced("vap-pod-allow").await;
    let pods: Api<Pod> = Api::namespaced(fns.clone(), &ns);

    // WHEN the functions' identity writes its annotations on the pod
    pods.patch(
        "room-0",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": {
            "nlb.port-manager/address": "nlb.example:30001",
            "nlb.port-manager/status": "Allocated"}}})),
    )
    .await
    .expect("the annotations are the functions'");

    // AND sets the reachable condition through the functions' own code
    let cluster = KubeCluster::new(fns.clone(), "bed", "admission-test");
    let uid = Api::<Pod>::namespaced(admin.clone(), &ns)
        .get("room-0")
        .await
        .expect("the pod")
        .metadata
        .uid
        .expect("a uid");
    cluster
        .set_pod_reachable(&ns, "room-0", &uid, "its NLB target is healthy")
        .await
        .expect("the reachable condition is the functions'");

    // THEN both are on the pod, its other conditions untouched
    assert!(pod_fixtures::reachable(&admin, &ns, "room-0").await);
    let pod = Api::<Pod>::namespaced(admin.clone(), &ns)
        .get("room-0")
        .await
        .expect("the pod");
    let conditions = pod.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "ContainersReady" && c.status == "True")
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False"),
        "the kubelet's Ready is left to the kubelet"
    );
    let ann = pod.metadata.annotations.unwrap_or_default();
    assert_eq!(
        ann.get("nlb.port-manager/address").map(String::as_str),
        Some("nlb.example:30001")
    );
}

#[tokio::test]
async fn the_functions_may_change_nothing_else_on_a_pod() {
    let (admin, fns, ns) = enforced("vap-pod-deny").await;
    let pods: Api<Pod> = Api::namespaced(fns.clone(), &ns);
    let before = Api::<Pod>::namespaced(admin.clone(), &ns)
        .get("room-0")
        .await
        .expect("the pod");

    // WHEN the functions' identity patches anything else of the pod
    let metadata_cases: Vec<(&str, Value, &str)> = vec![
        (
            "adding another annotation",
            json!({"metadata": {"annotations": {"example.com/x": "y"}}}),
            "not: example.com/x",
        ),
        (
            "removing someone else's annotation",
            json!({"metadata": {"annotations": {"example.com/keep": null}}}),
            "not: example.com/keep",
        ),
        (
            "an input annotation under the prefix",
            json!({"metadata": {"annotations": {"nlb.port-manager/auto-assign": "true"}}}),
            "not: nlb.port-manager/auto-assign",
        ),
        (
            "changing a label",
            json!({"metadata": {"labels": {"app": "other"}}}),
            "labels",
        ),
        (
            "adding a finalizer, even ours",
            json!({"metadata": {"finalizers": ["nlb.port-manager/release"]}}),
            "finalizers",
        ),
        (
            "changing the image",
            json!({"spec": {"containers": [{"name": "game", "image": "evil:1"}]}}),
            "spec",
        ),
    ];
    for (what, patch, why) in metadata_cases {
        let r = pods
            .patch("room-0", &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        assert!(refused_by_policy(&r, why), "{what}: {r:?}");
    }
    // Strategic merge patches, as the functions' own; the IP as a merge patch (a strategic one
    // would add a second IP, which validation refuses before admission sees it).
    let status_cases: Vec<(&str, Value)> = vec![
        (
            "setting Ready",
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        ),
        (
            "another gate's condition",
            json!({"status": {"conditions": [{"type": "example.com/gate", "status": "True"}]}}),
        ),
        (
            "moving the pod's IP (where traffic goes)",
            json!({"status": {"podIP": "10.99.0.1", "podIPs": [{"ip": "10.99.0.1"}]}}),
        ),
        ("the phase", json!({"status": {"phase": "Failed"}})),
    ];
    for (what, patch) in status_cases {
        let r = if what.starts_with("moving") {
            pods.patch_status("room-0", &PatchParams::default(), &Patch::Merge(&patch))
                .await
        } else {
            pods.patch_status("room-0", &PatchParams::default(), &Patch::Strategic(&patch))
                .await
        };
        assert!(
            refused_by_policy(&r, "nlb.port-manager/reachable condition"),
            "{what}: {r:?}"
        );
    }

    // AND RBAC gives it no create or delete of pods
    let r = pods
        .create(
            &PostParams::default(),
            &pod_fixtures::pod(&ns, "room-9", "room", false),
        )
        .await;
    assert!(
        matches!(&r, Err(kube::Error::Api(e)) if e.code == 403),
        "{r:?}"
    );
    let r = pods.delete("room-0", &DeleteParams::default()).await;
    assert!(
        matches!(&r, Err(kube::Error::Api(e)) if e.code == 403),
        "a delete: {:?}",
        r.map(|_| ())
    );

    // AND the pod was not written at all
    let after = Api::<Pod>::namespaced(admin.clone(), &ns)
        .get("room-0")
        .await
        .expect("the pod");
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
}
