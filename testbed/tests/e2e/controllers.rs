//! The chain with Kubernetes' own controllers: StatefulSets and Deployments make the pods, the
//! scheduler puts them on kwok nodes in three zones, kwok runs them as a kubelet would, the
//! EndpointSlice controller lists them, the namespace controller deletes. The functions see
//! AWS's health delay (targets read `initial` for [`HEALTH_DELAY`] after registration).
//!
//! The delay comes from a fault proxy running in this test's runtime, and `kubectl` blocks its
//! thread: the runtime has more than one (else a waiting kubectl would stall every AWS call of
//! the functions).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use nlb_port_pool::contract::annotations::{
    ADDRESS, PODS, SERVICE, STATUS, TARGET, TARGET_GROUP_ARN,
};
use testbed::Bed;
use testbed::aws_rules::HealthDelay;
use testbed::local_stack::delivery::scheduled_event;
use testbed::local_stack::examples::targets;

use crate::support::{TestStack, kubectl};
use crate::workloads::{
    GAME_PORT, PodView, all_ready, apply, deployment, ordinals, pods, service, statefulset,
    wait_pods,
};

/// How long a new target reads `initial` before `healthy`.
const HEALTH_DELAY: Duration = Duration::from_secs(4);

/// Seconds a fleet pod takes to stop after its deletion (its terminationGracePeriodSeconds).
const FLEET_STOP_SECONDS: u32 = 6;

/// One of these tests at a time: each drives a whole stack and its pods through moto (one
/// process, DynamoDB serialized); two at once on a 2-vCPU machine time its calls out. The
/// other end-to-end tests still run beside them.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A stack whose functions see [`HEALTH_DELAY`], with the turn of this test (hold the guard
/// until the end). No sweep on a timer: what happens must come from the events (a sweep would
/// hide a missed one, as the readiness gate's deadlock was hidden); tests run it themselves.
async fn stack(prefix: &str) -> (TestStack, tokio::sync::MutexGuard<'static, ()>) {
    let turn = ONE_AT_A_TIME.lock().await;
    let t = TestStack::start_with(prefix, true, |c| {
        c.health = Some(Arc::new(HealthDelay::new(HEALTH_DELAY)));
    })
    .await;
    (t, turn)
}

/// Each pod's address, by pod.
fn addresses(pods: &BTreeMap<String, PodView>) -> BTreeMap<String, String> {
    pods.values()
        .filter_map(|p| Some((p.name.clone(), p.annotation(ADDRESS)?.to_owned())))
        .collect()
}

/// Asserts that each of `names` turned Ready only once its target had been healthy: at least
/// the health delay after its containers were ready (times are whole seconds).
fn assert_ready_after_health(pods: &BTreeMap<String, PodView>, names: &[String]) {
    for name in names {
        let pod = &pods[name];
        let (Some(ready), Some(containers)) = (pod.ready, pod.containers_ready) else {
            panic!("{name} is not Ready: {pod:#?}");
        };
        let waited = (ready - containers).to_std().unwrap_or_default();
        assert!(
            waited + Duration::from_secs(1) >= HEALTH_DELAY,
            "{name} turned Ready {waited:?} after its containers, before its target could be \
             healthy ({HEALTH_DELAY:?}): {pod:#?}"
        );
        assert!(pod.reachable, "{name} is Ready without its gate: {pod:#?}");
        assert_eq!(pod.annotation(STATUS), Some("Ready"), "{pod:#?}");
        assert_eq!(pod.annotation(TARGET), pod.ip.as_deref(), "{pod:#?}");
    }
}

/// The targets of the target group pod `pod` advertises.
async fn pod_targets(t: &TestStack, pod: &PodView) -> Vec<String> {
    let tg = pod
        .annotation(TARGET_GROUP_ARN)
        .unwrap_or_else(|| panic!("{} names no target group: {pod:#?}", pod.name));
    targets(&t.elb(), tg).await.expect("reading targets")
}

