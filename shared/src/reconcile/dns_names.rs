//! The DNS names of a pool's NLBs, read once per process (an NLB's name never changes).

use std::collections::{BTreeSet, HashMap};

use super::Result;
use super::reconciler::Reconciler;
use crate::model::pool::NlbPool;

impl Reconciler {
    /// The DNS names of a pool's NLBs, read once per process (they never change). An NLB that
    /// does not exist is left out and noted in the view, so no claim goes to it: the rest of
    /// the pool goes on.
    pub(super) async fn dns_names(&self, pool: &NlbPool) -> Result<HashMap<String, String>> {
        let pool = &self.with_cached_members(pool);
        let (names, absent) = self.cached_dns_names(pool.nlb_arns()).await?;
        for nlb in &absent {
            tracing::warn!(nlb = %nlb, pool = pool.name(),
                "an NLB of the pool does not exist (check POOLS); no claim goes to it");
            self.view.mark_unusable(nlb);
        }
        Ok(names)
    }

    /// The DNS names of the pool's NLBs and of `holders` (the NLBs that hold a run's claims,
    /// one of which this instance may not know as a member yet: a managed NLB made after its
    /// member list was read), each that exists.
    pub(super) async fn dns_names_of(
        &self,
        pool: &NlbPool,
        holders: &BTreeSet<&str>,
    ) -> Result<HashMap<String, String>> {
        let mut names = self.dns_names(pool).await?;
        let unseen: Vec<String> = holders
            .iter()
            .filter(|a| !names.contains_key(**a))
            .map(|a| (*a).to_owned())
            .collect();
        names.extend(self.cached_dns_names(&unseen).await?.0);
        Ok(names)
    }

    /// The DNS names of `arns` that exist, from the process's cache or read (once) from ELBv2;
    /// and those found not to exist by this call.
    pub(super) async fn cached_dns_names(
        &self,
        arns: &[String],
    ) -> Result<(HashMap<String, String>, Vec<String>)> {
        let mut cache = self.dns_names.lock().await;
        let missing: Vec<String> = arns
            .iter()
            .filter(|a| !cache.contains_key(*a))
            .cloned()
            .collect();
        let mut absent = Vec::new();
        if !missing.is_empty() {
            let found = self.elb.nlb_dns_names(&missing).await?;
            absent = missing
                .into_iter()
                .filter(|a| !found.contains_key(a))
                .collect();
            cache.extend(found);
        }
        let names = arns
            .iter()
            .filter_map(|a| Some((a.clone(), cache.get(a)?.clone())))
            .collect();
        Ok((names, absent))
    }
}
