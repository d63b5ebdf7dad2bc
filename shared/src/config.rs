//! Typed configuration, read once from the environment at cold start.
//!
//! Every setting is read through [`Env`], so a missing or malformed variable stops start-up
//! with a [`ConfigError`] that names the variable and says what is wrong with it.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;

use crate::pool::PoolSet;
use crate::target_policy::{
    TARGET_CIDRS_VAR, TRUSTED_MANAGERS_VAR, TargetPolicy, parse_cidrs, parse_managers,
};

/// A setting that is missing or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    /// The variable's name, e.g. `TABLE_NAME`.
    pub name: String,
    /// What is wrong with it, e.g. `is required but not set`.
    pub problem: String,
}

impl ConfigError {
    /// A problem with the variable `name`.
    pub fn new(name: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            problem: problem.into(),
        }
    }
}

/// Where settings come from: the process environment, or a map in tests.
pub trait EnvSource {
    /// The raw value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvSource for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| (*v).to_owned())
    }
}

/// Reads settings from an [`EnvSource`], naming the variable in every error.
pub struct Env<'a> {
    source: &'a dyn EnvSource,
}

impl<'a> Env<'a> {
    /// Reads from `source`.
    pub fn new(source: &'a dyn EnvSource) -> Self {
        Self { source }
    }

    /// A set, non-blank value; blank counts as unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.source
            .var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A value that must be set.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// A value parsed with `FromStr`, or `default` when unset.
    pub fn parsed_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(name, format!("invalid value {raw:?}: {e}"))),
        }
    }
}

/// How a process reaches the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeAccess {
    /// A kubeconfig file: local runs and tests (`KUBECONFIG`).
    Kubeconfig(PathBuf),
    /// An EKS cluster, authenticated with a token signed by the function's IAM role.
    Eks {
        /// The API server URL, `https://....eks.amazonaws.com`.
        endpoint: String,
        /// The cluster CA bundle as PEM text.
        ca_pem: String,
    },
}

impl KubeAccess {
    /// `KUBECONFIG` when set, else `EKS_ENDPOINT` with `EKS_CA_DATA` (base64 PEM, as
    /// `aws eks describe-cluster` prints it).
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        if let Some(path) = env.optional("KUBECONFIG") {
            return Ok(Self::Kubeconfig(PathBuf::from(path)));
        }
        let endpoint = env.optional("EKS_ENDPOINT").ok_or_else(|| {
            ConfigError::new(
                "EKS_ENDPOINT",
                "is required when KUBECONFIG is not set (the cluster's API server URL)",
            )
        })?;
        if !endpoint.starts_with("https://") {
            return Err(ConfigError::new(
                "EKS_ENDPOINT",
                format!("must be an https:// URL, got {endpoint:?}"),
            ));
        }
        let ca_b64 = env.required("EKS_CA_DATA")?;
        let ca_pem = decode_ca(&ca_b64).map_err(|p| ConfigError::new("EKS_CA_DATA", p))?;
        Ok(Self::Eks { endpoint, ca_pem })
    }
}

fn decode_ca(b64: &str) -> Result<String, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("is not base64: {e}"))?;
    let pem = String::from_utf8(bytes).map_err(|_| "does not decode to PEM text".to_owned())?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("does not decode to a PEM certificate".to_owned());
    }
    Ok(pem)
}

/// Everything an allocation, release, target-sync or sweep function needs.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The cluster's name, as the forwarder reports it in events and as tags record it.
    pub cluster_name: String,
    /// The DynamoDB table holding port claims (`TABLE_NAME`).
    pub table_name: String,
    /// The VPC target groups are made in (`VPC_ID`).
    pub vpc_id: String,
    /// The NLB pools (`POOLS`, JSON; see [`PoolSet::from_json`]).
    pub pools: PoolSet,
    /// How to reach the Kubernetes API.
    pub kube: KubeAccess,
    /// The namespaces the system manages (`WATCH_NAMESPACES`, comma-separated, as the
    /// forwarder's); empty means all.
    pub namespaces: Vec<String>,
    /// Which EndpointSlices and addresses may become targets (`TRUSTED_ENDPOINTSLICE_MANAGERS`,
    /// `TARGET_CIDRS`; see [`target_policy`]).
    pub targets: TargetPolicy,
}

