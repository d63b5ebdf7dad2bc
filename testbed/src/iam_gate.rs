//! The bed's IAM gate (testbed/iam/gate.mjs): every AWS call of a function or the forwarder is
//! authorized against its role's policy in template.yaml before it reaches moto.
//!
//! A test registers its stack (the values the template would be deployed with: cluster name,
//! pool NLBs, table, bus) and gets an access key; the functions and the forwarder it runs sign
//! with that key and name themselves by their SDK app id (`npp-allocate`, ...), which tells the
//! gate their role. [`GateStack::assert_no_denials`] fails a test on any call the gate refused,
//! naming the function, action, resource and what the policy is missing.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::Bed;
use crate::local_stack::http;

/// The values a stack's template would be deployed with, as far as its policies use them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackSpec {
    /// Names the roles (and, unless given, the table and bus).
    pub stack_name: String,
    /// `ClusterName`.
    pub cluster: String,
    /// `PoolNlbArns`: every NLB the stack's pools list, as moto names them.
    pub pool_nlb_arns: Vec<String>,
    /// `VpcId`.
    pub vpc_id: String,
    /// The claims table's name.
    pub table: String,
    /// The event bus's name.
    pub bus: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Registration<'a> {
    access_key_id: &'a str,
    operator_access_key_id: &'a str,
    stack_name: &'a str,
    region: &'a str,
    table_name: &'a str,
    bus_name: Option<&'a str>,
    parameters: serde_json::Value,
}

/// A call the gate refused.
#[derive(Debug, Clone, Deserialize)]
pub struct Denial {
    /// The function, from its SDK app id.
    pub function: Option<String>,
    /// The template's role it runs as.
    pub role: Option<String>,
    /// `service:Operation` of the API call.
    pub operation: String,
    /// The IAM action refused.
    pub action: Option<String>,
    /// The resource, in AWS's ARN form.
    pub resource: Option<String>,
    /// What the policy is missing, or why the call could not be judged.
    pub missing: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (role {}) was refused {} on {}: {}",
            self.function.as_deref().unwrap_or("an unknown caller"),
            self.role.as_deref().unwrap_or("none"),
            self.action.as_deref().unwrap_or(&self.operation),
            self.resource.as_deref().unwrap_or("-"),
            self.missing
        )
    }
}

/// A stack registered with the gate.
#[derive(Debug, Clone)]
pub struct GateStack {
    /// The access key its functions and forwarder sign with.
    pub access_key: String,
    /// The access key of its operators: every call signed with it is the stack's
    /// OperatorRole, whatever its app id (`kubectl nlb-pool`, the AWS CLI in a user's shell).
    pub operator_key: String,
    port: u16,
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn gate_port(bed: &Bed) -> Result<u16> {
    let url = bed.var("IAM_GATE_URL").context(
        "the bed's stack file has no IAM_GATE_URL: restart the bed (testbed/bin/bed-up)",
    )?;
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .with_context(|| format!("IAM_GATE_URL {url} names no port"))
}

impl GateStack {
    /// Registers `spec` with the bed's gate under a new access key.
    pub async fn register(bed: &Bed, spec: &StackSpec) -> Result<Self> {
        Self::register_with(bed, spec, serde_json::json!({})).await
    }

    /// As [`GateStack::register`], with more template parameters (`PoolNlbNames`, say), which
    /// take precedence over those `spec` gives.
    pub async fn register_with(
        bed: &Bed,
        spec: &StackSpec,
        more: serde_json::Value,
    ) -> Result<Self> {
        let port = gate_port(bed)?;
        let key = || {
            format!(
                "AKIA{}",
                crate::unique_name("gate").replace('-', "").to_uppercase()
            )
        };
        let (access_key, operator_key) = (key(), key());
        let mut parameters = serde_json::json!({
            "ClusterName": spec.cluster,
            "PoolNlbArns": spec.pool_nlb_arns,
            "ExtraPoolNlbArns": [""],
            "VpcId": spec.vpc_id,
            "OidcProviderUrl": "oidc.bed.local/id/bed",
        });
        if let (Some(all), serde_json::Value::Object(more)) = (parameters.as_object_mut(), more) {
            all.extend(more);
        }
        let body = serde_json::to_vec(&Registration {
            access_key_id: &access_key,
            operator_access_key_id: &operator_key,
            stack_name: &spec.stack_name,
            region: bed.region(),
            table_name: &spec.table,
            bus_name: spec.bus.as_deref(),
            parameters,
        })?;
        let r = http::post_json(port, "/_gate/stacks", &body, TIMEOUT)
            .await
            .context("registering the stack with the IAM gate")?;
        if r.status != 200 {
            bail!("the IAM gate refused stack {}: {}", spec.stack_name, r.body);
        }
        Ok(Self {
            access_key,
            operator_key,
            port,
        })
    }

    /// A stack for a forwarder alone, sending to `bus` for cluster `cluster`: it may put its
    /// events there and nowhere else.
    pub async fn for_forwarder(bed: &Bed, bus: &str, cluster: &str) -> Result<Self> {
        let spec = StackSpec {
            stack_name: bus.to_owned(),
            cluster: cluster.to_owned(),
            // No NLB: the forwarder's role names none.
            pool_nlb_arns: vec![format!(
                "arn:aws:elasticloadbalancing:{}:123456789012:loadbalancer/net/none/0",
                bed.region()
            )],
            vpc_id: "vpc-none".to_owned(),
            table: format!("{bus}-claims"),
            bus: Some(bus.to_owned()),
        };
        Self::register(bed, &spec).await
    }

