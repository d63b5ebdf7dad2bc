//! Proving the claims table describes this cluster and this stack before anything deletes on
//! absence (DESIGN.md section 10, "Deleting is the dangerous verb").
//!
//! The table holds one identity item per cluster (see [`crate::adapters::dynamo::identity`]),
//! written once, by the first of that cluster's functions that proves the world is its own:
//! nothing recorded for it yet, every listener tagged as this cluster's on the pools' NLBs
//! accounted for by a claim, and, when the table holds claims of this cluster, at least one of
//! them owned by a Service that exists in it. An emptied or replaced table facing live
//! listeners, or an old table facing a rebuilt cluster, proves nothing, and then nobody records
//! an identity: an operator decides (docs/deploy.md).
//!
//! Several clusters may share a table and its pools (blue/green upgrades): each stack names the
//! others in `SHARED_CLUSTERS`. A record or a claim of a cluster it does not name makes the
//! table foreign to it: a stack pointed at the wrong table by mistake claims nothing there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Error, Reconciler, Result};
use crate::model::claims::TableIdentity;
use crate::model::cluster::Cluster;
use crate::model::elb::TAG_SERVICE_UID;

/// Whose world the claims table describes, as far as this run can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The table records this cluster and this stack.
    Own,
    /// The table records another cluster (same name, other `kube-system` uid) or stack.
    Foreign(String),
    /// The table records no identity and the world does not prove to be this system's.
    Unproven(String),
}

/// Owners whose Services are looked up when proving a table with claims is this cluster's.
const OWNERS_CHECKED: usize = 20;

/// How long allocation goes on without asking again after the world proved nothing.
const UNPROVEN_RECHECK: Duration = Duration::from_secs(60);

use super::identity_cache::IdentityCache;

impl Reconciler {
    /// This stack's id, as recorded in the table's identity.
    pub fn stack_id(&self) -> &str {
        &self.stack_id
    }

    /// Sets the stack's id (`STACK_ID`; CloudFormation's `AWS::StackId`).
    pub fn with_stack_id(mut self, stack_id: impl Into<String>) -> Self {
        self.stack_id = stack_id.into();
        self
    }

    async fn live_identity(
        &self,
        cluster: &dyn Cluster,
        cache: &mut IdentityCache,
    ) -> Result<TableIdentity> {
        let uid = match &cache.cluster_uid {
            Some(uid) => uid.clone(),
            None => {
                let uid = cluster.cluster_uid().await?;
                cache.cluster_uid = Some(uid.clone());
                uid
            }
        };
        Ok(TableIdentity {
            cluster_name: self.cluster_name.clone(),
            cluster_uid: uid,
            stack_id: self.stack_id.clone(),
        })
    }

    /// Reads the table's identity (never from a cache: deleting is decided on what the table
    /// says now) and compares it with the live cluster's and this stack's; records it when
    /// none is recorded and the world proves to be this system's.
    pub async fn check_ownership(&self, cluster: &dyn Cluster) -> Result<Ownership> {
        let mut cache = self.identity.lock().await;
        self.check_ownership_with(cluster, &mut cache).await
    }

    /// Whether clusters named `name` may hold claims in this stack's table: this one and those
    /// of `SHARED_CLUSTERS`.
    pub(super) fn shares_table_with(&self, name: &str) -> bool {
        name == self.cluster_name || self.shared_clusters.iter().any(|c| c == name)
    }

    /// Sets the other clusters sharing the claims table and pools (`SHARED_CLUSTERS`).
    pub fn with_shared_clusters(mut self, clusters: Vec<String>) -> Self {
        self.shared_clusters = clusters;
        self
    }

    async fn check_ownership_with(
        &self,
        cluster: &dyn Cluster,
        cache: &mut IdentityCache,
    ) -> Result<Ownership> {
        let live = self.live_identity(cluster, cache).await?;
        let records = self.store.identities().await?;
        if let Some(stranger) = records
            .iter()
            .find(|r| !self.shares_table_with(&r.cluster_name))
        {
            return Ok(Ownership::Foreign(format!(
                "the claims table records {stranger}, a cluster this stack does not share it \
                 with (SHARED_CLUSTERS: {})",
                self.shared_names()
            )));
        }
        let recorded = match records
            .into_iter()
            .find(|r| r.cluster_name == live.cluster_name)
        {
            Some(recorded) => recorded,
            None => {
                if let Err(why) = self.prove_world(cluster).await? {
                    return Ok(Ownership::Unproven(format!(
                        "the claims table records no identity and {why}"
                    )));
                }
                let recorded = self.store.record_identity(&live).await?;
                tracing::info!(identity = %recorded, "recorded the claims table's identity");
                recorded
            }
        };
        if recorded == live {
            cache.verified = true;
            return Ok(Ownership::Own);
        }
        Ok(Ownership::Foreign(format!(
            "the claims table records {recorded}, but this is {live}"
        )))
    }