impl FunctionConfig {
    /// Whether Services of `namespace` are the system's to manage.
    pub fn manages(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }

    /// Reads the configuration, failing on the first unusable variable.
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        let cluster_name = env.required("CLUSTER_NAME")?;
        crate::names::validate_cluster_name(&cluster_name)
            .map_err(|p| ConfigError::new("CLUSTER_NAME", p))?;
        let pools_json = env.required("POOLS")?;
        let pools = PoolSet::from_json(&pools_json).map_err(|p| ConfigError::new("POOLS", p))?;
        Ok(Self {
            cluster_name,
            table_name: env.required("TABLE_NAME")?,
            vpc_id: env.required("VPC_ID")?,
            pools,
            kube: KubeAccess::from_env(&env)?,
            namespaces: namespaces(&env)?,
            targets: target_policy(&env)?,
        })
    }
}

/// `TRUSTED_ENDPOINTSLICE_MANAGERS` (managers trusted besides the EndpointSlice controller,
/// comma-separated label values) and `TARGET_CIDRS` (IPv4 CIDRs, comma-separated; unset: any
/// address).
pub fn target_policy(env: &Env<'_>) -> Result<TargetPolicy, ConfigError> {
    let managers = match env.optional(TRUSTED_MANAGERS_VAR) {
        Some(raw) => parse_managers(&raw).map_err(|p| ConfigError::new(TRUSTED_MANAGERS_VAR, p))?,
        None => vec![],
    };
    let cidrs = match env.optional(TARGET_CIDRS_VAR) {
        Some(raw) => parse_cidrs(&raw).map_err(|p| ConfigError::new(TARGET_CIDRS_VAR, p))?,
        None => vec![],
    };
    Ok(TargetPolicy::new(managers, cidrs))
}

