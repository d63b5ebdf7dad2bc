//! Whose world a claims table describes: the cluster (by name and `kube-system` uid) and the
//! stack. The sweep deletes what the table does not account for, so it must first know the
//! table is this cluster's and this stack's (see `reconcile::identity`).

/// Whose world a claims table records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableIdentity {
    /// The cluster's name (`CLUSTER_NAME`), as tags and claims record it.
    pub cluster_name: String,
    /// The uid of the cluster's `kube-system` namespace: made once per cluster, so a cluster
    /// rebuilt under the same name has another.
    pub cluster_uid: String,
    /// The stack's id (`STACK_ID`: CloudFormation's `AWS::StackId`).
    pub stack_id: String,
}

impl std::fmt::Display for TableIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cluster {} (kube-system uid {}), stack {}",
            self.cluster_name, self.cluster_uid, self.stack_id
        )
    }
}
