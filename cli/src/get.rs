//! `get`: one Service or pod: its status and address, each listener with its target group and
//! the targets' health as ELBv2 reports it, and its claims in the claims table.

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use nlb_port_pool::contract::annotations::{self, AllocationRecord};
use nlb_port_pool::model::claims::ClaimStore;
use nlb_port_pool::model::elb::LoadBalancing;
use serde::Serialize;

use crate::collect::Sources;
use crate::snapshot::ClaimView;

/// What `get` is asked about: `svc/NAME`, `service/NAME`, `pod/NAME` or a Service's `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `service` or `pod`.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// The words kubectl takes for a Service and for a pod before `/NAME`.
const SERVICE_WORDS: [&str; 3] = ["svc", "service", "services"];
/// See [`SERVICE_WORDS`].
const POD_WORDS: [&str; 3] = ["pod", "pods", "po"];

impl Subject {
    /// Whether `what` names its namespace itself (`NAMESPACE/NAME`), as a read across all
    /// namespaces needs.
    pub fn names_its_namespace(what: &str) -> bool {
        matches!(what.split_once('/'), Some((first, name))
            if !name.is_empty() && !SERVICE_WORDS.contains(&first) && !POD_WORDS.contains(&first))
    }

    /// Parses `what` (`[svc/|service/|pod/]NAME`, or `NAMESPACE/NAME` for a Service) in
    /// `namespace` (default `default`).
    pub fn parse(what: &str, namespace: Option<&str>) -> Result<Self> {
        let (kind, rest) = match what.split_once('/') {
            Some((kind, rest)) if SERVICE_WORDS.contains(&kind) => ("service", rest),
            Some((kind, rest)) if POD_WORDS.contains(&kind) => ("pod", rest),
            Some((ns, name)) if namespace.is_none() => {
                return Ok(Self {
                    kind: "service",
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                });
            }
            Some((kind, _)) => {
                bail!("{what}: a Service (svc/NAME) or a pod (pod/NAME), not {kind}")
            }
            None => ("service", what),
        };
        if rest.is_empty() || rest.contains('/') {
            bail!("{what}: give svc/NAME or pod/NAME, and the namespace with -n");
        }
        Ok(Self {
            kind,
            namespace: namespace.unwrap_or("default").to_owned(),
            name: rest.to_owned(),
        })
    }
}

/// The `get` report.
#[derive(Debug, Clone, Serialize)]
pub struct GetReport {
    /// `service` or `pod`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its `nlb.port-manager/status`.
    pub status: Option<String>,
    /// Its `nlb.port-manager/address`.
    pub address: Option<String>,
    /// Per listener.
    pub listeners: Vec<ListenerDetail>,
    /// Its claims (a pod's: those of its per-pod Service for it).
    pub claims: Vec<ClaimView>,
}

/// One listener of the Service or pod.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerDetail {
    /// The Service port's name.
    pub name: String,
    /// The listener protocol (`TLS` when it terminates TLS).
    pub protocol: String,
    /// `NLB_DNS:port`.
    pub address: String,
    /// The listener.
    pub listener_arn: String,
    /// Whether ELBv2 knows the listener.
    pub listener_found: bool,
    /// The target group.
    pub target_group_arn: String,
    /// Its targets and their health.
    pub targets: Vec<TargetDetail>,
}

/// A target and its health.
#[derive(Debug, Clone, Serialize)]
pub struct TargetDetail {
    /// `ip:port`.
    pub target: String,
    /// `healthy`, `initial`, `unhealthy`, `draining`, ...
    pub state: String,
    /// AWS's reason when not healthy.
    pub reason: Option<String>,
}

