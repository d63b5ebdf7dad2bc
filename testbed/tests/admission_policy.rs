//! deploy/functions-admission.yaml on the real kube-apiserver: acting as the functions' group
//! (`nlb-port-pool:functions`, by impersonation from the admin, as the local stack does), a
//! patch may change the output `nlb.port-manager/*` annotations (never an input such as
//! `auto-assign`) and the `nlb.port-manager/release` finalizer of a Service and nothing else;
//! other users are not affected.
//!
//! The policy and binding are applied from deploy/ with kubectl (with deploy/'s RBAC, which
//! lets the group patch at all), cluster-wide as shipped: every other test acting as the
//! functions runs under them too, which is the point.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use nlb_port_pool::adapters::kube::KubeCluster;
use nlb_port_pool::contract::annotations::{
    ADDRESS, AUTO_ASSIGN, FINALIZER, MODE, NLB, OUTPUT_KEYS, POOL, STATUS,
};
use nlb_port_pool::contract::listener_options::SSL_CERT;
use nlb_port_pool::contract::service_model::ServiceState;
use nlb_port_pool::model::cluster::{Cluster, ServiceOutputs, Written};
use serde_json::{Value, json};
use testbed::kube_fixtures::{self, PortSpec};
use testbed::local_stack::kube_access::{self, FUNCTIONS_GROUP, FUNCTIONS_USER};
use testbed::{Bed, unique_name};
use tokio::sync::OnceCell;

/// The policy's and the binding's name in deploy/functions-admission.yaml.
const POLICY: &str = "nlb-port-pool-functions";
/// What the API server's refusal says when this policy denies a request.
const DENIED_BY: &str = "ValidatingAdmissionPolicy 'nlb-port-pool-functions'";
/// A binding is enforced once the API server's policy informer has seen it.
const ENFORCEMENT_WAIT: Duration = Duration::from_secs(20);
/// How long kube-apiserver may take to use a policy changed in place.
const POLICY_REFRESH: Duration = Duration::from_secs(3);
/// An annotation and a finalizer of someone else, set by the admin.
const FOREIGN: &str = "example.com/keep";

/// The admin, impersonating a user of the functions' group (what the EKS access entry maps
/// the Lambdas' role to) and of `extra_groups`.
async fn functions_client(extra_groups: &[&str]) -> Client {
    let kubeconfig = Kubeconfig::read_from(Bed::get().kubeconfig()).expect("kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    config.auth_info.impersonate = Some(FUNCTIONS_USER.to_owned());
    let groups = std::iter::once(FUNCTIONS_GROUP).chain(extra_groups.iter().copied());
    config.auth_info.impersonate_groups = Some(groups.map(str::to_owned).collect());
    Client::try_from(config).expect("client")
}

/// A Service with someone else's annotation, label and finalizer besides the opt-in.
async fn create_room(admin: &Client, ns: &str, name: &str) -> Service {
    let mut svc = kube_fixtures::service(
        ns,
        name,
        &[
            (nlb_port_pool::contract::annotations::AUTO_ASSIGN, "true"),
            (FOREIGN, "1"),
        ],
        &[PortSpec::tcp("game", 7777, 7777)],
    );
    svc.metadata.labels = Some(BTreeMap::from([("app".to_owned(), name.to_owned())]));
    svc.metadata.finalizers = Some(vec![FOREIGN.to_owned()]);
    kube_fixtures::create(admin, &svc).await
}

async fn merge(api: &Api<Service>, name: &str, patch: &Value) -> Result<Service, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
}

fn is_denied_by_policy(r: &Result<Service, kube::Error>) -> bool {
    matches!(r, Err(kube::Error::Api(e)) if e.message.contains(DENIED_BY))
}

/// Applies deploy/'s RBAC and admission policy once per test binary. When that changed the
/// policy, waits until kube-apiserver uses the new one: the probe in [`enforced_namespace`]
/// cannot tell the old policy from the new one, and a refusal by a stale policy would hide a
/// regression. kube-apiserver's policy informer is quick and its compiled policies are
/// refreshed every second, so a few seconds are plenty.
async fn apply_deploy_access() {
    static APPLIED: OnceCell<()> = OnceCell::const_new();
    APPLIED
        .get_or_init(|| async {
            let report = kube_access::apply_rbac(Bed::get())
                .await
                .expect("applying deploy/ RBAC and admission policy");
            let policy_changed = report.lines().any(|l| {
                l.starts_with("validatingadmissionpolicy.")
                    && (l.ends_with(" created") || l.ends_with(" configured"))
            });
            if policy_changed {
                tokio::time::sleep(POLICY_REFRESH).await;
            }
        })
        .await;
}

