//! Test support for integration tests against the local test bed.
//!
//! The bed (etcd, kube-apiserver, a second kube-apiserver for cluster b, moto server on
//! 127.0.0.1) is started by `testbed/bin/bed-up`, which writes `.local/stack.env`; `make test`
//! starts its own bed and points `NLB_STACK_ENV` at it. [`Bed::get`] reads that file once per
//! test binary. A test that runs without a bed fails at once with the command to start one: it
//! is never skipped.
//!
//! Every test names what it creates with [`unique_name`], so tests run in parallel against
//! one bed without seeing each other's namespaces, tables or load balancers.

pub mod acm_fixtures;
pub mod aws_rules;
pub mod call_counter;
pub mod config_fixtures;
pub mod fault_proxy;
pub mod iam_gate;
pub mod invariants;
pub mod kube_fixtures;
pub mod local_stack;
pub mod managed_bench;
pub mod moto;
pub mod pod_fixtures;
pub mod rng;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_config::SdkConfig;
use aws_config::meta::region::RegionProviderChain;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The running test bed, as `.local/stack.env` describes it.
#[derive(Debug, Clone)]
pub struct Bed {
    vars: BTreeMap<String, String>,
}

impl Bed {
    /// The bed of this test run. Panics, with the command to run, when no bed is up.
    pub fn get() -> &'static Bed {
        static BED: OnceLock<Bed> = OnceLock::new();
        BED.get_or_init(|| {
            let path = stack_env_path();
            Bed::load(&path).unwrap_or_else(|e| {
                panic!(
                    "the test bed is not reachable: {e}\n\
                     start it with `testbed/bin/bed-up` (or run everything with `make test`)"
                )
            })
        })
    }

    /// Reads a stack.env file (`export KEY=value` lines).
    pub fn load(path: &Path) -> Result<Bed, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let vars = parse_env_file(&text);
        for required in [
            "KUBECONFIG",
            "KUBE_SERVER",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
        ] {
            if !vars.contains_key(required) {
                return Err(format!("{} does not set {required}", path.display()));
            }
        }
        let bed = Bed { vars };
        if !Path::new(&bed.vars["KUBECONFIG"]).exists() {
            return Err(format!(
                "{} names a kubeconfig that is gone ({}): the bed was stopped",
                path.display(),
                bed.vars["KUBECONFIG"]
            ));
        }
        Ok(bed)
    }

    /// A variable of the stack file.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// All variables, to pass to a child process.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The admin kubeconfig (`O=system:masters`).
    pub fn kubeconfig(&self) -> PathBuf {
        PathBuf::from(&self.vars["KUBECONFIG"])
    }

    /// `https://127.0.0.1:PORT` of kube-apiserver.
    pub fn kube_server(&self) -> &str {
        &self.vars["KUBE_SERVER"]
    }

    /// `http://127.0.0.1:PORT` of moto.
    pub fn aws_endpoint(&self) -> &str {
        &self.vars["AWS_ENDPOINT_URL"]
    }

    /// The AWS region the bed uses.
    pub fn region(&self) -> &str {
        &self.vars["AWS_REGION"]
    }

    /// The CA that signed kube-apiserver's serving certificate, as PEM text.
    pub fn kube_ca_pem(&self) -> String {
        let path = self.var("KUBE_CA_FILE").unwrap_or_default();
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading KUBE_CA_FILE {path}: {e}"))
    }

    /// A cluster-admin Kubernetes client.
    pub async fn kube_client(&self) -> kube::Client {
        admin_client(&self.kubeconfig(), "the bed's kubeconfig").await
    }

    /// The admin kubeconfig (`O=system:masters`) of cluster b: the bed's second kube-apiserver,
    /// on the same etcd under its own prefix, so a cluster of its own (its own namespaces and
    /// `kube-system` uid), with no controllers or nodes. Panics on a bed started by a bed-up
    /// older than cluster b.
    pub fn kubeconfig_b(&self) -> PathBuf {
        PathBuf::from(self.cluster_b_var("KUBECONFIG_B"))
    }

    /// `https://127.0.0.1:PORT` of cluster b's kube-apiserver (see [`Bed::kubeconfig_b`]).
    pub fn kube_server_b(&self) -> &str {
        self.cluster_b_var("KUBE_SERVER_B")
    }

    /// A cluster-admin Kubernetes client of cluster b (see [`Bed::kubeconfig_b`]).
    pub async fn kube_client_b(&self) -> kube::Client {
        admin_client(&self.kubeconfig_b(), "cluster b's kubeconfig").await
    }

    fn cluster_b_var(&self, name: &str) -> &str {
        self.var(name).unwrap_or_else(|| {
            panic!(
                "the bed's stack file does not set {name}: the bed was started by an older \
                 testbed/bin/bed-up, without cluster b; restart it with `testbed/bin/bed-down` \
                 and `testbed/bin/bed-up`"
            )
        })
    }

    /// SDK configuration pointed at moto, with the project's retry and timeout settings.
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_at(self.aws_endpoint(), None).await
    }

    /// SDK configuration pointed at `endpoint` (moto, or a proxy in front of it), with the
    /// project's retry settings and, when given, other timeouts. It signs with the bed's admin
    /// key, which the IAM gate lets through unchecked: for fixtures, never for the functions.
    pub async fn sdk_config_at(
        &self,
        endpoint: &str,
        timeouts: Option<aws_config::timeout::TimeoutConfig>,
    ) -> SdkConfig {
        self.sdk_config_signed(endpoint, ADMIN_ACCESS_KEY, timeouts)
            .await
    }

    /// As [`Bed::sdk_config_at`], signing with `access_key` (a stack registered with the IAM
    /// gate, see [`iam_gate::GateStack`]).
    pub async fn sdk_config_signed(
        &self,
        endpoint: &str,
        access_key: &str,
        timeouts: Option<aws_config::timeout::TimeoutConfig>,
    ) -> SdkConfig {
        let credentials = Credentials::new(access_key, "testing", None, None, "test-bed");
        let mut loader = nlb_port_pool::adapters::aws::sdk::config_loader()
            .region(RegionProviderChain::first_try(aws_config::Region::new(
                self.region().to_owned(),
            )))
            .endpoint_url(endpoint)
            .credentials_provider(SharedCredentialsProvider::new(credentials));
        if let Some(t) = timeouts {
            loader = loader.timeout_config(t);
        }
        loader.load().await
    }
}

