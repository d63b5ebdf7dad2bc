//! Releasing: annotations first, then listeners, then target groups, then the claims, so every
//! moment leaves either a claim or nothing (never an unclaimed listener the sweep must find,
//! never an advertised port that is free to claim). Only claims the run holds are released.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use futures::future::try_join_all;

/// Pods whose claims one run releases at once (a per-pod Service's release).
const RELEASE_CONCURRENCY: usize = 16;

use super::holding::{Held, Holding};
use super::{Error, Outcome, Reconciler, Result};
use crate::contract::annotations;
use crate::contract::event::ServiceKey;
use crate::contract::service_model::ServiceState;
use crate::model::claims::{Claim, RunToken};
use crate::model::cluster::{Cluster, Notice, NoticeKind, ServiceOutputs, Written};
use crate::model::elb::{ElbErrorKind, owned_by, target_group_name};
use crate::reconcile::failpoint;

impl Reconciler {
    /// [`Reconciler::release_if_unwanted_as`] as a run of its own (a random token).
    pub async fn release_if_unwanted(
        &self,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<Outcome> {
        self.release_if_unwanted_as(&RunToken::random(), cluster, namespace, name, uid)
            .await
    }

    /// Handles a deletion, as the run `token`: releases the object with `uid` when it is gone
    /// or replaced, and the Service itself when it is deleting or no longer opted in. A live,
    /// opted-in Service is left alone (a late event; `reconcile_service` owns allocation), so
    /// this path never makes anything.
    pub async fn release_if_unwanted_as(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<Outcome> {
        let outcome = self
            .release_unwanted(token, cluster, namespace, name, uid)
            .await;
        self.tally(&outcome);
        outcome
    }

    async fn release_unwanted(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<Outcome> {
        let service = cluster.service(namespace, name).await?;
        match service {
            Some(s) if s.uid == uid => match self.decide(&s) {
                super::decide::Decision::Release => self.release_service(token, cluster, &s).await,
                _ => Ok(Outcome::Nothing(
                    "the Service is live and still asks for listeners",
                )),
            },
            _ => Ok(
                match self
                    .release_uid_as(
                        token,
                        cluster,
                        uid,
                        &super::reconciler::service_key(self, namespace, name),
                    )
                    .await?
                {
                    0 => Outcome::Nothing("nothing to release"),
                    n => Outcome::Released { listeners: n },
                },
            ),
        }
    }

    /// Releases everything the Service holds and removes the output annotations and the
    /// finalizer (which lets a deleting Service go). The annotations go first: no moment
    /// advertises a port that another Service may already have claimed.
    pub(super) async fn release_service(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        service: &ServiceState,
    ) -> Result<Outcome> {
        let mut holding = Holding::new(token);
        let result = self
            .release_service_with(cluster, service, &mut holding)
            .await;
        self.let_go_after_release(result, &holding).await
    }

    async fn release_service_with(
        &self,
        cluster: &dyn Cluster,
        service: &ServiceState,
        holding: &mut Holding<'_>,
    ) -> Result<Outcome> {
        let claims = self
            .hold_all_of(holding, &service.uid, &service.key)
            .await?;
        let mut current = service.clone();
        if let Some(key) = super::claim_key::named_key(service)
            && self
                .offer_on_release(cluster, service, key, &claims)
                .await?
        {
            // Kept for the next Service naming the key: only this Service's outputs go.
            if let Written::Done(after) = self.unadvertise(cluster, service, &claims).await? {
                current = *after;
            }
            self.write_with(cluster, &current, &|_| ServiceOutputs::default())
                .await?;
            return Ok(Outcome::Nothing(
                "listeners offered to the next Service naming its claim key",
            ));
        }
        if claims.iter().any(|c| c.owner.pod.is_some())
            || service.annotations.contains_key(annotations::PODS)
        {
            // A per-pod Service: its pods stop advertising before their ports are free.
            self.clear_pods(cluster, service, &claims).await?;
        }
        if !claims.is_empty() {
            match self.unadvertise(cluster, service, &claims).await? {
                Written::Done(after) => current = *after,
                // Replaced meanwhile: this object's annotations went with it.
                Written::Gone => {}
            }
        }
        self.release_claims(holding.token, &claims).await?;
        holding.forget(&claims);
        self.failpoints.check(failpoint::RELEASE_AFTER_CLAIMS)?;
        if !claims.is_empty() {
            let notice = Notice {
                kind: NoticeKind::Normal,
                reason: "Released",
                note: format!("released {} listener(s)", claims.len()),
                once: None,
            };
            cluster.publish(service, &notice).await?;
        }
        self.write_with(cluster, &current, &|_| ServiceOutputs::default())
            .await?;
        self.failpoints.check(failpoint::RELEASE_AFTER_OUTPUTS)?;
        Ok(match claims.len() {
            0 => Outcome::Nothing("nothing to release"),
            n => Outcome::Released { listeners: n },
        })
    }

    /// [`Reconciler::release_uid_as`] as a run of its own (a random token).
    pub async fn release_uid(
        &self,
        cluster: &dyn Cluster,
        uid: &str,
        key: &ServiceKey,
    ) -> Result<usize> {
        self.release_uid_as(&RunToken::random(), cluster, uid, key)
            .await
    }

    /// Releases, as the run `token`, the claims of the object with `uid` that was the Service
    /// `key` and no longer exists under that name; returns how many there were. Claims of
    /// `uid` recorded for any other Service are left alone: an event naming one Service cannot
    /// release another's.
    pub async fn release_uid_as(
        &self,
        token: &RunToken,
        cluster: &dyn Cluster,
        uid: &str,
        key: &ServiceKey,
    ) -> Result<usize> {
        let mut holding = Holding::new(token);
        let result = async {
            let theirs = self.hold_all_of(&mut holding, uid, key).await?;
            if theirs.iter().any(|c| c.owner.pod.is_some()) {
                // The Service is gone; its pods may not be (a StatefulSet outlives it).
                let gone = ServiceState::gone(key.clone(), uid);
                self.clear_pods(cluster, &gone, &theirs).await?;
            }
            self.release_claims(token, &theirs).await?;
            holding.forget(&theirs);
            Ok(theirs.len())
        }
        .await;
        self.let_go_after_release(result, &holding).await
    }

    /// Reads the claims of `uid` recorded for Service `key` and holds them all.
    async fn hold_all_of(
        &self,
        holding: &mut Holding<'_>,
        uid: &str,
        key: &ServiceKey,
    ) -> Result<Vec<Claim>> {
        for _ in 0..3 {
            let (mut theirs, others): (Vec<Claim>, Vec<Claim>) = self
                .store
                .claims_of(uid)
                .await?
                .into_iter()
                .partition(|c| &c.owner.key == key);
            if let Some(c) = others.first() {
                tracing::warn!(uid, named = %key, owner = %c.owner.key,
                    "claims of this uid belong to another Service; not releasing them");
            }
            if self.hold(holding, key, &mut theirs).await? == Held::Yes {
                return Ok(theirs);
            }
        }
        Err(Error::Conflict(format!(
            "the claims of {key} kept changing hands while being released"
        )))
    }

    /// Lets go of what a release still holds (it failed midway), short of a kill.
    pub(super) async fn let_go_after_release<T>(
        &self,
        result: Result<T>,
        holding: &Holding<'_>,
    ) -> Result<T> {
        if !matches!(result, Err(Error::Injected(_)))
            && let Err(e) = self.let_go(holding).await
        {
            tracing::warn!(run = %holding.token, error = %e, "could not let the claims go");
        }
        result
    }

    /// Deletes the listeners and target groups of `claims` (only those tagged as their owner's),
    /// then the claims. Safe to repeat: what is already gone counts as deleted. A per-pod
    /// Service's claims go pod by pod, [`RELEASE_CONCURRENCY`] pods at a time: one pod's claims
    /// fit one transaction (100 items), a fleet's do not.
    pub(super) async fn release_claims(&self, token: &RunToken, claims: &[Claim]) -> Result<()> {
        let mut by_owner: BTreeMap<Option<&str>, Vec<Claim>> = BTreeMap::new();
        for c in claims {
            by_owner
                .entry(c.owner.pod.as_deref())
                .or_default()
                .push(c.clone());
        }
        if by_owner.len() <= 1 {
            return self.release_owner_claims(token, claims).await;
        }
        let mut groups = futures::stream::iter(by_owner.into_values())
            .map(|group| async move { self.release_owner_claims(token, &group).await })
            .buffer_unordered(RELEASE_CONCURRENCY);
        let mut first_error = None;
        while let Some(result) = groups.next().await {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// [`Reconciler::release_claims`] of one owner's claims (a Service's own, or one pod's).
    async fn release_owner_claims(&self, token: &RunToken, claims: &[Claim]) -> Result<()> {
        if claims.is_empty() {
            return Ok(());
        }
        // Listeners: every listener on a claimed port, whether recorded or not (a run that
        // stopped before recording its listener leaves one only the port names).
        let mut by_nlb: BTreeMap<&str, Vec<&Claim>> = BTreeMap::new();
        for c in claims {
            by_nlb.entry(c.nlb_arn.as_str()).or_default().push(c);
        }
        // An NLB deleted out of band took its listeners with it: nothing to delete there.
        let listings = try_join_all(by_nlb.keys().map(|nlb| async move {
            match self.elb.listeners_of(nlb).await {
                Err(e) if e.kind == ElbErrorKind::NlbNotFound => Ok(vec![]),
                listed => listed,
            }
        }))
        .await?;
        let mut listener_owner: HashMap<String, &Claim> = HashMap::new();
        for (group, listeners) in by_nlb.values().zip(listings) {
            for l in listeners {
                if let Some(c) = group.iter().find(|c| c.port == l.port) {
                    listener_owner.insert(l.arn, c);
                }
            }
        }
        // Target groups: recorded, else by their derived name.
        let named = try_join_all(claims.iter().filter(|c| c.target_group_arn.is_none()).map(
            |c| async move {
                let found = self
                    .elb
                    .find_target_group(&target_group_name(&c.owner, &c.key))
                    .await?;
                Ok::<_, crate::model::elb::ElbError>(found.map(|tg| (tg.arn, c)))
            },
        ))
        .await?;
        let mut group_owner: HashMap<String, &Claim> = named.into_iter().flatten().collect();
        for c in claims {
            if let Some(arn) = &c.target_group_arn {
                group_owner.insert(arn.clone(), c);
            }
        }
        // Ownership by uid, checked on the resources themselves before any delete.
        let arns: Vec<String> = listener_owner
            .keys()
            .chain(group_owner.keys())
            .cloned()
            .collect();
        let tags = self.elb.tags_of(&arns).await?;
        let mine = |arn: &String, c: &Claim| owned_by(tags.get(arn), &c.owner.uid);
        let listeners: Vec<&String> = listener_owner
            .iter()
            .filter(|(a, c)| mine(a, c))
            .map(|(a, _)| a)
            .collect();
        let groups: Vec<&String> = group_owner
            .iter()
            .filter(|(a, c)| mine(a, c))
            .map(|(a, _)| a)
            .collect();
        for (arn, c) in listener_owner.iter().filter(|(a, c)| !mine(a, c)) {
            tracing::warn!(listener = %arn, port = c.port, service = %c.owner.key,
                "a listener on a released port is not this Service's; leaving it");
        }
        try_join_all(listeners.iter().map(|a| self.elb.delete_listener(a))).await?;
        self.failpoints.check(failpoint::RELEASE_AFTER_LISTENERS)?;
        try_join_all(groups.iter().map(|a| self.elb.delete_target_group(a))).await?;
        self.failpoints
            .check(failpoint::RELEASE_AFTER_TARGET_GROUPS)?;
        self.store.release(claims, token).await?;
        for (nlb, group) in &by_nlb {
            let ports: Vec<u16> = group.iter().map(|c| c.port).collect();
            self.view.remove_ports(nlb, &ports);
        }
        tracing::info!(service = %claims[0].owner.key, listeners = claims.len(), "released");
        self.drop_key_after(claims).await
    }
}
