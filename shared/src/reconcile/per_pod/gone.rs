//! Pods that hold ports but were not allocated in this run: their targets go at once, the gone
//! ones are noted, and their ports released once they have been gone longer than the grace.
//!
//! - A pod is *gone* when no pod of that name is selected by the Service any more (deleted, or
//!   relabelled out of it). Its ports (claims, listeners, target groups) are kept for the
//!   Service's `pod-release-after` seconds from the first run that sees it gone, so the same
//!   name coming back (a StatefulSet pod made again, a scale 5 -> 2 -> 5) gets them again;
//!   then they are released.
//! - A pod still selected but terminating (a deletionTimestamp), or without an endpoint at its
//!   own IP (not listed yet, or listed at the IP of the pod it replaced), keeps its ports with
//!   no grace running: a StatefulSet makes its successor only once it is gone.
//!
//! Either way it has no target from the run that sees it so: its IP may be handed to another
//! pod within seconds (the EKS VPC CNI reuses freed IPs after about 30 s), and a target left
//! registered would send a room's players to whichever pod gets it. The claims then note that
//! their groups hold no target (the targets half of what they were made from), so later runs
//! cost nothing; a thorough pass asks AWS again.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use futures::stream::{self, StreamExt};

use super::super::fingerprint::listener_half;
use super::super::{Error, Reconciler, Result};
use super::{POD_CONCURRENCY, Pass, PodRun};
use crate::contract::service_model::PodState;
use crate::model::claims::{Claim, now_epoch};
use crate::model::elb::ElbErrorKind;

/// What became of a pod that holds ports and was not allocated in this run.
enum Fate {
    /// Still selected (terminating, or without endpoint): its ports are kept.
    Kept,
    /// Gone, its ports kept for the grace.
    Leaving,
    /// Gone past the grace: this many ports were released.
    Released(usize),
}

impl Reconciler {
    /// Tends every pod of `by_pod` (the pods holding claims) that is not in `served` (those
    /// this run allocated): `selected` are the pods the Service selects now, by name. Returns
    /// (pods leaving, ports released).
    pub(super) async fn tend_unserved(
        &self,
        pods: &PodRun<'_>,
        by_pod: &BTreeMap<String, Vec<Claim>>,
        selected: &BTreeMap<&str, &PodState>,
        served: &BTreeSet<&str>,
    ) -> Result<(usize, usize)> {
        let mut tending = Vec::new();
        for (pod, claims) in by_pod {
            if served.contains(pod.as_str()) {
                if claims.iter().any(|c| c.gone_since.is_some()) {
                    self.store.note_gone(claims, None).await?;
                }
                continue;
            }
            let present = selected.get(pod.as_str()).copied();
            tending.push(self.tend_pod(pods, pod, claims, present));
        }
        let fates: Vec<Result<Fate>> = stream::iter(tending)
            .buffer_unordered(POD_CONCURRENCY)
            .collect()
            .await;
        let (mut leaving, mut released, mut failure) = (0, 0, None);
        for fate in fates {
            match fate {
                Ok(Fate::Kept) => {}
                Ok(Fate::Leaving) => leaving += 1,
                Ok(Fate::Released(n)) => released += n,
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok((leaving, released)),
        }
    }

    /// One pod holding `claims` that this run did not allocate; `present`: the pod of that
    /// name the Service selects, if any.
    async fn tend_pod(
        &self,
        pods: &PodRun<'_>,
        pod: &str,
        claims: &[Claim],
        present: Option<&PodState>,
    ) -> Result<Fate> {
        let Some(present) = present else {
            return self.tend_gone(pods, pod, claims).await;
        };
        if claims.iter().any(|c| c.gone_since.is_some()) {
            self.store.note_gone(claims, None).await?;
        }
        let why = match present.deleting {
            true => "terminating",
            false => "no endpoint at its IP",
        };
        self.withdraw_targets(pods, pod, claims, why).await?;
        Ok(Fate::Kept)
    }

    /// A pod gone from the Service: its target goes and it is noted gone; its ports go once
    /// the grace has run out.
    async fn tend_gone(&self, pods: &PodRun<'_>, pod: &str, claims: &[Claim]) -> Result<Fate> {
        let grace = pods.run.request.pod_release_after;
        let now = now_epoch();
        let since = claims.iter().filter_map(|c| c.gone_since).min();
        let due = match since {
            Some(t) => now - t >= i64::from(grace),
            None => grace == 0,
        };
        if due {
            let subject = self
                .pod_subject(pods.run.cluster, pods.run.service, pod)
                .await?;
            let released = self
                .release_pod_claims(pods.run.token, pods.run.cluster, &subject, claims.to_vec())
                .await?;
            if released > 0 {
                return Ok(Fate::Released(released));
            }
            // Another run holds them and judges again; the target goes meanwhile.
        }
        // The target first: a gone note says nothing of the pod is registered any more.
        self.withdraw_targets(pods, pod, claims, "gone").await?;
        if since.is_none() {
            self.store.note_gone(claims, Some(now)).await?;
            tracing::info!(service = %pods.run.service.key, pod, grace,
                "the pod left the Service; its ports are kept for the grace, without target");
        }
        Ok(Fate::Leaving)
    }

    /// Deregisters every target of the groups of `claims` (the pod is not served, for the
    /// reason `why`), unless the claims say none is left (a thorough pass asks AWS anyway),
    /// and notes on them that none is.
    async fn withdraw_targets(
        &self,
        pods: &PodRun<'_>,
        pod: &str,
        claims: &[Claim],
        why: &str,
    ) -> Result<()> {
        let none = pods.no_targets.as_str();
        let todo: Vec<(&Claim, &str)> = claims
            .iter()
            .filter_map(|c| {
                // A claim never recorded has no group of its own yet: its run finishes or
                // undoes it, and the release after the grace finds it by name.
                let group = c.target_group_arn.as_deref()?;
                let known_empty = c
                    .applied
                    .as_deref()
                    .and_then(|a| a.split_once('.'))
                    .is_some_and(|(_, targets)| targets == none);
                (pods.pass == Pass::Thorough || !known_empty).then_some((c, group))
            })
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let synced = join_all(todo.iter().map(|(_, group)| async move {
            match self.sync_target_group(group, &BTreeSet::new(), false).await {
                // A group deleted out of band holds no target (the pod's return remakes it).
                Err(Error::Elb(e)) if e.kind == ElbErrorKind::NotFound => Ok((0, 0)),
                other => other,
            }
        }))
        .await;
        let mut deregistered = 0;
        for result in synced {
            deregistered += result?.1;
        }
        if deregistered > 0 {
            tracing::info!(service = %pods.run.service.key, pod, why, targets = deregistered,
                "deregistered the targets of a pod that is not served");
        }
        // What each listener is made from, its targets none: the listener half is kept, so a
        // listener still to be repaired is still seen so.
        let noted: Vec<(Claim, String)> = todo
            .iter()
            .map(|(c, _)| {
                let listener = c.applied.as_deref().map(listener_half).unwrap_or_default();
                ((*c).clone(), format!("{listener}.{none}"))
            })
            .collect();
        self.note_applied(pods.run.service, &noted).await;
        Ok(())
    }
}