/// Reads `subject`.
pub async fn get(sources: &Sources, subject: &Subject) -> Result<GetReport> {
    let (notes, uid, pod) = match subject.kind {
        "pod" => {
            let pods: Api<Pod> = Api::namespaced(sources.kube.clone(), &subject.namespace);
            let p = pods
                .get_opt(&subject.name)
                .await
                .with_context(|| format!("reading pod {}/{}", subject.namespace, subject.name))?
                .with_context(|| {
                    format!("pod {}/{} does not exist", subject.namespace, subject.name)
                })?;
            let uid = per_pod_service_uid(sources, &subject.namespace, &p).await?;
            (
                p.metadata.annotations.unwrap_or_default(),
                uid,
                Some(subject.name.clone()),
            )
        }
        _ => {
            let services: Api<Service> = Api::namespaced(sources.kube.clone(), &subject.namespace);
            let s = services
                .get_opt(&subject.name)
                .await
                .with_context(|| format!("reading Service {}/{}", subject.namespace, subject.name))?
                .with_context(|| {
                    format!(
                        "Service {}/{} does not exist",
                        subject.namespace, subject.name
                    )
                })?;
            (
                s.metadata.annotations.unwrap_or_default(),
                s.metadata.uid,
                None,
            )
        }
    };
    let records: Vec<AllocationRecord> = match notes.get(annotations::ALLOCATIONS) {
        Some(json) => serde_json::from_str(json).with_context(|| {
            format!(
                "its {} annotation is not the functions' JSON",
                annotations::ALLOCATIONS
            )
        })?,
        None => vec![],
    };
    let arns: Vec<String> = records.iter().map(|r| r.listener_arn.clone()).collect();
    let found = sources
        .elb
        .describe_listeners(&arns)
        .await
        .context("describing its listeners (ELBv2 DescribeListeners)")?;
    let mut listeners = Vec::new();
    for r in &records {
        listeners.push(ListenerDetail {
            name: r.name.clone(),
            protocol: r.listener_protocol(),
            address: format!("{}:{}", r.dns, r.port),
            listener_arn: r.listener_arn.clone(),
            listener_found: found.iter().any(|l| l.arn == r.listener_arn),
            target_group_arn: r.target_group_arn.clone(),
            targets: targets_of(sources, &r.target_group_arn).await?,
        });
    }
    let claims = match &uid {
        Some(uid) => sources
            .store
            .claims_of(uid)
            .await
            .with_context(|| format!("reading the claims of uid {uid}"))?
            .iter()
            .filter(|c| c.owner.pod == pod)
            .map(crate::collect::claim_view)
            .collect(),
        None => vec![],
    };
    Ok(GetReport {
        kind: subject.kind,
        namespace: subject.namespace.clone(),
        name: subject.name.clone(),
        status: notes.get(annotations::STATUS).cloned(),
        address: notes.get(annotations::ADDRESS).cloned(),
        listeners,
        claims,
    })
}

/// The targets of a target group and their health, as ELBv2 reports them.
pub(crate) async fn targets_of(
    sources: &Sources,
    target_group_arn: &str,
) -> Result<Vec<TargetDetail>> {
    let health = sources
        .elb
        .target_health(target_group_arn)
        .await
        .with_context(|| format!("reading the target health of {target_group_arn}"))?;
    Ok(health
        .iter()
        .map(|h| TargetDetail {
            target: h.target.to_string(),
            state: h.state.clone(),
            reason: h.reason.clone(),
        })
        .collect())
}

/// The uid of the per-pod Service whose selector picks `pod`, if any.
async fn per_pod_service_uid(
    sources: &Sources,
    namespace: &str,
    pod: &Pod,
) -> Result<Option<String>> {
    let services: Api<Service> = Api::namespaced(sources.kube.clone(), namespace);
    let listed = services
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing the Services of {namespace}"))?;
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    Ok(listed
        .items
        .into_iter()
        .filter(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(annotations::MODE))
                .map(String::as_str)
                == Some("per-pod")
        })
        .find(|s| {
            s.spec
                .as_ref()
                .and_then(|spec| spec.selector.as_ref())
                .is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
        })
        .and_then(|s| s.metadata.uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_read_as_kubectl_would() {
        let s = |what: &str, ns: Option<&str>| {
            Subject::parse(what, ns).map(|s| (s.kind, s.namespace, s.name))
        };
        assert_eq!(
            s("room", None).ok(),
            Some(("service", "default".into(), "room".into()))
        );
        assert_eq!(
            s("svc/room", Some("games")).ok(),
            Some(("service", "games".into(), "room".into()))
        );
        assert_eq!(
            s("pod/fleet-0", Some("games")).ok(),
            Some(("pod", "games".into(), "fleet-0".into()))
        );
        assert_eq!(
            s("games/room", None).ok(),
            Some(("service", "games".into(), "room".into()))
        );
        for bad in ["deploy/x", "pod/", "svc/a/b"] {
            let err = s(bad, Some("games")).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
