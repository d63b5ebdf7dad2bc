//! Typed configuration, read once from the environment at cold start.
//!
//! Every setting is read through [`Env`], so a missing or malformed variable stops start-up
//! with a [`ConfigError`] that names the variable and says what is wrong with it.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;

use crate::model::pool::PoolSet;
use crate::model::target_policy::{
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
    /// `aws eks describe-cluster` prints it); `None` when none is set: the cluster's endpoint
    /// and CA are then asked of EKS (see [`crate::model::config_source`]).
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigError> {
        if let Some(path) = env.optional("KUBECONFIG") {
            return Ok(Some(Self::Kubeconfig(PathBuf::from(path))));
        }
        let Some(endpoint) = env.optional("EKS_ENDPOINT") else {
            if env.optional("EKS_CA_DATA").is_some() {
                return Err(ConfigError::new(
                    "EKS_ENDPOINT",
                    "is required when EKS_CA_DATA is set (the cluster's API server URL)",
                ));
            }
            return Ok(None);
        };
        let ca_b64 = env.optional("EKS_CA_DATA").ok_or_else(|| {
            ConfigError::new(
                "EKS_CA_DATA",
                "is required when EKS_ENDPOINT is set (the cluster's CA, base64 PEM)",
            )
        })?;
        Self::eks(&endpoint, &ca_b64)
            .map(Some)
            .map_err(|(var, problem)| {
                let name = if var == EKS_ENDPOINT_FIELD {
                    "EKS_ENDPOINT"
                } else {
                    "EKS_CA_DATA"
                };
                ConfigError::new(name, problem)
            })
    }

    /// Access to the EKS cluster at `endpoint` whose CA is `ca_b64` (base64 PEM); the error
    /// says which of the two ([`EKS_ENDPOINT_FIELD`] or [`EKS_CA_FIELD`]) is wrong, and how.
    pub fn eks(endpoint: &str, ca_b64: &str) -> Result<Self, (&'static str, String)> {
        if !endpoint.starts_with("https://") {
            return Err((
                EKS_ENDPOINT_FIELD,
                format!("must be an https:// URL, got {endpoint:?}"),
            ));
        }
        let ca_pem = decode_ca(ca_b64).map_err(|p| (EKS_CA_FIELD, p))?;
        Ok(Self::Eks {
            endpoint: endpoint.to_owned(),
            ca_pem,
        })
    }
}

/// The endpoint, in [`KubeAccess::eks`]'s errors.
pub const EKS_ENDPOINT_FIELD: &str = "endpoint";
/// The CA, in [`KubeAccess::eks`]'s errors.
pub const EKS_CA_FIELD: &str = "certificateAuthority.data";

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
    /// The NLB pools (`POOLS`, or the SSM parameter `POOLS_PARAMETER` names; see
    /// [`PoolSet::from_json`] and [`crate::model::config_source`]).
    pub pools: PoolSet,
    /// How to reach the Kubernetes API.
    pub kube: KubeAccess,
    /// The namespaces the system manages (`WATCH_NAMESPACES`, comma-separated, as the
    /// forwarder's); empty means all.
    pub namespaces: Vec<String>,
    /// Which EndpointSlices and addresses may become targets (`TRUSTED_ENDPOINTSLICE_MANAGERS`,
    /// `TARGET_CIDRS`; see [`target_policy`]).
    pub targets: TargetPolicy,
    /// The other clusters whose stacks share this claims table and its pools
    /// (`SHARED_CLUSTERS`, comma-separated names; empty: the table is this cluster's alone).
    /// See [`shared_clusters`].
    pub shared_clusters: Vec<String>,
}

impl FunctionConfig {
    /// Whether Services of `namespace` are the system's to manage.
    pub fn manages(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
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
            crate::contract::names::validate_label(n)
                .map(|()| n.to_owned())
                .map_err(|p| ConfigError::new("WATCH_NAMESPACES", format!("namespace {n:?} {p}")))
        })
        .collect()
}

