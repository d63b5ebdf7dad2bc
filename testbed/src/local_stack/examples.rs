//! Example Services and their workloads: applied with kubectl and waited for (`kubectl
//! nlb-pool`'s library shows the Services: testbed/src/bin/local_stack.rs; the per-pod fleets'
//! pods are shown by [`fleet`]).

pub mod fleet;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use nlb_port_pool::contract::annotations;
use serde_json::Value;

use fleet::Fleet;

/// A Service of the manifests, `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The certificate ARN the examples name for their TLS room, which [`apply`] replaces.
pub const CERTIFICATE_PLACEHOLDER: &str = "arn:aws:acm:REGION:ACCOUNT:certificate/EXAMPLE";

/// Writes `file` to `dir` (same name), each `(from, to)` of `substitutions` replaced, and
/// returns the copy's path: the manifests as applied, for the user to edit and apply again.
pub fn substituted(file: &Path, substitutions: &[(&str, &str)], dir: &Path) -> Result<PathBuf> {
    let mut text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for (from, to) in substitutions {
        text = text.replace(from, to);
    }
    let name = file
        .file_name()
        .context("the examples' path names no file")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let copy = dir.join(name);
    std::fs::write(&copy, text).with_context(|| format!("writing {}", copy.display()))?;
    Ok(copy)
}

/// What a `kubectl apply` of the examples made that the stack waits for.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The opted-in Services.
    pub services: Vec<ServiceKey>,
    /// The StatefulSets whose pods a per-pod Service selects: each pod gets an address.
    pub fleets: Vec<Fleet>,
}