    /// Before claiming ports: a table of another cluster or stack is refused (its own sweep
    /// would release this cluster's claims as gone). Checked once per warm instance; a table
    /// with no provable identity is used (allocating deletes nothing) and asked about again
    /// a minute later.
    pub(super) async fn check_before_claims(&self, cluster: &dyn Cluster) -> Result<()> {
        let mut cache = self.identity.lock().await;
        if cache.verified || cache.unproven_until.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        match self.check_ownership_with(cluster, &mut cache).await? {
            Ownership::Own => Ok(()),
            Ownership::Foreign(why) => Err(Error::Setup(format!(
                "{why}: no port is claimed in another cluster's or stack's table (docs/deploy.md, \
                 \"The sweep deletes nothing\")"
            ))),
            Ownership::Unproven(why) => {
                tracing::warn!(reason = %why, "allocating in a claims table whose identity is not recorded");
                cache.unproven_until = Some(Instant::now() + UNPROVEN_RECHECK);
                Ok(())
            }
        }
    }

    /// Whether the world is this system's own, and if not, why not (see the module docs).
    async fn prove_world(&self, cluster: &dyn Cluster) -> Result<std::result::Result<(), String>> {
        let mut unaccounted = 0;
        let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut claims = 0;
        for nlb in self.pools.pools().flat_map(|p| p.nlb_arns()) {
            // Listeners before claims, as the sweep reads them (a claim precedes its listener).
            let listeners = self.elb.listeners_of(nlb).await?;
            let arns: Vec<String> = listeners.iter().map(|l| l.arn.clone()).collect();
            let tags = self.elb.tags_of(&arns).await?;
            let holders = self.store.port_holders(nlb).await?;
            for l in &listeners {
                let Some(t) = tags.get(&l.arn).filter(|t| self.is_ours(t)) else {
                    continue;
                };
                let uid = t.get(TAG_SERVICE_UID).map(String::as_str).unwrap_or("");
                if !holders
                    .iter()
                    .any(|h| h.port == l.port && h.owner.uid == uid)
                {
                    unaccounted += 1;
                }
            }
            if let Some(h) = holders
                .iter()
                .find(|h| !self.shares_table_with(&h.owner.key.cluster))
            {
                return Ok(Err(format!(
                    "it holds claims of cluster {}, which this stack does not share it with \
                     (SHARED_CLUSTERS: {})",
                    h.owner.key.cluster,
                    self.shared_names()
                )));
            }
            for h in holders
                .iter()
                .filter(|h| h.owner.key.cluster == self.cluster_name)
            {
                claims += 1;
                owners
                    .entry(h.owner.uid.clone())
                    .or_insert_with(|| (h.owner.key.namespace.clone(), h.owner.key.name.clone()));
            }
        }
        if unaccounted > 0 {
            return Ok(Err(format!(
                "{unaccounted} listener(s) on the pools' NLBs tagged as cluster {}'s have no \
                 claim in it: the table looks emptied or replaced",
                self.cluster_name
            )));
        }
        if owners.is_empty() {
            return Ok(Ok(()));
        }
        for (uid, (namespace, name)) in owners.iter().take(OWNERS_CHECKED) {
            if cluster
                .service(namespace, name)
                .await?
                .is_some_and(|s| &s.uid == uid)
            {
                return Ok(Ok(()));
            }
        }
        Ok(Err(format!(
            "none of the {} Service(s) checked of its {claims} claim(s) exists in this cluster: \
             the table looks like another cluster's of the same name, or an old backup",
            owners.len().min(OWNERS_CHECKED)
        )))
    }

    /// `SHARED_CLUSTERS` as a message shows it.
    fn shared_names(&self) -> String {
        match self.shared_clusters.is_empty() {
            true => "none".to_owned(),
            false => self.shared_clusters.join(", "),
        }
    }
}
