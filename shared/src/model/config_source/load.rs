//! [`FunctionConfig::load`]: the environment read, and what it only names looked up.

use std::collections::BTreeMap;

use super::lookups::{ConfigLookups, MAX_NAMES_PER_CALL};
use super::names::{nlb_names, with_arns};
use crate::model::config::{
    ConfigError, EKS_ENDPOINT_FIELD, Env, EnvSource, FunctionConfig, KubeAccess, namespaces,
    target_policy,
};
use crate::model::pool::PoolSet;

/// The variable holding the pools' JSON itself.
pub const POOLS_VAR: &str = "POOLS";
/// The variable naming the SSM parameter that holds the pools' JSON.
pub const POOLS_PARAMETER_VAR: &str = "POOLS_PARAMETER";

impl FunctionConfig {
    /// Reads the configuration from `source`, asking `lookups` for what it only names;
    /// the first unusable setting stops it, with an error naming the variable.
    pub async fn load(
        source: &dyn EnvSource,
        lookups: &dyn ConfigLookups,
    ) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        let cluster_name = env.required("CLUSTER_NAME")?;
        crate::contract::names::validate_cluster_name(&cluster_name)
            .map_err(|p| ConfigError::new("CLUSTER_NAME", p))?;
        let table_name = env.required("TABLE_NAME")?;
        let vpc_id = env.required("VPC_ID")?;
        let namespaces = namespaces(&env)?;
        let targets = target_policy(&env)?;
        let shared_clusters = crate::model::config::shared_clusters(&env, &cluster_name)?;
        let kube = match KubeAccess::from_env(&env)? {
            Some(access) => access,
            None => kube_access_of(&cluster_name, lookups).await?,
        };
        let pools = pools(&env, lookups).await?;
        Ok(Self {
            cluster_name,
            table_name,
            vpc_id,
            pools,
            kube,
            namespaces,
            targets,
            shared_clusters,
        })
    }
}

/// The pools, from `POOLS` or the parameter `POOLS_PARAMETER` names, NLB names resolved.
pub async fn pools(env: &Env<'_>, lookups: &dyn ConfigLookups) -> Result<PoolSet, ConfigError> {
    let (var, json) = match (env.optional(POOLS_VAR), env.optional(POOLS_PARAMETER_VAR)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                POOLS_VAR,
                format!("is set, and so is {POOLS_PARAMETER_VAR}: set one of the two"),
            ));
        }
        (Some(json), None) => (POOLS_VAR, json),
        (None, Some(name)) => {
            let json = lookups.parameter(&name).await.map_err(|e| {
                ConfigError::new(POOLS_PARAMETER_VAR, format!("reading {name:?}: {e}"))
            })?;
            (POOLS_PARAMETER_VAR, json)
        }
        (None, None) => {
            return Err(ConfigError::new(
                POOLS_VAR,
                format!("is required but not set (nor is {POOLS_PARAMETER_VAR})"),
            ));
        }
    };
    let json = resolve_names(&json, lookups)
        .await
        .map_err(|p| ConfigError::new(var, p))?;
    PoolSet::from_json(&json).map_err(|p| ConfigError::new(var, p))
}

/// `json` (pools' JSON) with its NLB names replaced by their ARNs: every name must name a
/// network load balancer of this account and region. The operator's CLI reads pools so too.
pub async fn resolve_names(json: &str, lookups: &dyn ConfigLookups) -> Result<String, String> {
    let names = nlb_names(json)?;
    if names.is_empty() {
        return Ok(json.to_owned());
    }
    let mut arns = BTreeMap::new();
    for batch in names.chunks(MAX_NAMES_PER_CALL) {
        for lb in lookups.load_balancers(batch).await? {
            if lb.kind != "network" {
                return Err(format!(
                    "load balancer {:?} is of type {}, not a network load balancer",
                    lb.name, lb.kind
                ));
            }
            arns.insert(lb.name, lb.arn);
        }
    }
    with_arns(json, &arns)
}

/// How to reach cluster `name`, as `eks:DescribeCluster` says.
async fn kube_access_of(
    name: &str,
    lookups: &dyn ConfigLookups,
) -> Result<KubeAccess, ConfigError> {
    let problem = |p: String| {
        ConfigError::new(
            "CLUSTER_NAME",
            format!("eks:DescribeCluster of {name:?} (KUBECONFIG and EKS_ENDPOINT unset): {p}"),
        )
    };
    let cluster = lookups.cluster(name).await.map_err(problem)?;
    let status = cluster.status.as_deref().unwrap_or("unknown");
    let (Some(endpoint), Some(ca)) = (cluster.endpoint, cluster.ca_data) else {
        return Err(problem(format!(
            "the cluster has no endpoint and CA yet (status {status})"
        )));
    };
    KubeAccess::eks(&endpoint, &ca).map_err(|(field, p)| {
        let what = if field == EKS_ENDPOINT_FIELD {
            "endpoint"
        } else {
            "certificateAuthority.data"
        };
        problem(format!("its {what} {p}"))
    })
}