/// deploy/'s RBAC and policy applied, a fresh namespace, and the policy shown to be enforced
/// there: a label patch by the functions is refused (bounded wait for the informer).
async fn enforced_namespace(prefix: &str) -> (Client, Client, String) {
    let admin = Bed::get().kube_client().await;
    apply_deploy_access().await;
    let ns = unique_name(prefix);
    kube_fixtures::create_namespace(&admin, &ns).await;
    create_room(&admin, &ns, "probe").await;
    let fns = functions_client(&[]).await;
    let services: Api<Service> = Api::namespaced(fns.clone(), &ns);
    let started = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let r = merge(
            &services,
            "probe",
            &json!({"metadata": {"labels": {"probe": n.to_string()}}}),
        )
        .await;
        if is_denied_by_policy(&r) {
            return (admin, fns, ns);
        }
        match r {
            // Not enforced yet: the label went through.
            Ok(_) if started.elapsed() < ENFORCEMENT_WAIT => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => panic!(
                "the policy was not enforced within {ENFORCEMENT_WAIT:?}: a label patch by the \
                 functions got {other:?}"
            ),
        }
    }
}

/// Asserts a refusal by this policy whose message says `why`: 403, never 422, which the
/// functions would read as "the Service is being deleted" on a finalizer write.
fn assert_refused(what: &str, r: Result<Service, kube::Error>, why: &str) {
    match r {
        Err(kube::Error::Api(e)) if e.code == 403 => {
            assert!(
                e.message.contains(DENIED_BY),
                "{what}: refused, but not by the policy: {}",
                e.message
            );
            assert!(
                e.message.contains(why),
                "{what}: the refusal should say {why:?}: {}",
                e.message
            );
        }
        other => panic!("{what} should be refused by {POLICY}, got {other:?}"),
    }
}

