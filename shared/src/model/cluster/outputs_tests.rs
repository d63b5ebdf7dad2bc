use super::*;
use crate::contract::annotations::{ADDRESS, AUTO_ASSIGN, SERVICE, STATUS};
use crate::contract::event::ServiceKey;

fn svc(annotations: &[(&str, &str)], finalizers: &[&str]) -> ServiceState {
    ServiceState {
        created: None,
        key: ServiceKey {
            cluster: "c".into(),
            namespace: "n".into(),
            name: "s".into(),
        },
        uid: "u".into(),
        resource_version: "42".into(),
        deleting: false,
        finalizers: finalizers.iter().map(|f| (*f).to_owned()).collect(),
        annotations: annotations
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ports: vec![],
        external_name: false,
        selector: Default::default(),
        pod: None,
    }
}

fn outputs(pairs: &[(&str, &str)], finalizer: bool) -> ServiceOutputs {
    ServiceOutputs {
        annotations: pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        finalizer,
    }
}

#[test]
fn nothing_to_write_when_outputs_match() {
    let s = svc(
        &[(AUTO_ASSIGN, "true"), (STATUS, "Allocated")],
        &[FINALIZER],
    );
    assert_eq!(outputs_patch(&s, &ServiceOutputs::current(&s)), None);
}

#[test]
fn adds_finalizer_keeping_others_and_sets_preconditions() {
    let s = svc(&[], &["other/keep"]);
    let patch = outputs_patch(&s, &outputs(&[(STATUS, "Pending: x")], true)).expect("a change");
    assert_eq!(patch["metadata"]["uid"], "u");
    assert_eq!(patch["metadata"]["resourceVersion"], "42");
    assert_eq!(
        patch["metadata"]["finalizers"],
        json!(["other/keep", FINALIZER])
    );
    assert_eq!(patch["metadata"]["annotations"][STATUS], "Pending: x");
}

#[test]
fn a_pods_patch_names_the_pod_and_never_a_finalizer() {
    let mut s = svc(&[], &[]);
    s.pod = Some(crate::contract::service_model::PodSubject {
        name: "room-0".into(),
        uid: "pod-uid".into(),
        replaces: None,
    });
    let patch = outputs_patch(&s, &outputs(&[(STATUS, "Allocated")], true)).expect("a change");
    assert_eq!(patch["metadata"]["uid"], "pod-uid");
    assert!(patch["metadata"].get("finalizers").is_none());
    assert_eq!(outputs_patch(&s, &outputs(&[], true)), None);
}

fn pod_of(s: ServiceState, replaces: Option<&str>) -> ServiceState {
    let mut s = s;
    s.pod = Some(crate::contract::service_model::PodSubject {
        name: "room-0".into(),
        uid: "pod-uid".into(),
        replaces: replaces.map(str::to_owned),
    });
    s
}

#[test]
fn a_pods_outputs_name_their_service_and_lose_it_when_cleared() {
    let free = pod_of(svc(&[], &[]), None);
    let patch = outputs_patch(&free, &outputs(&[(STATUS, "Allocated")], false)).expect("a change");
    assert_eq!(patch["metadata"]["annotations"][SERVICE], "s/u");
    let owned = pod_of(svc(&[(STATUS, "Allocated"), (SERVICE, "s/u")], &[]), None);
    assert_eq!(
        outputs_patch(&owned, &outputs(&[(STATUS, "Allocated")], false)),
        None,
        "already as asked"
    );
    let cleared = outputs_patch(&owned, &ServiceOutputs::default()).expect("a change");
    assert_eq!(cleared["metadata"]["annotations"][SERVICE], Value::Null);
}

#[test]
fn another_services_pod_is_never_written_unless_taken_over() {
    let theirs = pod_of(svc(&[(ADDRESS, "x:1"), (SERVICE, "other/u2")], &[]), None);
    assert!(!writes_pod(&theirs));
    assert_eq!(outputs_patch(&theirs, &ServiceOutputs::default()), None);
    assert_eq!(
        outputs_patch(&theirs, &outputs(&[(ADDRESS, "y:2")], false)),
        None
    );
    // The run judged `other` gone: it takes the pod over.
    let gone_owner = pod_of(
        svc(&[(ADDRESS, "x:1"), (SERVICE, "other/u2")], &[]),
        Some("other/u2"),
    );
    let patch = outputs_patch(&gone_owner, &outputs(&[(ADDRESS, "y:2")], false)).expect("taken");
    assert_eq!(patch["metadata"]["annotations"][SERVICE], "s/u");
    // Judged gone was another owner than the one the pod names now: hands off.
    let moved_on = pod_of(
        svc(&[(ADDRESS, "x:1"), (SERVICE, "third/u3")], &[]),
        Some("other/u2"),
    );
    assert!(!writes_pod(&moved_on));
}

#[test]
fn removes_stale_outputs_and_finalizer_only() {
    let s = svc(
        &[
            (AUTO_ASSIGN, "false"),
            (ADDRESS, "x:1"),
            (STATUS, "Allocated"),
        ],
        &["a/b", FINALIZER],
    );
    let patch = outputs_patch(&s, &ServiceOutputs::default()).expect("a change");
    let ann = &patch["metadata"]["annotations"];
    assert_eq!(ann[ADDRESS], Value::Null);
    assert_eq!(ann[STATUS], Value::Null);
    assert!(
        ann.get(AUTO_ASSIGN).is_none(),
        "input annotations are not the system's"
    );
    assert_eq!(patch["metadata"]["finalizers"], json!(["a/b"]));
}