/// Waits until the pool's NLBs hold `expected` listeners; with `sweep`, runs the sweep (as its
/// schedule would) before each look.
async fn wait_listeners(t: &TestStack, expected: usize, what: &str, sweep: bool) {
    let event = scheduled_event(Bed::get().region());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if sweep {
            let run = t
                .stack()
                .functions
                .invoker()
                .invoke("sweep", event.as_bytes())
                .await
                .expect("invoking the sweep");
            assert!(run.ok, "the sweep failed: {}", run.body);
        }
        let now = t.listeners().await.len();
        if now == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {now} listeners, not {expected}; {}",
            t.logs()
        );
        tokio::time::sleep(Duration::from_millis(if sweep { 2000 } else { 500 })).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_statefulset_comes_up_in_order_keeps_its_ports_and_lets_go() {
    let (t, _turn) = stack("e2e-fleet").await;
    let ns = t.namespace.clone();
    let five = ordinals("fleet", 5);

    // GIVEN a per-pod Service keeping a gone pod's ports for 120 s
    apply(&service(&ns, "fleet", "fleet", Some(120)));
    // WHEN a StatefulSet of 5 declaring the reachable gate is applied (OrderedReady)
    apply(&statefulset(&ns, "fleet", 5, true, FLEET_STOP_SECONDS, "1"));

    // THEN (a) all 5 turn Ready, in order, each only after its target was healthy
    let up = wait_pods(&t, "fleet", Duration::from_secs(300), "5 pods Ready", |p| {
        all_ready(p, &five)
    })
    .await;
    assert_ready_after_health(&up, &five);
    for pair in five.windows(2) {
        let (before, after) = (&up[&pair[0]], &up[&pair[1]]);
        assert!(
            after.created >= before.ready.unwrap_or_default(),
            "{} was made before {} was Ready",
            after.name,
            before.name
        );
    }
    let first = addresses(&up);
    assert_eq!(first.len(), 5, "{up:#?}");
    let distinct: BTreeSet<&String> = first.values().collect();
    assert_eq!(distinct.len(), 5, "an address given twice: {first:?}");
    assert_eq!(t.listeners().await.len(), 5);

    // WHEN (b) pod 1 is deleted
    let old = up["fleet-1"].clone();
    kubectl(
        &["delete", "pod", "fleet-1", "-n", &ns, "--wait=false"],
        None,
    );

    // THEN its target goes while the pod is still stopping (within one event)...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let registered = pod_targets(&t, &old).await;
        let now = pods(&t, "fleet").await;
        let still_there = now.get("fleet-1").is_some_and(|p| p.uid == old.uid);
        if registered.is_empty() {
            assert!(
                still_there,
                "the old pod was gone before its target was deregistered"
            );
            break;
        }
        assert!(
            still_there,
            "fleet-1 was gone with its old target still registered: {registered:?}; {}",
            t.logs()
        );
        assert!(tokio::time::Instant::now() < deadline, "{registered:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...and the controller's new fleet-1 has the same address, Ready once its target is healthy
    let back = wait_pods(
        &t,
        "fleet",
        Duration::from_secs(120),
        "fleet-1 again",
        |p| all_ready(p, &five) && p["fleet-1"].uid != old.uid,
    )
    .await;
    assert_ready_after_health(&back, &five);
    assert_eq!(addresses(&back), first, "an address moved");
    let new_ip = back["fleet-1"].ip.clone().unwrap_or_default();
    assert_eq!(
        pod_targets(&t, &back["fleet-1"]).await,
        vec![format!("{new_ip}:{GAME_PORT}")]
    );

    // WHEN (c) it scales 5 -> 2
    kubectl(
        &["scale", "statefulset", "fleet", "--replicas=2", "-n", &ns],
        None,
    );
    let two = ordinals("fleet", 2);
    wait_pods(&t, "fleet", Duration::from_secs(120), "scaled to 2", |p| {
        all_ready(p, &two)
    })
    .await;
    // THEN the three gone pods' targets are deregistered, their listeners kept for the grace
    for gone in &five[2..] {
        let registered = pod_targets(&t, &back[gone]).await;
        assert!(
            registered.is_empty(),
            "{gone} is gone but its target is registered: {registered:?}"
        );
    }
    assert_eq!(t.listeners().await.len(), 5, "a listener released early");

    // WHEN it scales back to 5 inside the grace, THEN the same ports again
    kubectl(
        &["scale", "statefulset", "fleet", "--replicas=5", "-n", &ns],
        None,
    );
    let again = wait_pods(&t, "fleet", Duration::from_secs(300), "back to 5", |p| {
        all_ready(p, &five)
    })
    .await;
    assert_ready_after_health(&again, &five);
    assert_eq!(addresses(&again), first, "an address moved");

    // WHEN (d) the StatefulSet rolls to a new pod template
    apply(&statefulset(&ns, "fleet", 5, true, FLEET_STOP_SECONDS, "2"));
    let rolled = wait_pods(&t, "fleet", Duration::from_secs(400), "rolled", |p| {
        all_ready(p, &five)
            && p.values()
                .all(|pod| pod.annotation("example/version") == Some("2"))
    })
    .await;
    // THEN every pod keeps its port and turned Ready again only once its new target was healthy
    assert_ready_after_health(&rolled, &five);
    assert_eq!(addresses(&rolled), first, "an address moved in the roll");
    for name in &five {
        assert_ne!(rolled[name].uid, again[name].uid, "{name} was not replaced");
    }

    // WHEN gone pods are kept 5 s only and it scales to 2, THEN their listeners are released
    kubectl(
        &[
            "annotate",
            "service",
            "fleet",
            "-n",
            &ns,
            "--overwrite",
            "nlb.port-manager/pod-release-after=5",
        ],
        None,
    );
    kubectl(
        &["scale", "statefulset", "fleet", "--replicas=2", "-n", &ns],
        None,
    );
    wait_pods(
        &t,
        "fleet",
        Duration::from_secs(120),
        "scaled to 2 again",
        |p| all_ready(p, &two),
    )
    .await;
    wait_listeners(
        &t,
        2,
        "the gone pods' listeners released after the grace",
        true,
    )
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_rollout_never_leaves_the_listener_without_targets() {
    let (t, _turn) = stack("e2e-rollout").await;
    let ns = t.namespace.clone();
    // GIVEN a per-Service room over a Deployment of 3
    apply(&service(&ns, "room", "room", None));
    apply(&deployment(&ns, "room", 3, "1"));
    let svc = t
        .wait_for_annotation("room", TARGET_GROUP_ARN, Duration::from_secs(120))
        .await;
    let tg = svc
        .metadata
        .annotations
        .unwrap_or_default()
        .get(TARGET_GROUP_ARN)
        .cloned()
        .unwrap_or_default();
    let ready = |p: &BTreeMap<String, PodView>, version: &str| {
        p.len() == 3
            && p.values().all(|pod| {
                pod.ready.is_some()
                    && !pod.deleting
                    && pod.annotation("example/version") == Some(version)
            })
    };
    let v1 = wait_pods(&t, "room", Duration::from_secs(120), "3 pods", |p| {
        ready(p, "1")
    })
    .await;
    let expected = |p: &BTreeMap<String, PodView>| -> Vec<String> {
        let mut all: Vec<String> = p
            .values()
            .filter_map(|pod| Some(format!("{}:{GAME_PORT}", pod.ip.as_ref()?)))
            .collect();
        all.sort();
        all
    };
    let want = expected(&v1);
    t.wait_for_targets(&tg, &want.iter().map(String::as_str).collect::<Vec<_>>())
        .await;

    // WHEN a rollout replaces every pod
    apply(&deployment(&ns, "room", 3, "2"));

    // THEN the targets follow, never none
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let mut samples = 0;
    loop {
        let now = targets(&t.elb(), &tg).await.expect("reading targets");
        samples += 1;
        assert!(
            !now.is_empty(),
            "the listener had no target during the rollout (sample {samples}); {}",
            t.logs()
        );
        let pods = pods(&t, "room").await;
        let mut sorted = now.clone();
        sorted.sort();
        if ready(&pods, "2") && sorted == expected(&pods) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "targets {now:?}; pods {pods:#?}; {}",
            t.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_releases_everything_in_it() {
    let (t, _turn) = stack("e2e-ns").await;
    let ns = t.namespace.clone();
    // GIVEN 20 opted-in Services over a Deployment, and a fleet of 3 in per-pod mode
    apply(&deployment(&ns, "rooms", 2, "1"));
    for i in 0..20 {
        apply(&service(&ns, &format!("room-{i}"), "rooms", None));
    }
    apply(&service(&ns, "fleet", "fleet", Some(60)));
    apply(&statefulset(&ns, "fleet", 3, true, 1, "1"));
    for i in 0..20 {
        t.wait_for_annotation(&format!("room-{i}"), ADDRESS, Duration::from_secs(180))
            .await;
    }
    let three = ordinals("fleet", 3);
    wait_pods(&t, "fleet", Duration::from_secs(180), "fleet Ready", |p| {
        all_ready(p, &three)
    })
    .await;
    assert_eq!(t.listeners().await.len(), 23);

    // WHEN the namespace is deleted
    kubectl(&["delete", "namespace", &ns, "--wait=false"], None);

    // THEN everything is released and the namespace goes
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let gone = kubectl(
            &["get", "namespace", &ns, "--ignore-not-found", "-o", "name"],
            None,
        )
        .trim()
        .is_empty();
        if gone {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "namespace {ns} still there: {}; {}",
            kubectl(&["get", "namespace", &ns, "-o", "yaml"], None),
            t.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_listeners(&t, 0, "every listener released", false).await;
    assert_eq!(t.claim_items().await, 0, "claims left");
    assert!(t.target_groups().await.is_empty(), "target groups left");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_per_pod_service_over_the_same_pods_never_takes_their_outputs() {
    let (t, _turn) = stack("e2e-shared").await;
    let ns = t.namespace.clone();
    let two = ordinals("pair", 2);
    // GIVEN a per-pod Service over a StatefulSet of 2, its pods Ready with their addresses
    apply(&service(&ns, "pair-tcp", "pair", Some(60)));
    apply(&statefulset(&ns, "pair", 2, true, 1, "1"));
    let up = wait_pods(&t, "pair", Duration::from_secs(180), "2 pods Ready", |p| {
        all_ready(p, &two)
    })
    .await;
    let first = addresses(&up);
    assert_eq!(first.len(), 2, "{up:#?}");
    let owner = |p: &PodView| p.annotation(SERVICE).map(str::to_owned);
    for pod in up.values() {
        let named = owner(pod).unwrap_or_default();
        assert!(named.starts_with("pair-tcp/"), "{named}: {pod:#?}");
    }

    // WHEN a second per-pod Service selects the same pods (a UDP twin)
    let mut udp = service(&ns, "pair-udp", "pair", Some(60));
    udp["spec"]["ports"][0]["protocol"] = serde_json::json!("UDP");
    apply(&udp);
    let summary = t
        .wait_for_annotation("pair-udp", PODS, Duration::from_secs(120))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while t.listeners().await.len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the UDP twin's listeners: {:?}; {}",
            t.listeners().await,
            t.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // THEN the pods keep the first's outputs, and the second is told whose they are
    let after = pods(&t, "pair").await;
    assert_eq!(addresses(&after), first, "a pod's address flipped");
    for pod in after.values() {
        assert_eq!(owner(pod), owner(&up[&pod.name]), "{pod:#?}");
    }
    let events = kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns,
            "--field-selector",
            "involvedObject.name=pair-udp,type=Warning",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ],
        None,
    );
    assert!(
        events.contains("PodsShared") && events.contains("pair-tcp"),
        "no Warning naming pair-tcp on pair-udp: {events}; summary {:?}",
        summary.metadata.annotations
    );

    // WHEN the second is deleted, THEN the pods' outputs stay the first's
    kubectl(
        &["delete", "service", "pair-udp", "-n", &ns, "--wait=false"],
        None,
    );
    wait_listeners(&t, 2, "the UDP twin's listeners released", false).await;
    let left = pods(&t, "pair").await;
    assert_eq!(
        addresses(&left),
        first,
        "releasing the twin touched the pods"
    );
    for pod in left.values() {
        assert_eq!(owner(pod), owner(&up[&pod.name]), "{pod:#?}");
    }
    t.stop().await;
}