/// `WATCH_NAMESPACES`: a comma-separated list of namespace names, or nothing for all.
pub fn namespaces(env: &Env<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.optional("WATCH_NAMESPACES") else {
        return Ok(vec![]);
    };
    raw.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            crate::names::validate_label(n)
                .map(|()| n.to_owned())
                .map_err(|p| ConfigError::new("WATCH_NAMESPACES", format!("namespace {n:?} {p}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    const POOLS: &str = r#"{"default":{"nlbArns":["arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/a/1"],"ports":"30000-30099"}}"#;

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("CLUSTER_NAME", "prod"),
            ("TABLE_NAME", "claims"),
            ("VPC_ID", "vpc-1"),
            ("POOLS", POOLS),
            ("KUBECONFIG", "/tmp/kubeconfig"),
        ]
    }

    #[test]
    fn reads_a_complete_environment() {
        let source = env(&complete());
        let config = FunctionConfig::from_env(&source).expect("complete environment");
        assert_eq!(config.cluster_name, "prod");
        assert_eq!(config.table_name, "claims");
        assert_eq!(
            config.kube,
            KubeAccess::Kubeconfig(PathBuf::from("/tmp/kubeconfig"))
        );
        assert_eq!(config.pools.pools().count(), 1);
        assert!(config.manages("anything"), "no list: every namespace");
    }

    #[test]
    fn reads_the_namespace_list() {
        let mut pairs = complete();
        pairs.push(("WATCH_NAMESPACES", "games, tools"));
        let config = FunctionConfig::from_env(&env(&pairs)).expect("valid");
        assert!(config.manages("games") && config.manages("tools") && !config.manages("other"));
        let mut pairs = complete();
        pairs.push(("WATCH_NAMESPACES", "games,Bad_NS"));
        let err = FunctionConfig::from_env(&env(&pairs)).expect_err("bad name");
        assert_eq!(err.name, "WATCH_NAMESPACES");
    }

    #[test]
    fn reads_the_target_policy() {
        use std::net::Ipv4Addr;
        let config = FunctionConfig::from_env(&env(&complete())).expect("valid");
        assert_eq!(
            config.targets,
            TargetPolicy::default(),
            "unset: the controller only"
        );

        let mut pairs = complete();
        pairs.push((
            "TRUSTED_ENDPOINTSLICE_MANAGERS",
            "testbed.nlb-port-pool, cilium",
        ));
        pairs.push(("TARGET_CIDRS", "10.0.0.0/16,192.168.0.0/24"));
        let t = FunctionConfig::from_env(&env(&pairs))
            .expect("valid")
            .targets;
        assert!(t.trusts(Some("cilium")) && t.trusts(Some("endpointslice-controller.k8s.io")));
        assert!(!t.trusts(Some("someone")) && !t.trusts(None));
        assert!(t.allows(Ipv4Addr::new(10, 0, 200, 1)) && !t.allows(Ipv4Addr::new(10, 1, 0, 1)));

        for (name, bad) in [
            ("TRUSTED_ENDPOINTSLICE_MANAGERS", "ok,bad manager"),
            ("TRUSTED_ENDPOINTSLICE_MANAGERS", "a,,b"),
            ("TARGET_CIDRS", "10.0.0.1/16"),
            ("TARGET_CIDRS", "10.0.0.0"),
            ("TARGET_CIDRS", "fd00::/8"),
        ] {
            let mut pairs = complete();
            pairs.push((name, bad));
            let err = FunctionConfig::from_env(&env(&pairs)).expect_err(bad);
            assert_eq!(err.name, name, "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("environment variable {name}: "))
            );
        }
    }

    #[test]
    fn names_each_missing_variable() {
        for missing in ["CLUSTER_NAME", "TABLE_NAME", "VPC_ID", "POOLS"] {
            let pairs: Vec<_> = complete()
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = FunctionConfig::from_env(&env(&pairs)).expect_err(missing);
            assert_eq!(err.name, missing);
            assert!(err.to_string().contains("is required"), "{err}");
        }
    }

    #[test]
    fn blank_counts_as_missing() {
        let mut pairs = complete();
        pairs.retain(|(k, _)| *k != "TABLE_NAME");
        pairs.push(("TABLE_NAME", "  "));
        let err = FunctionConfig::from_env(&env(&pairs)).expect_err("blank");
        assert_eq!(err.name, "TABLE_NAME");
    }

    #[test]
    fn eks_access_needs_endpoint_and_ca() {
        let mut pairs = complete();
        pairs.retain(|(k, _)| *k != "KUBECONFIG");
        let err = FunctionConfig::from_env(&env(&pairs)).expect_err("no access");
        assert_eq!(err.name, "EKS_ENDPOINT");

        pairs.push((
            "EKS_ENDPOINT",
            "https://abc.gr7.us-west-2.eks.amazonaws.com",
        ));
        pairs.push(("EKS_CA_DATA", "not base64!"));
        let err = FunctionConfig::from_env(&env(&pairs)).expect_err("bad ca");
        assert_eq!(err.name, "EKS_CA_DATA");
        assert!(err.problem.contains("base64"), "{err}");
    }

    #[test]
    fn eks_access_decodes_the_ca() {
        use base64::Engine;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        let b64: &'static str = Box::leak(b64.into_boxed_str());
        let mut pairs = complete();
        pairs.retain(|(k, _)| *k != "KUBECONFIG");
        pairs.push((
            "EKS_ENDPOINT",
            "https://abc.gr7.us-west-2.eks.amazonaws.com",
        ));
        pairs.push(("EKS_CA_DATA", b64));
        let config = FunctionConfig::from_env(&env(&pairs)).expect("eks");
        assert!(matches!(config.kube, KubeAccess::Eks { ref ca_pem, .. } if ca_pem == pem));
    }

    #[test]
    fn parsed_or_names_the_variable_and_value() {
        let source = env(&[("RESYNC_SECONDS", "soon")]);
        let err = Env::new(&source)
            .parsed_or("RESYNC_SECONDS", 300u64)
            .expect_err("not a number");
        assert_eq!(err.name, "RESYNC_SECONDS");
        assert!(err.problem.contains("\"soon\""), "{err}");
        assert_eq!(Env::new(&source).parsed_or("UNSET", 7u64), Ok(7));
    }
}
