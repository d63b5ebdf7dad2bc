//! Two clusters' stacks on one claims table and pool: this stack (the bed's cluster) and a
//! stack of the bed's second API server ("cluster b"), each naming the other in
//! `SHARED_CLUSTERS`, as two `sam deploy`s would (the second with `SharedTableName`).

use std::time::Duration;

use testbed::iam_gate::{GateStack, StackSpec};
use testbed::{Bed, kube_fixtures, unique_name};

use super::{CLUSTER, FunctionDeps, Stack};
use nlb_port_pool::model::config::KubeAccess;

impl Stack {
    /// This stack redeployed with `SharedClusters` naming `other`: its functions accept that
    /// cluster's records and resources. The earlier roles' calls stay checked.
    pub async fn sharing_with(mut self, other: &str) -> Stack {
        let bed = Bed::get();
        let gate = GateStack::register_with(
            bed,
            &StackSpec {
                stack_name: format!("{}-shared", self.table),
                cluster: CLUSTER.to_owned(),
                pool_nlb_arns: self.nlbs.iter().map(|n| n.arn.clone()).collect(),
                vpc_id: self.nlbs[0].vpc_id.clone(),
                table: self.table.clone(),
                bus: None,
            },
            serde_json::json!({ "SharedClusters": other }),
        )
        .await
        .expect("registering the redeployed stack with the IAM gate");
        let mut config = self.deps.config.clone();
        config.shared_clusters = vec![other.to_owned()];
        self.redeploy(gate, &config).await;
        self
    }

    /// The stack of cluster `name`, the bed's cluster b, on this stack's table and pool
    /// (`SharedTableName`, `SharedClusters` naming this cluster), with a namespace of its own
    /// there.
    pub async fn second_cluster(&self, name: &str) -> Stack {
        let bed = Bed::get();
        let admin = bed.kube_client_b().await;
        let namespace = unique_name("cluster-b");
        kube_fixtures::create_namespace(&admin, &namespace).await;
        let mut config = self.deps.config.clone();
        config.cluster_name = name.to_owned();
        config.kube = KubeAccess::Kubeconfig(bed.kubeconfig_b());
        config.namespaces = vec![namespace.clone()];
        config.shared_clusters = vec![CLUSTER.to_owned()];
        let gate = GateStack::register_with(
            bed,
            &StackSpec {
                stack_name: unique_name("stack-b"),
                cluster: name.to_owned(),
                pool_nlb_arns: self.nlbs.iter().map(|n| n.arn.clone()).collect(),
                vpc_id: self.nlbs[0].vpc_id.clone(),
                table: self.table.clone(),
                bus: None,
            },
            serde_json::json!({ "SharedClusters": CLUSTER, "SharedTableName": self.table }),
        )
        .await
        .expect("registering cluster b's stack with the IAM gate");
        let fns = FunctionDeps::new(&config, &gate.sdk_config(bed).await, Duration::ZERO);
        Stack {
            elb: self.elb.clone(),
            admin,
            sdk: self.sdk.clone(),
            dynamodb: self.dynamodb.clone(),
            table: self.table.clone(),
            nlbs: self.nlbs.clone(),
            namespace: namespace.clone(),
            namespaces: vec![namespace],
            deps: fns.allocate,
            release: fns.release,
            sync_targets: fns.sync_targets,
            sweep: fns.sweep,
            gate,
            other_gates: std::sync::Mutex::new(Vec::new()),
        }
    }
}