#[tokio::test]
async fn the_functions_write_their_annotations_and_finalizer_through_the_policy() {
    // GIVEN the policy enforced and a Service with someone else's annotation, label, finalizer
    let (admin, fns, ns) = enforced_namespace("vap-allow").await;
    let created = create_room(&admin, &ns, "room").await;
    let state = ServiceState::from_service("bed", &created).expect("a stored Service");
    let cluster = KubeCluster::new(fns.clone(), "bed", "admission-test");

    // WHEN the functions' own code writes outputs and adds the finalizer
    let outputs = ServiceOutputs {
        annotations: [(STATUS, "Pending: test"), (ADDRESS, "nlb.example:30000")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        finalizer: true,
    };
    let written = cluster.write_outputs(&state, &outputs).await;

    // THEN it is allowed, and the rest of the Service is as it was
    let Ok(Written::Done(after)) = written else {
        panic!("writing outputs and the finalizer should be allowed: {written:?}");
    };
    assert_eq!(
        after.annotations.get(STATUS).map(String::as_str),
        Some("Pending: test")
    );
    assert_eq!(
        after.finalizers,
        vec![FOREIGN.to_owned(), FINALIZER.to_owned()]
    );
    assert_eq!(
        after.annotations.get(FOREIGN).map(String::as_str),
        Some("1")
    );

    // AND every output key may be set by a plain merge patch
    let services: Api<Service> = Api::namespaced(fns.clone(), &ns);
    for key in OUTPUT_KEYS {
        let output = json!({"metadata": {"annotations": {key: "x"}}});
        merge(&services, "room", &output)
            .await
            .unwrap_or_else(|e| panic!("output {key} should be allowed: {e}"));
    }

    // WHEN the Service is deleted and the functions release it: outputs and finalizer removed
    Api::<Service>::namespaced(admin.clone(), &ns)
        .delete("room", &DeleteParams::default())
        .await
        .expect("deleting the Service");
    let deleting = ServiceState::from_service(
        "bed",
        &Api::<Service>::namespaced(admin.clone(), &ns)
            .get("room")
            .await
            .expect("the Service waits for its finalizers"),
    )
    .expect("a stored Service");
    assert!(deleting.deleting);
    let released = cluster
        .write_outputs(&deleting, &ServiceOutputs::default())
        .await;

    // THEN that is allowed too, and only someone else's finalizer is left
    let Ok(Written::Done(after)) = released else {
        panic!("removing outputs and the finalizer should be allowed: {released:?}");
    };
    assert_eq!(after.finalizers, vec![FOREIGN.to_owned()]);
    assert!(!after.annotations.contains_key(STATUS));
    assert_eq!(
        after.annotations.get(FOREIGN).map(String::as_str),
        Some("1")
    );
}

#[tokio::test]
async fn the_functions_may_change_nothing_else_on_a_service() {
    // GIVEN the policy enforced and a Service holding our finalizer besides someone else's
    let (admin, fns, ns) = enforced_namespace("vap-deny").await;
    create_room(&admin, &ns, "room").await;
    let services: Api<Service> = Api::namespaced(fns.clone(), &ns);
    merge(
        &services,
        "room",
        &json!({"metadata": {"finalizers": [FOREIGN, FINALIZER]}}),
    )
    .await
    .expect("adding our finalizer should be allowed");
    let before = Api::<Service>::namespaced(admin.clone(), &ns)
        .get("room")
        .await
        .expect("reading the Service");

    // WHEN the functions' identity patches anything but its annotations and finalizer
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "changing spec.selector",
            json!({"spec": {"selector": {"app": "other"}}}),
            "spec",
        ),
        (
            "changing spec.type",
            json!({"spec": {"type": "NodePort"}}),
            "spec",
        ),
        (
            "changing spec.ports",
            json!({"spec": {"ports": [{"name": "game", "port": 8888, "targetPort": 7777}]}}),
            "spec",
        ),
        (
            "adding another annotation",
            json!({"metadata": {"annotations": {"example.com/x": "y"}}}),
            "not: example.com/x",
        ),
        // Inputs are the user's: a stolen credential of the functions must not opt a Service
        // in, move it to another pool or NLB, or change its certificate.
        (
            "opting the Service out (an input)",
            json!({"metadata": {"annotations": {AUTO_ASSIGN: "false"}}}),
            "not: nlb.port-manager/auto-assign",
        ),
        (
            "removing the opt-in (an input)",
            json!({"metadata": {"annotations": {AUTO_ASSIGN: null}}}),
            "not: nlb.port-manager/auto-assign",
        ),
        (
            "choosing a pool (an input)",
            json!({"metadata": {"annotations": {POOL: "internet"}}}),
            "not: nlb.port-manager/pool",
        ),
        (
            "choosing per-pod mode (an input)",
            json!({"metadata": {"annotations": {MODE: "per-pod"}}}),
            "not: nlb.port-manager/mode",
        ),
        (
            "naming an NLB (an input)",
            json!({"metadata": {"annotations": {NLB: "arn:aws:elasticloadbalancing:x"}}}),
            "not: nlb.port-manager/nlb",
        ),
        (
            "setting a certificate (an input)",
            json!({"metadata": {"annotations": {SSL_CERT: "arn:aws:acm:x"}}}),
            "not: nlb.port-manager/ssl-cert",
        ),
        (
            "changing someone else's annotation",
            json!({"metadata": {"annotations": {FOREIGN: "2"}}}),
            "not: example.com/keep",
        ),
        (
            "removing someone else's annotation",
            json!({"metadata": {"annotations": {FOREIGN: null}}}),
            "not: example.com/keep",
        ),
        (
            "adding a label",
            json!({"metadata": {"labels": {"x": "y"}}}),
            "labels",
        ),
        (
            "removing a label",
            json!({"metadata": {"labels": {"app": null}}}),
            "labels",
        ),
        (
            "adding another finalizer",
            json!({"metadata": {"finalizers": [FOREIGN, FINALIZER, "example.com/other"]}}),
            "only the finalizer nlb.port-manager/release",
        ),
        (
            "removing someone else's finalizer",
            json!({"metadata": {"finalizers": [FINALIZER]}}),
            "only the finalizer nlb.port-manager/release",
        ),
        (
            "setting an owner",
            json!({"metadata": {"ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "x",
                "uid": "00000000-0000-0000-0000-000000000001"}]}}),
            "owner references",
        ),
        (
            "an allowed annotation together with a label",
            json!({"metadata": {"annotations": {STATUS: "Allocated"}, "labels": {"x": "y"}}}),
            "labels",
        ),
    ];
    // THEN each is refused with a message naming the policy and what was changed
    for (what, patch, why) in cases {
        assert_refused(what, merge(&services, "room", &patch).await, why);
    }
    // AND the patch format makes no difference: a strategic merge patch, a server-side apply
    let strategic = json!({"spec": {"selector": {"app": "other"}}});
    let r = services
        .patch(
            "room",
            &PatchParams::default(),
            &Patch::Strategic(&strategic),
        )
        .await;
    assert_refused("a strategic merge patch of spec.selector", r, "spec");
    let apply = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "room"},
        "spec": {"type": "NodePort"}});
    let r = services
        .patch(
            "room",
            &PatchParams::apply("admission-test").force(),
            &Patch::Apply(&apply),
        )
        .await;
    assert_refused("a server-side apply of spec.type", r, "spec");

    // AND even with every RBAC right (also in system:masters), the functions' group may not
    // write status or spec: the policy refuses, not RBAC
    let root = Api::<Service>::namespaced(functions_client(&["system:masters"]).await, &ns);
    let condition = json!({"status": {"conditions": [{"type": "Example", "status": "True",
        "reason": "Test", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    let r = root
        .patch_status("room", &PatchParams::default(), &Patch::Merge(&condition))
        .await;
    assert_refused("changing status", r, "status");
    let r = merge(
        &root,
        "room",
        &json!({"spec": {"selector": {"app": "other"}}}),
    )
    .await;
    assert_refused("changing spec.selector with every RBAC right", r, "spec");

    // AND the Service was not written at all
    let after = Api::<Service>::namespaced(admin.clone(), &ns)
        .get("room")
        .await
        .expect("reading the Service");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "a refused patch changed the Service"
    );
}

#[tokio::test]
async fn other_identities_are_not_affected() {
    // GIVEN the policy enforced for the functions
    let (admin, _fns, ns) = enforced_namespace("vap-admin").await;
    create_room(&admin, &ns, "room").await;
    let services: Api<Service> = Api::namespaced(admin.clone(), &ns);

    // WHEN the admin changes what the functions may not
    let patch = json!({
        "metadata": {
            "labels": {"x": "y"},
            "annotations": {"example.com/x": "y", FOREIGN: null},
            "finalizers": ["example.com/other"],
        },
        "spec": {"selector": {"app": "other"}, "type": "NodePort"},
    });
    let r = merge(&services, "room", &patch).await;

    // THEN it is allowed
    let svc = r.expect("the admin is not subject to the functions' policy");
    let spec = svc.spec.expect("a Service has a spec");
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    assert_eq!(
        svc.metadata.finalizers,
        Some(vec!["example.com/other".to_owned()])
    );
}

#[tokio::test]
async fn the_shipped_binding_denies_in_every_namespace() {
    // GIVEN deploy/ applied
    let admin = Bed::get().kube_client().await;
    apply_deploy_access().await;

    // WHEN the binding and policy are read back
    let binding = Api::<ValidatingAdmissionPolicyBinding>::all(admin.clone())
        .get(POLICY)
        .await
        .expect("the binding of deploy/functions-admission.yaml")
        .spec;
    let policy = Api::<ValidatingAdmissionPolicy>::all(admin)
        .get(POLICY)
        .await
        .expect("the policy of deploy/functions-admission.yaml")
        .spec
        .expect("a policy has a spec");

    // THEN the binding denies (not just warns or audits), for this policy, with no namespace
    // or object selector narrowing it
    assert_eq!(binding.policy_name, POLICY);
    assert_eq!(binding.validation_actions, vec!["Deny".to_owned()]);
    assert!(binding.param_ref.is_none());
    if let Some(m) = &binding.match_resources {
        let unrestricted = |s: &Option<_>| {
            s.as_ref().is_none_or(
                |s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector| {
                    s.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                        && s.match_expressions.as_ref().is_none_or(Vec::is_empty)
                },
            )
        };
        assert!(
            unrestricted(&m.namespace_selector) && unrestricted(&m.object_selector),
            "the shipped binding must cover every namespace: {m:?}"
        );
        assert!(m.resource_rules.is_none() && m.exclude_resource_rules.is_none());
    }
    // AND a policy that cannot be evaluated refuses rather than allows
    assert_eq!(policy.failure_policy.as_deref(), Some("Fail"));
}

#[test]
fn the_policys_outputs_are_exactly_the_output_keys() {
    // The policy lists the outputs in CEL; the code's list is OUTPUT_KEYS. A key added to one
    // and not the other would be refused (or allowed) by surprise.
    let path =
        testbed::local_stack::build::workspace_root().join("deploy/functions-admission.yaml");
    let yaml = std::fs::read_to_string(&path).expect("reading deploy/functions-admission.yaml");
    let expression = yaml
        .split("- name: outputs")
        .nth(1)
        .and_then(|rest| rest.split("- name:").next())
        .expect("the policy's outputs variable");
    let listed: std::collections::BTreeSet<&str> = expression
        .split('\'')
        .filter(|s| s.starts_with("nlb.port-manager/"))
        .collect();
    let code: std::collections::BTreeSet<&str> = OUTPUT_KEYS.into_iter().collect();
    assert_eq!(listed, code);
}