/// `kubectl apply -f file`; returns the opted-in Services and per-pod fleets it applied.
pub async fn apply(kubeconfig: &Path, file: &Path) -> Result<Applied> {
    let out = tokio::process::Command::new("kubectl")
        .arg("apply")
        .arg("-f")
        .arg(file)
        .args(["-o", "json"])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .context("running kubectl (is it on PATH?)")?;
    if !out.status.success() {
        bail!(
            "kubectl apply -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let applied: Value =
        serde_json::from_slice(&out.stdout).context("kubectl apply -o json printed no JSON")?;
    Ok(Applied {
        services: opted_in(&applied).iter().map(key).collect(),
        fleets: fleets(&applied),
    })
}

/// The objects of `kubectl apply -o json` output (a List, or one object).
fn objects(applied: &Value) -> Vec<Value> {
    match applied["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![applied.clone()],
    }
}

fn key(object: &Value) -> ServiceKey {
    ServiceKey {
        namespace: object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned(),
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The opted-in Services among the applied objects.
fn opted_in(applied: &Value) -> Vec<Value> {
    objects(applied)
        .into_iter()
        .filter(|o| o["kind"] == "Service")
        .filter(|o| o["metadata"]["annotations"][annotations::AUTO_ASSIGN] == "true")
        .collect()
}

/// A label map of the JSON (`spec.selector`, `metadata.labels`); empty when absent.
fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The applied StatefulSets whose pod template a per-pod opted-in Service of their namespace
/// selects.
fn fleets(applied: &Value) -> Vec<Fleet> {
    let per_pod: Vec<(ServiceKey, BTreeMap<String, String>)> = opted_in(applied)
        .iter()
        .filter(|s| s["metadata"]["annotations"][annotations::MODE] == "per-pod")
        .map(|s| (key(s), labels(&s["spec"]["selector"])))
        .filter(|(_, selector)| !selector.is_empty())
        .collect();
    objects(applied)
        .iter()
        .filter(|o| o["kind"] == "StatefulSet")
        .filter_map(|set| {
            let at = key(set);
            let pod_labels = labels(&set["spec"]["template"]["metadata"]["labels"]);
            let (service, _) = per_pod.iter().find(|(svc, selector)| {
                svc.namespace == at.namespace
                    && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
            })?;
            let count = |v: &Value, default: u64| v.as_u64().unwrap_or(default);
            Some(Fleet {
                replicas: count(&set["spec"]["replicas"], 1) as u32,
                first_ordinal: count(&set["spec"]["ordinals"]["start"], 0) as u32,
                selector: labels(&set["spec"]["selector"]["matchLabels"]),
                service: service.name.clone(),
                namespace: at.namespace,
                name: at.name,
            })
        })
        .collect()
}

/// Waits until every Service of `keys` carries a `status` annotation that is not `Pending`
/// (normally `Allocated`); returns them, or fails naming those still waiting.
pub async fn wait_settled(
    client: &kube::Client,
    keys: &[ServiceKey],
    timeout: Duration,
) -> Result<Vec<Service>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut settled = Vec::new();
        let mut waiting = Vec::new();
        for k in keys {
            let api: Api<Service> = Api::namespaced(client.clone(), &k.namespace);
            let svc = api.get_opt(&k.name).await?;
            let status = svc
                .as_ref()
                .and_then(|s| s.metadata.annotations.as_ref())
                .and_then(|a| a.get(annotations::STATUS))
                .cloned();
            match (svc, status) {
                (Some(s), Some(st)) if !st.starts_with("Pending") => settled.push(s),
                (_, st) => waiting.push(format!("{k} ({})", st.unwrap_or("no status".into()))),
            }
        }
        if waiting.is_empty() {
            return Ok(settled);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not allocated after {timeout:?}: {}", waiting.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `ip:port` targets of a target group, sorted.
pub async fn targets(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
) -> Result<Vec<String>> {
    let health = elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .with_context(|| format!("DescribeTargetHealth of {target_group_arn}"))?;
    let mut out: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let t = d.target()?;
            Some(format!("{}:{}", t.id()?, t.port()?))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_opted_in_services_kubectl_applied() {
        let applied = serde_json::json!({"kind": "List", "items": [
            {"kind": "Namespace", "metadata": {"name": "games"}},
            {"kind": "Service", "metadata": {"name": "a", "namespace": "games",
                "annotations": {"nlb.port-manager/auto-assign": "true"}}},
            {"kind": "Service", "metadata": {"name": "b", "namespace": "games"}},
            {"kind": "Deployment", "metadata": {"name": "a", "namespace": "games"}},
        ]});
        let keys: Vec<ServiceKey> = opted_in(&applied).iter().map(key).collect();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].to_string(), "games/a");
        assert!(fleets(&applied).is_empty());
    }

    #[test]
    fn a_fleet_is_a_statefulset_a_per_pod_service_selects() {
        // GIVEN a per-pod Service selecting app=fleet, a per-Service one selecting app=room,
        // and a StatefulSet of each
        let set = |name: &str, app: &str| {
            serde_json::json!({"kind": "StatefulSet",
                "metadata": {"name": name, "namespace": "games"},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": app}},
                         "template": {"metadata": {"labels": {"app": app, "tier": "game"}}}}})
        };
        let applied = serde_json::json!({"kind": "List", "items": [
            {"kind": "Service", "metadata": {"name": "fleet", "namespace": "games",
                "annotations": {"nlb.port-manager/auto-assign": "true",
                                "nlb.port-manager/mode": "per-pod"}},
             "spec": {"selector": {"app": "fleet"}}},
            {"kind": "Service", "metadata": {"name": "room", "namespace": "games",
                "annotations": {"nlb.port-manager/auto-assign": "true"}},
             "spec": {"selector": {"app": "room"}}},
            set("fleet", "fleet"),
            set("room", "room"),
        ]});

        // WHEN the fleets are picked out
        let fleets = fleets(&applied);

        // THEN only the per-pod Service's StatefulSet is one, its pods named from ordinal 0
        assert_eq!(fleets.len(), 1);
        assert_eq!(fleets[0].to_string(), "games/fleet");
        assert_eq!(fleets[0].service, "fleet");
        assert_eq!(fleets[0].pod_names(), ["fleet-0", "fleet-1", "fleet-2"]);
        assert_eq!(fleets[0].label_selector(), "app=fleet");
    }
}
