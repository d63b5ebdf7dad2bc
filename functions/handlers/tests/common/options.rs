//! The stack's listener options: a pool with placement and blocked ports, Services with
//! option annotations, and what AWS then holds (listener TLS settings, target group
//! attributes).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use testbed::{Bed, kube_fixtures};

use super::{FunctionDeps, Stack};

/// A TLS listener as ELBv2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsView {
    /// The listener's ARN.
    pub arn: String,
    /// Its port.
    pub port: u16,
    /// `TLS`, or the plain protocol when it does not terminate TLS.
    pub protocol: String,
    /// The default certificate.
    pub certificate: Option<String>,
    /// The security policy.
    pub policy: Option<String>,
    /// The ALPN policy.
    pub alpn: Vec<String>,
    /// Its additional certificates.
    pub additional: Vec<String>,
}

impl Stack {
    /// The same stack with its pool (the same NLBs, `ports`) given the fields `extra` (JSON
    /// members, e.g. `"placement":"pack"`); the template's roles are unchanged.
    pub async fn with_pool_options(mut self, ports: &str, extra: &str) -> Stack {
        let quoted: Vec<String> = self.nlbs.iter().map(|n| format!("\"{}\"", n.arn)).collect();
        let mut config = self.deps.config.clone();
        config.pools = nlb_port_pool::model::pool::PoolSet::from_json(&format!(
            r#"{{"default":{{"nlbArns":[{}],"ports":"{ports}",{extra}}}}}"#,
            quoted.join(",")
        ))
        .expect("pools");
        let sdk = self.gate.sdk_config(Bed::get()).await;
        self.set_functions(FunctionDeps::new(&config, &sdk, Duration::ZERO));
        self
    }

    /// Opted-in Service `name` with `ports` and the annotations `options`, and one ready pod
    /// behind it (10.4.0.1, every port's target port).
    pub async fn create_room_with(
        &self,
        name: &str,
        ports: &[kube_fixtures::PortSpec],
        options: &[(&str, &str)],
    ) {
        let mut svc = kube_fixtures::opted_in_service(&self.namespace, name, ports);
        let annotations = svc.metadata.annotations.get_or_insert_with(BTreeMap::new);
        for (k, v) in options {
            annotations.insert((*k).to_owned(), (*v).to_owned());
        }
        self.create_service(&svc).await;
        let slice_ports: Vec<(&str, i32, &str)> = ports
            .iter()
            .map(|p| {
                let target = match p.target_port {
                    IntOrString::Int(n) => n,
                    IntOrString::String(_) => p.port,
                };
                (p.name, target, p.protocol)
            })
            .collect();
        self.put_slice(&kube_fixtures::endpoint_slice(
            &self.namespace,
            &format!("{name}-a"),
            name,
            &slice_ports,
            &[("10.4.0.1", true)],
        ))
        .await;
    }

    /// Sets (`Some`) or removes (`None`) annotations of Service `name`, as a user's edit.
    pub async fn annotate(&self, name: &str, changes: &[(&str, Option<&str>)]) {
        let annotations: serde_json::Map<String, serde_json::Value> = changes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
            .collect();
        let patch = serde_json::json!({ "metadata": { "annotations": annotations } });
        self.services()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("annotating Service {name}: {e}"));
    }

    /// The attributes of target group `arn`.
    pub async fn target_group_attributes(&self, arn: &str) -> BTreeMap<String, String> {
        let out = self
            .elb
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describing the attributes of {arn}: {e:?}"));
        out.attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_owned(), a.value()?.to_owned())))
            .collect()
    }

    /// Listener `arn` with its TLS settings and additional certificates.
    pub async fn tls_view(&self, arn: &str) -> TlsView {
        let listener = self
            .elb
            .describe_listeners()
            .listener_arns(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describing listener {arn}: {e:?}"))
            .listeners()
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no listener {arn}"));
        let certificates = self
            .elb
            .describe_listener_certificates()
            .listener_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describing the certificates of {arn}: {e:?}"));
        TlsView {
            arn: arn.to_owned(),
            port: u16::try_from(listener.port().unwrap_or_default()).unwrap_or_default(),
            protocol: listener
                .protocol()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            certificate: listener
                .certificates()
                .first()
                .and_then(|c| c.certificate_arn())
                .map(str::to_owned),
            policy: listener.ssl_policy().map(str::to_owned),
            alpn: listener.alpn_policy().to_vec(),
            additional: certificates
                .certificates()
                .iter()
                .filter(|c| c.is_default() != Some(true))
                .filter_map(|c| c.certificate_arn().map(str::to_owned))
                .collect(),
        }
    }

    /// Service `name` as the API serves it.
    pub async fn service(&self, name: &str) -> Service {
        self.services()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("reading Service {name}: {e}"))
    }
}
