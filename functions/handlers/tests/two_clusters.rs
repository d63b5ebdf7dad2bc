//! Two clusters on one pool, on the bed: the stack of the bed's cluster and a stack of its
//! second API server (cluster b), one claims table, one moto NLB, each stack's roles as the IAM
//! gate resolves them from template.yaml (`SharedClusters`, `SharedTableName`). Both allocate
//! without a port twice, each sweep deletes nothing of the other's, and a room moves from one
//! cluster to the other by its claim key, keeping its port and address.

mod common;

use std::collections::BTreeSet;

use common::Stack;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::contract::annotations::{
    ADDRESS, CLAIM_KEY, LISTENER_ARN, NETWORK_DISABLED, STATUS,
};
use nlb_port_pool::model::claims::ClaimStore;
use testbed::kube_fixtures::PortSpec;

/// Cluster b's name (`ClusterName` of its stack).
const CLUSTER_B: &str = "bed-b";

fn status(notes: &std::collections::BTreeMap<String, String>) -> String {
    notes.get(STATUS).cloned().unwrap_or_default()
}

async fn two_stacks(prefix: &str) -> (Stack, Stack) {
    let a = Stack::new(prefix, 1, "30000-30099", 50)
        .await
        .sharing_with(CLUSTER_B)
        .await;
    let b = a.second_cluster(CLUSTER_B).await;
    (a, b)
}

#[tokio::test]
async fn both_clusters_allocate_on_one_pool_and_each_sweep_keeps_the_others() {
    // GIVEN three rooms in each cluster, allocated by each cluster's functions
    let (a, b) = two_stacks("two-clusters").await;
    for i in 0..3 {
        let name = format!("room-{i}");
        for (stack, ip) in [(&a, format!("10.1.0.{i}")), (&b, format!("10.2.0.{i}"))] {
            stack.create_room(&name).await;
            stack.room_pod(&name, &ip, true).await;
            stack.changed(&name).await.expect("allocates");
        }
    }

    // THEN six listeners on six ports, each room's address its own
    let listeners = a.listeners().await;
    let ports: BTreeSet<u16> = listeners.iter().map(|l| l.0).collect();
    assert_eq!((listeners.len(), ports.len()), (6, 6), "{listeners:?}");
    let mut addresses = BTreeSet::new();
    for stack in [&a, &b] {
        for i in 0..3 {
            let notes = stack.annotations(&format!("room-{i}")).await;
            assert!(addresses.insert(notes[ADDRESS].clone()), "{notes:?}");
        }
    }
    // AND the table records both clusters, each with its own kube-system uid
    let store = DynamoClaimStore::new(a.dynamodb.clone(), &a.table);
    let identities = store.identities().await.expect("reads");
    let names: BTreeSet<&str> = identities.iter().map(|i| i.cluster_name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["bed", CLUSTER_B]));
    assert_ne!(identities[0].cluster_uid, identities[1].cluster_uid);

    // WHEN each cluster's sweep runs (neither sees the other's Services)
    let swept_a = a.run_sweep().await;
    let swept_b = b.run_sweep().await;

    // THEN neither deletes or releases anything
    for swept in [&swept_a, &swept_b] {
        assert_eq!(swept.deletions_blocked, None, "{swept:?}");
        assert_eq!(
            (
                swept.orphan_claims_released,
                swept.leaked_listeners_deleted,
                swept.leaked_target_groups_deleted
            ),
            (0, 0, 0),
            "{swept:?}"
        );
    }
    assert_eq!(a.listeners().await.len(), 6);

    // WHEN a room of cluster a is deleted
    let uid = a.uid("room-0").await;
    a.delete_service("room-0").await;
    a.deleted("room-0", &uid).await.expect("releases");

    // THEN only its listener goes; cluster b's three stay, and b's sweep still keeps them
    assert_eq!(a.listeners().await.len(), 5);
    let swept_b = b.run_sweep().await;
    assert_eq!(swept_b.orphan_claims_released, 0, "{swept_b:?}");
    for i in 0..3 {
        assert!(
            b.annotations(&format!("room-{i}"))
                .await
                .contains_key(ADDRESS)
        );
    }
}