    /// Makes the gate answer `eks:DescribeCluster` of `cluster` (which must exist in moto) as
    /// AWS would for a cluster served by the bed's kube-apiserver: its endpoint and CA, where
    /// moto makes both up.
    pub async fn answer_cluster_as_the_bed(bed: &Bed, cluster: &str) -> Result<()> {
        use base64::Engine;
        let port = gate_port(bed)?;
        let body = serde_json::to_vec(&serde_json::json!({
            "region": bed.region(),
            "name": cluster,
            "endpoint": bed.kube_server(),
            "caData": base64::engine::general_purpose::STANDARD.encode(bed.kube_ca_pem()),
        }))?;
        let r = http::post_json(port, "/_gate/eks-clusters", &body, TIMEOUT)
            .await
            .context("registering a cluster's answer with the IAM gate")?;
        if r.status != 200 {
            bail!(
                "the IAM gate refused cluster {cluster}'s answer: {}",
                r.body
            );
        }
        Ok(())
    }

    /// Every call of this stack's functions and forwarder the gate refused so far.
    pub async fn denials(&self) -> Result<Vec<Denial>> {
        self.denials_of(&self.access_key).await
    }

    /// Every call signed with this stack's operator key the gate refused so far.
    pub async fn operator_denials(&self) -> Result<Vec<Denial>> {
        self.denials_of(&self.operator_key).await
    }

    /// The calls of this stack's functions the gate answered AccessDenied because their
    /// resource was gone (AWS's answer, not a denial), one line each: `action resource`.
    pub async fn gone(&self) -> Result<Vec<String>> {
        let path = format!("/_gate/gone?key={}", self.access_key);
        let r = http::get(self.port, &path, TIMEOUT)
            .await
            .context("asking the IAM gate for its gone answers")?;
        let answers: Vec<serde_json::Value> = serde_json::from_str(&r.body)
            .with_context(|| format!("the gate's gone answers: {}", r.body))?;
        Ok(answers
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a["action"].as_str().unwrap_or_default(),
                    a["resource"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    async fn denials_of(&self, key: &str) -> Result<Vec<Denial>> {
        let path = format!("/_gate/denials?key={key}");
        let r = http::get(self.port, &path, TIMEOUT)
            .await
            .context("asking the IAM gate for denials")?;
        serde_json::from_str(&r.body).with_context(|| format!("the gate's denials: {}", r.body))
    }

    /// As [`GateStack::denials`], without a runtime: for `Drop`, where a test's fixture checks
    /// the gate as it goes away.
    pub fn denials_blocking(&self) -> Result<Vec<Denial>> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))
            .context("connecting to the IAM gate")?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        write!(
            stream,
            "GET /_gate/denials?key={} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            self.access_key
        )?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .context("reading the IAM gate's answer")?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .with_context(|| format!("the IAM gate answered without a body: {response}"))?;
        serde_json::from_str(body).with_context(|| format!("the gate's denials: {body}"))
    }

    /// Panics, listing them, if the gate refused any call of this stack (its functions',
    /// its forwarder's or its operators').
    pub async fn assert_no_denials(&self) {
        let mut denials = self
            .denials()
            .await
            .expect("reading the IAM gate's denials");
        denials.extend(
            self.operator_denials()
                .await
                .expect("reading the IAM gate's denials"),
        );
        assert!(
            denials.is_empty(),
            "the IAM gate refused {} call(s) against template.yaml's policies:\n{}",
            denials.len(),
            denials
                .iter()
                .map(|d| format!("  - {d}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// SDK configuration signing with this stack's key (what its functions use).
    pub async fn sdk_config(&self, bed: &Bed) -> aws_config::SdkConfig {
        bed.sdk_config_signed(bed.aws_endpoint(), &self.access_key, None)
            .await
    }

    /// SDK configuration signing with this stack's operator key.
    pub async fn operator_sdk_config(&self, bed: &Bed) -> aws_config::SdkConfig {
        bed.sdk_config_signed(bed.aws_endpoint(), &self.operator_key, None)
            .await
    }
}

/// Panics, listing them, if the gate refused any call of `gates`' stacks (`whose` names them in
/// the message). Without a runtime, for a fixture's `Drop`; does nothing while the thread is
/// already panicking.
pub fn assert_no_denials_blocking(gates: &[GateStack], whose: &str) {
    if std::thread::panicking() {
        return;
    }
    let denials: Vec<Denial> = gates
        .iter()
        .flat_map(|g| {
            g.denials_blocking()
                .expect("reading the IAM gate's denials")
        })
        .collect();
    fail_on(&denials, whose);
}

fn fail_on(denials: &[Denial], whose: &str) {
    assert!(
        denials.is_empty(),
        "the IAM gate refused {} call(s) of {whose} against template.yaml's policies:\n{}",
        denials.len(),
        denials
            .iter()
            .map(|d| format!("  - {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