/// A client from an admin kubeconfig of the bed; `what` names it in panics.
async fn admin_client(path: &Path, what: &str) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("reading {what} {}: {e}", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("using {what} {}: {e}", path.display()));
    kube::Client::try_from(config).expect("building the admin client")
}

/// The access key of the bed's fixtures; the IAM gate does not check calls signed with it
/// unless they come from a function (by its SDK app id).
pub const ADMIN_ACCESS_KEY: &str = "testing";

/// The stack file of this run: `NLB_STACK_ENV`, else `.local/stack.env` of the workspace.
pub fn stack_env_path() -> PathBuf {
    if let Some(path) = std::env::var_os("NLB_STACK_ENV") {
        return PathBuf::from(path);
    }
    // CARGO_MANIFEST_DIR is testbed/; the stack file lives at the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".local")
        .join("stack.env")
}

fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            // A single-quoted word (env_file::shell_quoted): its text, with '\'' for '.
            let value = match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(inner) => inner.replace(r"'\''", "'"),
                None => v.trim_matches('"').to_owned(),
            };
            Some((k.trim().to_owned(), value))
        })
        .collect()
}

/// A name no other test in this run uses: `prefix-` and 8 hex characters, a valid DNS label
/// (and target group, table and NLB name) as long as `prefix` is one of up to 40 characters.
pub fn unique_name(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = RandomState::new().hash_one((std::process::id(), n, std::time::SystemTime::now()));
    format!("{prefix}-{:08x}", seed as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_read_back_as_written() {
        let pools = r#"{"default":{"nlbArns":["arn:a"],"ports":"30000-30099"}}"#;
        for value in [pools, "plain-value_1", "it's", "a b", ""] {
            let line = format!(
                "export X={}",
                crate::local_stack::env_file::shell_quoted(value)
            );
            assert_eq!(parse_env_file(&line)["X"], value, "{line}");
        }
        assert_eq!(
            crate::local_stack::env_file::shell_quoted(pools),
            format!("'{pools}'")
        );
    }

    #[test]
    fn parses_stack_files() {
        let vars = parse_env_file("# comment\nexport A=1\nB = \"two\"\n\nnot a pair\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("two"));
        assert_eq!(vars.len(), 2);
    }

    #[test]
    fn unique_names_differ_and_are_labels() {
        let a = unique_name("ns");
        let b = unique_name("ns");
        assert_ne!(a, b);
        assert!(
            nlb_port_pool::contract::names::validate_label(&a).is_ok(),
            "{a}"
        );
    }

    #[test]
    fn a_bed_without_cluster_b_says_to_restart_it() {
        let bed = Bed {
            vars: parse_env_file("export KUBECONFIG=/k\nexport KUBE_SERVER=https://127.0.0.1:1\n"),
        };
        let panic = std::panic::catch_unwind(|| bed.kubeconfig_b()).expect_err("no KUBECONFIG_B");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(message.contains("KUBECONFIG_B"), "{message}");
        assert!(message.contains("testbed/bin/bed-up"), "{message}");
    }

    #[test]
    fn a_missing_bed_is_an_error_naming_the_file() {
        let err = Bed::load(Path::new("/nonexistent/stack.env")).expect_err("no file");
        assert!(err.contains("/nonexistent/stack.env"), "{err}");
    }
}
