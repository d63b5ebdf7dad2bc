//! AWS behaviours the bed's moto does not show, against the in-memory doubles (which behave
//! as AWS does): draining targets, NLBs gone or full, foreign listeners, pools reconfigured.

use std::sync::Arc;
use std::time::Duration;

use super::{Outcome, Reconciler};
use crate::annotations::AUTO_ASSIGN;
use crate::claims::MemoryClaimStore;
use crate::cluster::MemoryCluster;
use crate::elb::MemoryLoadBalancing;
use crate::event::ServiceKey;
use crate::pool::PoolSet;
use crate::service_model::{ServicePortSpec, ServiceState, TargetPort};
use crate::targets::{SlicePort, SliceView};

const NLB_A: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/a/1";

struct World {
    elb: Arc<MemoryLoadBalancing>,
    cluster: MemoryCluster,
    reconciler: Reconciler,
}

fn pools(nlbs: &[&str], ports: &str, quota: u32) -> PoolSet {
    let arns: Vec<String> = nlbs.iter().map(|a| format!("\"{a}\"")).collect();
    PoolSet::from_json(&format!(
        r#"{{"default":{{"nlbArns":[{}],"ports":"{ports}","listenerQuota":{quota}}}}}"#,
        arns.join(",")
    ))
    .expect("pools")
}

/// NLBs `nlbs` exist in ELBv2; the pool is `in_pool`.
fn world_with(nlbs: &[&str], in_pool: PoolSet) -> World {
    let store = Arc::new(MemoryClaimStore::new());
    let dns: Vec<(String, String)> = nlbs
        .iter()
        .enumerate()
        .map(|(i, a)| ((*a).to_owned(), format!("nlb-{i}.elb")))
        .collect();
    let dns_refs: Vec<(&str, &str)> = dns.iter().map(|(a, d)| (a.as_str(), d.as_str())).collect();
    let elb = Arc::new(MemoryLoadBalancing::with_nlbs(&dns_refs));
    World {
        reconciler: reconciler(in_pool, &store, &elb),
        elb,
        cluster: MemoryCluster::new(),
    }
}

fn world(nlbs: &[&str], ports: &str, quota: u32) -> World {
    world_with(nlbs, pools(nlbs, ports, quota))
}

fn reconciler(
    pools: PoolSet,
    store: &Arc<MemoryClaimStore>,
    elb: &Arc<MemoryLoadBalancing>,
) -> Reconciler {
    Reconciler::new("prod", "vpc-1", pools, store.clone(), elb.clone())
        .with_claim_grace(Duration::ZERO)
}

fn opted_in(name: &str, uid: &str) -> ServiceState {
    ServiceState {
        key: ServiceKey {
            cluster: "prod".into(),
            namespace: "games".into(),
            name: name.into(),
        },
        uid: uid.into(),
        resource_version: String::new(),
        deleting: false,
        finalizers: vec![],
        annotations: [(AUTO_ASSIGN.to_owned(), "true".to_owned())].into(),
        ports: vec![ServicePortSpec {
            name: Some("game".into()),
            port: 7777,
            protocol: "TCP".into(),
            target_port: TargetPort::Number(8000),
        }],
        external_name: false,
    }
}

fn slice(ips: &[&str]) -> Vec<SliceView> {
    vec![SliceView {
        name: "room-game".into(),
        managed_by: Some(crate::target_policy::CONTROLLER_MANAGER.to_owned()),
        ports: vec![SlicePort {
            name: Some("game".to_owned()),
            port: Some(8000),
        }],
        ready: ips.iter().map(|i| i.parse().expect("ip")).collect(),
    }]
}

impl World {
    async fn reconcile(&self, name: &str) -> Outcome {
        self.reconciler
            .reconcile_service(&self.cluster, "games", name, None)
            .await
            .unwrap_or_else(|e| panic!("reconciling {name}: {e}"))
    }

    fn targets(&self) -> Vec<String> {
        self.elb
            .target_groups()
            .iter()
            .flat_map(|t| t.targets.iter().map(|x| format!("{}:{}", x.ip, x.port)))
            .collect()
    }
}

#[tokio::test]
async fn a_pod_back_within_the_deregistration_delay_is_registered_again() {
    // GIVEN an allocated Service whose one pod is registered
    let w = world(&[NLB_A], "30000-30099", 50);
    w.cluster.put_service(opted_in("room", "u1"));
    w.cluster.set_slices("games", "room", slice(&["10.0.0.1"]));
    w.reconcile("room").await;
    assert_eq!(w.targets(), ["10.0.0.1:8000"]);

    // WHEN the pod goes NotReady (deregistered: AWS keeps it `draining`) and is back before
    // the deregistration delay ends
    w.cluster.set_slices("games", "room", slice(&[]));
    w.reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("deregisters");
    assert!(w.targets().is_empty(), "deregistered, draining");
    w.cluster.set_slices("games", "room", slice(&["10.0.0.1"]));
    let synced = w
        .reconciler
        .sync_targets(&w.cluster, "games", "room")
        .await
        .expect("registers");

    // THEN it is registered again: a draining target does not count as registered
    assert_eq!(
        synced,
        Outcome::TargetsSynced {
            registered: 1,
            deregistered: 0
        }
    );
    assert_eq!(w.targets(), ["10.0.0.1:8000"]);
}