#[tokio::test]
async fn a_room_moves_to_the_other_cluster_by_its_claim_key_keeping_its_address() {
    // GIVEN room "arena" in cluster a, claim key arena-1, allocated with its pod
    let (a, b) = two_stacks("claim-key-move").await;
    let ports = [PortSpec::tcp("game", 7777, 8000)];
    let key = [(CLAIM_KEY, "arena-1")];
    a.create_room_with("arena", &ports, &key).await;
    a.changed("arena").await.expect("a allocates");
    let before = a.annotations("arena").await;
    let (address, listener) = (before[ADDRESS].clone(), before[LISTENER_ARN].clone());

    // WHEN cluster b's "arena" names the same key while a's holds it
    b.create_room_with("arena", &ports, &key).await;
    b.changed("arena").await.expect("b waits");

    // THEN b waits, naming the holder, and made nothing
    let waiting = status(&b.annotations("arena").await);
    assert!(
        waiting.starts_with("Pending: claim key arena-1 is held by Service")
            && waiting.contains("of cluster bed "),
        "{waiting}"
    );
    assert_eq!(a.listeners().await.len(), 1);

    // WHEN a's room is network-disabled, and b's is looked at again (its sweep retries it)
    a.annotate("arena", &[(NETWORK_DISABLED, Some("true"))])
        .await;
    let started = std::time::Instant::now();
    a.changed("arena").await.expect("a disables");
    let drained = started.elapsed();
    assert_eq!(status(&a.annotations("arena").await), "Disabled");
    let started = std::time::Instant::now();
    b.run_sweep().await;
    // Figures for BENCHMARKS.md ("Day two"), not a bound.
    eprintln!(
        "[two clusters] drain {:.0} ms, sweep run with the take-over {:.0} ms",
        drained.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64() * 1000.0
    );

    // THEN b has a's listener, port and address, forwarding to b's own target group with b's
    // pod as its target
    let after = b.annotations("arena").await;
    assert_eq!(
        (&after[ADDRESS], &after[LISTENER_ARN]),
        (&address, &listener),
        "{after:?}"
    );
    let groups = b.target_groups_of(&b.uid("arena").await).await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    let on_port = a.listeners().await;
    assert_eq!(on_port.len(), 1, "{on_port:?}");
    assert_eq!(
        on_port[0].2, groups[0],
        "the listener forwards to b's group"
    );
    assert_eq!(
        b.targets(&groups[0]).await,
        BTreeSet::from(["10.4.0.1:8000".to_owned()])
    );

    // AND a's room, looked at again, waits without an address; both sweeps keep b's listener
    a.changed("arena").await.expect("a waits");
    let a_now = a.annotations("arena").await;
    assert!(
        status(&a_now).starts_with("Pending: claim key arena-1"),
        "{a_now:?}"
    );
    assert!(!a_now.contains_key(ADDRESS), "{a_now:?}");
    let swept_a = a.run_sweep().await;
    assert_eq!(swept_a.leaked_listeners_deleted, 0, "{swept_a:?}");
    b.run_sweep().await;
    assert_eq!(a.listeners().await.len(), 1);
    assert_eq!(b.annotations("arena").await[ADDRESS], address);

    // AND deleting a's room releases nothing of b's
    let uid = a.uid("arena").await;
    a.delete_service("arena").await;
    a.deleted("arena", &uid).await.expect("a releases");
    assert_eq!(a.listeners().await.len(), 1);

    // AND deleting b's room (its release function, its role): it goes, its listener stays,
    // offered to the next Service naming the key; a's sweep leaves it too
    let uid = b.uid("arena").await;
    b.delete_service("arena").await;
    b.deleted("arena", &uid).await.expect("b offers");
    assert!(
        b.services()
            .get_opt("arena")
            .await
            .expect("reads")
            .is_none(),
        "b's Service is gone"
    );
    let store = DynamoClaimStore::new(a.dynamodb.clone(), &a.table);
    let hold = store
        .key_hold("arena-1")
        .await
        .expect("reads")
        .expect("held");
    assert!(
        hold.offered_at.is_some() && hold.owner.key.cluster == CLUSTER_B,
        "{hold:?}"
    );
    a.run_sweep().await;
    b.run_sweep().await;
    assert_eq!(a.listeners().await.len(), 1);
}
