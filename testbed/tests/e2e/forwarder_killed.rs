//! The forwarder killed (SIGKILL, as a crash) at random points during a churn of creates and
//! deletes, restarted as its pod's container would be: after the restart's resync and one
//! sweep, what AWS holds is exactly what the Services ask for.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams};
use nlb_port_pool::contract::annotations::ALLOCATED_PORT;
use testbed::invariants::Claims;
use testbed::kube_fixtures::{PortSpec, create, endpoint_slice, opted_in_service};
use testbed::local_stack::delivery::scheduled_event;
use testbed::rng::Rng;
use tokio::time::Instant;

use crate::support::TestStack;

/// Service changes in the churn.
const STEPS: usize = 45;
/// Forwarder kills during it.
const KILLS: usize = 3;
/// Changes made while the forwarder is down, after each kill.
const CHANGES_WHILE_DOWN: usize = 3;
/// The claim grace of the stack's functions: the sweep undoes an unfinished claim this old.
const CLAIM_GRACE: Duration = Duration::from_secs(5);

/// Creates opted-in Service `name` (one TCP port) and its EndpointSlice with one ready pod.
async fn create_room(t: &TestStack, name: &str, pod_ip: &str) {
    let ns = &t.namespace;
    create(
        &t.admin,
        &opted_in_service(ns, name, &[PortSpec::tcp("game", 7777, 7777)]),
    )
    .await;
    let slice = endpoint_slice(
        ns,
        &format!("{name}-1"),
        name,
        &[("game", 7777, "TCP")],
        &[(pod_ip, true)],
    );
    create::<EndpointSlice>(&t.admin, &slice).await;
}

/// Waits until every Service in `live` carries its port and every other one is gone.
async fn wait_until_settled(t: &TestStack, live: &BTreeSet<String>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let services = t
            .services()
            .list(&ListParams::default())
            .await
            .expect("listing Services");
        let present: BTreeSet<String> = services
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        let unallocated: Vec<&String> = services
            .iter()
            .filter(|s| !annotated(s))
            .filter_map(|s| s.metadata.name.as_ref())
            .collect();
        if &present == live && unallocated.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after {timeout:?}: still present though deleted {:?}, missing {:?}, \
             unallocated {unallocated:?}; {}",
            present.difference(live).collect::<Vec<_>>(),
            live.difference(&present).collect::<Vec<_>>(),
            t.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn annotated(s: &Service) -> bool {
    (s.metadata.annotations.as_ref()).is_some_and(|a| a.contains_key(ALLOCATED_PORT))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_forwarder_during_a_churn_loses_nothing_and_leaks_nothing() {
    // GIVEN a local stack whose functions give up unfinished claims after 5 s
    let mut t = TestStack::start_with("e2e-kill", true, |c| {
        c.claim_grace = Some(CLAIM_GRACE);
        c.concurrency = 2;
    })
    .await;
    let mut rng = Rng::from_env("KILL_SEED", 0x00f0_4a4d);
    let mut kill_at = BTreeSet::new();
    while kill_at.len() < KILLS {
        kill_at.insert(2 + rng.below(STEPS - 2 - CHANGES_WHILE_DOWN));
    }
    let api = t.services();

    // WHEN Services are created and deleted, the forwarder killed at random steps and
    // restarted after a few more changes
    let mut live = BTreeSet::new();
    let (mut created, mut deleted, mut restart_at) = (0, 0, None);
    for step in 0..STEPS {
        if kill_at.contains(&step) {
            eprintln!("step {step}: killing the forwarder");
            t.stack_mut().kill_forwarder().await;
            restart_at = Some(step + CHANGES_WHILE_DOWN);
        }
        if restart_at == Some(step) {
            eprintln!("step {step}: restarting the forwarder");
            let began = Instant::now();
            (t.stack_mut().restart_forwarder().await)
                .unwrap_or_else(|e| panic!("restarting the forwarder: {e:#}"));
            eprintln!("  ready again in {:?}", began.elapsed());
            restart_at = None;
        }
        if live.is_empty() || rng.below(3) > 0 {
            let name = format!("room-{step}");
            create_room(
                &t,
                &name,
                &format!("10.9.{}.{}", step / 200, step % 200 + 1),
            )
            .await;
            live.insert(name);
            created += 1;
        } else {
            let names: Vec<String> = live.iter().cloned().collect();
            let name = &names[rng.below(names.len())];
            api.delete(name, &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
            live.remove(name);
            deleted += 1;
        }
        // Kills land anywhere: before, during or after the work of earlier changes.
        tokio::time::sleep(Duration::from_millis(rng.below(400) as u64)).await;
    }
    if restart_at.is_some() {
        (t.stack_mut().restart_forwarder().await)
            .unwrap_or_else(|e| panic!("restarting the forwarder: {e:#}"));
    }
    eprintln!("churn: {created} created, {deleted} deleted, {KILLS} kills at steps {kill_at:?}");

    // THEN the Services settle: each live one allocated, each deleted one gone
    let began = Instant::now();
    wait_until_settled(&t, &live, Duration::from_secs(240)).await;
    eprintln!("settled {:?} after the churn", began.elapsed());

    // WHEN the sweep runs once, after the claim grace has passed
    tokio::time::sleep(CLAIM_GRACE + Duration::from_secs(1)).await;
    let region = testbed::Bed::get().region().to_owned();
    let sweep = (t.stack().functions.invoker())
        .invoke("sweep", scheduled_event(&region).as_bytes())
        .await
        .expect("invoking the sweep");
    assert!(sweep.ok, "the sweep failed: {}", sweep.body);

    // THEN AWS holds exactly one claim, listener and target group per live Service
    let world = t.world();
    let breaches = world.breaches(50).await;
    assert!(breaches.is_empty(), "invariants broken: {breaches:#?}");
    let claims = Claims::read(&world.dynamodb, &world.table).await;
    assert_eq!(claims.held(), live.len(), "claims held");
    assert_eq!(t.listeners().await.len(), live.len(), "listeners");
    assert_eq!(t.target_groups().await.len(), live.len(), "target groups");
    eprintln!(
        "after one sweep: {} Services, {} claims, 0 breaches; dead letters {}",
        live.len(),
        claims.held(),
        t.dead_letters().await
    );
    t.stop().await;
}