/// `SHARED_CLUSTERS`: the names of the other clusters (as their stacks' `CLUSTER_NAME`) whose
/// stacks share the claims table and pools, comma-separated. Each cluster's functions touch
/// only their own claims, listeners and target groups; the table's identity check accepts
/// these clusters' records beside this one's. Not `cluster` itself, no repeats.
pub fn shared_clusters(env: &Env<'_>, cluster: &str) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.optional("SHARED_CLUSTERS") else {
        return Ok(vec![]);
    };
    let mut names: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let problem = |p: String| ConfigError::new("SHARED_CLUSTERS", format!("{name:?} {p}"));
        crate::contract::names::validate_cluster_name(name).map_err(problem)?;
        if name == cluster {
            return Err(problem("is this cluster's own name (CLUSTER_NAME)".into()));
        }
        if names.iter().any(|n| n == name) {
            return Err(problem("is listed twice".into()));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn shared_clusters_are_other_valid_names_once_each() {
        let read = |raw: &'static str| {
            shared_clusters(&Env::new(&env(&[("SHARED_CLUSTERS", raw)])), "blue")
        };
        assert_eq!(shared_clusters(&Env::new(&env(&[])), "blue"), Ok(vec![]));
        assert_eq!(
            read(" green , ,canary"),
            Ok(vec!["green".into(), "canary".into()])
        );
        for (raw, problem) in [
            ("green,blue", "own name"),
            ("green,green", "twice"),
            ("gr een", "may hold only"),
        ] {
            let err = read(raw).expect_err(raw);
            assert_eq!(err.name, "SHARED_CLUSTERS");
            assert!(err.to_string().contains(problem), "{raw}: {err}");
        }
    }

    #[test]
    fn kube_access_from_kubeconfig_eks_variables_or_neither() {
        let source = env(&[("KUBECONFIG", "/tmp/kubeconfig")]);
        assert_eq!(
            KubeAccess::from_env(&Env::new(&source)),
            Ok(Some(KubeAccess::Kubeconfig(PathBuf::from(
                "/tmp/kubeconfig"
            ))))
        );
        assert_eq!(KubeAccess::from_env(&Env::new(&env(&[]))), Ok(None));

        let endpoint_only = env(&[("EKS_ENDPOINT", "https://abc.eks.amazonaws.com")]);
        let err = KubeAccess::from_env(&Env::new(&endpoint_only)).expect_err("no CA");
        assert_eq!(err.name, "EKS_CA_DATA");
        let ca_only = env(&[("EKS_CA_DATA", "YmVk")]);
        let err = KubeAccess::from_env(&Env::new(&ca_only)).expect_err("no endpoint");
        assert_eq!(err.name, "EKS_ENDPOINT");
    }

    #[test]
    fn eks_access_checks_endpoint_and_ca() {
        let bad_ca = env(&[
            (
                "EKS_ENDPOINT",
                "https://abc.gr7.us-west-2.eks.amazonaws.com",
            ),
            ("EKS_CA_DATA", "not base64!"),
        ]);
        let err = KubeAccess::from_env(&Env::new(&bad_ca)).expect_err("bad ca");
        assert_eq!(err.name, "EKS_CA_DATA");
        assert!(err.problem.contains("base64"), "{err}");
        let http = env(&[("EKS_ENDPOINT", "http://abc"), ("EKS_CA_DATA", "YmVk")]);
        let err = KubeAccess::from_env(&Env::new(&http)).expect_err("not https");
        assert_eq!(err.name, "EKS_ENDPOINT");
    }

    #[test]
    fn eks_access_decodes_the_ca() {
        use base64::Engine;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        let access = KubeAccess::eks("https://abc.eks.amazonaws.com", &b64).expect("eks");
        assert!(matches!(access, KubeAccess::Eks { ref ca_pem, .. } if ca_pem == pem));
        let not_pem = base64::engine::general_purpose::STANDARD.encode("hello");
        let (field, problem) =
            KubeAccess::eks("https://abc.eks.amazonaws.com", &not_pem).expect_err("no PEM");
        assert_eq!(field, EKS_CA_FIELD);
        assert!(problem.contains("PEM"), "{problem}");
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
