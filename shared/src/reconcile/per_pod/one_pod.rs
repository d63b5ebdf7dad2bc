//! One pod's pass: left alone when it already has what it asks for, else allocated by the
//! steps a Service goes through, on the pod.

use super::owners::PodOutputs;
use super::{Pass, PodResult, PodRun, READY, up_to_date};
use crate::contract::annotations;
use crate::contract::service_model::{ListenerSpec, PodState, ServiceState};
use crate::model::claims::Claim;
use crate::model::cluster::ServiceOutputs;
use crate::model::targets::{SliceView, without_targets};
use crate::reconcile::{Error, Outcome, Reconciler, Result};

impl Reconciler {
    /// One pod, named in the result: nothing when it already has what it asks for (a
    /// [`Pass::Changed`]), else the allocation steps a Service goes through, on the pod. A pod
    /// whose outputs are another Service's gets its listeners and targets all the same; the
    /// writes and Events on it are then nothing ([`crate::model::cluster::pod_outputs`]).
    pub(super) async fn ensure_pod(
        &self,
        pods: &PodRun<'_>,
        pod: &PodState,
        held: &[Claim],
        outputs: &PodOutputs,
    ) -> (String, PodResult) {
        let mut subject = pods.run.service.for_pod(pod);
        if let PodOutputs::TakeOver(owner) = outputs {
            subject = subject.taking_over(owner);
        }
        let disabled = match annotations::network_disabled(&pod.annotations) {
            Ok(on_pod) => on_pod || pods.run.request.network_disabled,
            // The pod's own value is unreadable: it is told so, and its targets stay as they
            // are until it says "true" or "false".
            Err(e) => {
                let rejected = self
                    .reject(
                        pods.run.cluster,
                        &subject,
                        "InvalidAnnotation",
                        e.to_string(),
                    )
                    .await;
                let result = match rejected {
                    Ok(_) => PodResult::Rejected,
                    Err(e) => PodResult::Failed(e),
                };
                return (pod.name.clone(), result);
            }
        };
        // A pod whose only missing condition is the reachable gate gets its target registered,
        // so the gate can turn True (as the AWS Load Balancer Controller does).
        let not_ready_too = pod.gated && pod.containers_ready;
        let pod_slices: Vec<SliceView> = pods
            .run
            .slices
            .iter()
            .map(|s| s.only_pod(&pod.name, not_ready_too))
            .collect();
        // Taken out of its listeners: its claims and listeners stay, with no target.
        let pod_slices = match disabled {
            true => without_targets(pod_slices),
            false => pod_slices,
        };
        let made_from = |spec: &ListenerSpec| pods.made_from(spec, &pod_slices);
        // A shared pod's outputs say nothing of this Service's listeners: its claims and the
        // summary as read do.
        let (up_to_date, was_ready) = if outputs.theirs() {
            let settled = up_to_date::settled(held, pods.run.specs, made_from);
            let known = pods.previous.get(&pod.name).is_some_and(|p| p.ready)
                || pods.reached.contains(&pod.name);
            (settled, settled && known)
        } else {
            // A status taken over is the old owner's: it says nothing of this one's listeners.
            let status = subject.annotations.get(annotations::STATUS);
            let ours = *outputs == PodOutputs::Ours;
            (
                up_to_date::pod_up_to_date(
                    &subject,
                    disabled,
                    held,
                    pods.run.specs,
                    &pod_slices,
                    made_from,
                ),
                ours && status.map(String::as_str) == Some(READY),
            )
        };
        let result = if pods.pass != Pass::Thorough && up_to_date {
            let named = match outputs.theirs() {
                true => Ok(()),
                false => self.name_owner(pods, &subject).await,
            };
            named.map(|()| Outcome::Allocated {
                listeners: pods.run.specs.len(),
                claimed: 0,
            })
        } else {
            self.allocate_pod(pods, &subject, held, &pod_slices).await
        };
        let result = match result {
            Ok(Outcome::Allocated { claimed, .. }) => {
                if claimed > 0 && !was_ready {
                    self.measure_first_address(pod);
                }
                // A pod whose listeners did not change keeps `Ready` (Plan::outputs); one taken
                // out of its listeners is not reachable.
                let ready = was_ready && claimed == 0 && !disabled;
                // The fast path changed nothing: the claims as read are the pod's.
                let fresh = (pods.pass != Pass::Thorough && up_to_date).then_some(held);
                match outputs.theirs() {
                    false => Ok(PodResult::Allocated {
                        claimed,
                        ready,
                        disabled,
                        shared: None,
                    }),
                    true => self
                        .shared_entry(pods, &subject, fresh, ready)
                        .await
                        .map(|entry| PodResult::Allocated {
                            claimed,
                            ready,
                            disabled,
                            shared: Some(entry),
                        }),
                }
            }
            Ok(Outcome::Pending(reason)) => Ok(PodResult::Pending(reason)),
            Ok(_) => Ok(PodResult::Allocated {
                claimed: 0,
                ready: false,
                disabled,
                shared: None,
            }),
            Err(e) => Err(e),
        };
        let result = match result {
            Ok(r) => r,
            // Another run is on it: a shared pod keeps its entry meanwhile.
            Err(Error::Busy { .. }) => PodResult::Busy(
                outputs
                    .theirs()
                    .then(|| pods.previous.get(&pod.name).cloned())
                    .flatten(),
            ),
            Err(e) => {
                tracing::warn!(service = %pods.run.service.key, pod = %pod.name, error = %e,
                    "could not allocate the pod");
                PodResult::Failed(e)
            }
        };
        (pod.name.clone(), result)
    }

    /// The allocation steps for one pod, unless another pod of the run found the pool full.
    async fn allocate_pod(
        &self,
        pods: &PodRun<'_>,
        subject: &ServiceState,
        held: &[Claim],
        pod_slices: &[SliceView],
    ) -> Result<Outcome> {
        if held.is_empty()
            && let Some(reason) = pods.full.reason()
        {
            // Another pod of this run found the pool full: this one would only make a target
            // group to delete again. It is told so, and waits like the others.
            return self.pending(pods.run.cluster, subject, true, reason).await;
        }
        let result = self
            .ensure(&pods.run.for_subject(subject, pod_slices))
            .await;
        if let Ok(Outcome::Pending(reason)) = &result {
            pods.full.note(reason);
        }
        result
    }

    /// Names this Service as the owner of a pod whose outputs are otherwise as they should be
    /// (written before pods named their owner): one pod write, no AWS call.
    async fn name_owner(&self, pods: &PodRun<'_>, subject: &ServiceState) -> Result<()> {
        let mine = annotations::service_ref(&subject.key.name, &subject.uid);
        if subject.annotations.get(annotations::SERVICE) == Some(&mine) {
            return Ok(());
        }
        // The write stamps the owner (crate::model::cluster::pod_outputs) on the outputs as they are.
        self.write_with(pods.run.cluster, subject, &ServiceOutputs::current)
            .await
            .map(drop)
    }

    /// Counts a pod given its first address, with its latency from creation.
    fn measure_first_address(&self, pod: &PodState) {
        let mut measured = self.measure();
        measured.allocations_made += 1;
        if let Some(created) = pod.created {
            measured
                .pod_address_seconds
                .push(crate::model::claims::now_epoch() - created);
        }
    }
}
