//! An in-memory claim store with the same conditions as DynamoDB, for unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::model::claims::{
    Claim, ClaimError, ClaimState, ClaimStore, CursorStore, HoldError, NlbState, NlbTerms,
    NlbUsage, PoolRecord, PortHolder, ReleaseError, RunToken, StoreError, SweepCursor,
    TableIdentity, TakeOverError,
};

mod checks;
mod keys;
mod pool;
mod setup;

/// The key of a claim's owner record: its partition (the owner uid) and sort key.
fn record_id(claim: &Claim) -> (String, String) {
    (claim.owner.uid.clone(), claim.record_sk())
}

#[derive(Default)]
struct State {
    cursor: SweepCursor,
    identities: Vec<TableIdentity>,
    nlbs: BTreeMap<String, BTreeSet<u16>>,
    /// The `state` of NLB items that have one (none: a pre-made NLB, active).
    nlb_states: BTreeMap<String, String>,
    /// The `emptySince` of made NLBs' items that have one.
    empty_since: BTreeMap<String, i64>,
    /// The sweep's listings of NLBs.
    listings: BTreeMap<String, crate::model::claims::NlbListing>,
    /// Managed pools' partitions.
    pools: BTreeMap<String, PoolRecord>,
    ports: BTreeMap<(String, u16), PortHolder>,
    owners: BTreeMap<(String, String), Claim>,
    checks: BTreeMap<String, crate::model::claims::CheckItem>,
    /// Key items, by key.
    keys: BTreeMap<String, crate::model::claims::KeyHold>,
    /// Calls of `claims_of`, for tests of what a pass reads.
    owner_reads: usize,
    /// The items of each release transaction so far, in order.
    release_transactions: Vec<usize>,
}

impl State {
    /// `claim`'s port item and owner record, as a claim (or a hand-over) writes them.
    fn hold(&mut self, claim: &Claim) {
        self.ports.insert(
            (claim.nlb_arn.clone(), claim.port),
            PortHolder {
                nlb_arn: claim.nlb_arn.clone(),
                port: claim.port,
                owner: claim.owner.clone(),
                key: claim.key.clone(),
                claimed_at: claim.claimed_at,
            },
        );
        self.owners.insert(record_id(claim), claim.clone());
    }
}

/// Claims in memory; every method is atomic, as a DynamoDB transaction is.
#[derive(Default)]
pub struct MemoryClaimStore {
    state: Mutex<State>,
    latency: std::time::Duration,
}

impl MemoryClaimStore {
    /// Sets the `state` of an NLB's item (`None`: no state, as a pre-made NLB's item),
    /// bypassing every condition.
    pub fn force_nlb_state(&self, nlb_arn: &str, state: Option<&str>) {
        let mut st = self.lock();
        match state {
            Some(s) => st.nlb_states.insert(nlb_arn.to_owned(), s.to_owned()),
            None => st.nlb_states.remove(nlb_arn),
        };
    }

    /// The items of each release transaction so far, in order (DynamoDB takes at most 100).
    pub fn release_transactions(&self) -> Vec<usize> {
        self.lock().release_transactions.clone()
    }

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call takes `latency` (of tokio time), like a network round trip.
    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency = latency;
        self
    }

    async fn round_trip(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread poisons the lock; the state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The stored claim, if `token`'s run holds it (the condition of every write on a held claim).
fn held<'a>(
    st: &'a mut State,
    claim: &Claim,
    token: &RunToken,
) -> Result<&'a mut Claim, HoldError> {
    match st.owners.get_mut(&record_id(claim)) {
        None => Err(HoldError::Gone {
            key: claim.key.clone(),
        }),
        Some(c) if c.token != token.as_str() => Err(HoldError::TakenOver {
            key: claim.key.clone(),
            token: c.token.clone(),
        }),
        Some(c) => Ok(c),
    }
}

#[async_trait]
impl ClaimStore for MemoryClaimStore {
    async fn claims_of(&self, uid: &str) -> Result<Vec<Claim>, StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        st.owner_reads += 1;
        Ok(st
            .owners
            .values()
            .filter(|c| c.owner.uid == uid)
            .cloned()
            .collect())
    }

    async fn note_gone(&self, claims: &[Claim], since: Option<i64>) -> Result<(), StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        for c in claims {
            if let Some(stored) = st.owners.get_mut(&record_id(c)) {
                stored.gone_since = since;
            }
        }
        Ok(())
    }

    async fn note_applied(&self, applied: &[(Claim, String)]) -> Result<(), StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        for (c, fingerprint) in applied {
            if let Some(stored) = st.owners.get_mut(&record_id(c))
                && stored.listener_arn.is_some()
                && stored.listener_arn == c.listener_arn
            {
                stored.applied = Some(fingerprint.clone());
            }
        }
        Ok(())
    }

    async fn claim(&self, claims: &[Claim], terms: NlbTerms) -> Result<(), ClaimError> {
        self.round_trip().await;
        let listener_quota = terms.listener_quota;
        let Some(first) = claims.first() else {
            return Ok(());
        };
        let mut st = self.lock();
        if claims.iter().any(|c| st.owners.contains_key(&record_id(c))) {
            return Err(ClaimError::AlreadyClaimed);
        }
        let taken: Vec<u16> = claims
            .iter()
            .filter(|c| st.ports.contains_key(&(c.nlb_arn.clone(), c.port)))
            .map(|c| c.port)
            .collect();
        if !taken.is_empty() {
            return Err(ClaimError::PortTaken {
                nlb_arn: first.nlb_arn.clone(),
                ports: taken,
            });
        }
        let used = st.nlbs.get(&first.nlb_arn).map_or(0, BTreeSet::len);
        let state = st.nlb_states.get(&first.nlb_arn);
        let active = if terms.made {
            state.is_some_and(|s| s == crate::model::claims::NLB_ACTIVE)
        } else {
            state.is_none_or(|s| s == crate::model::claims::NLB_ACTIVE)
        };
        if !active || used + claims.len() > listener_quota as usize {
            return Err(ClaimError::NlbFull {
                nlb_arn: first.nlb_arn.clone(),
            });
        }
        for c in claims {
            st.nlbs.entry(c.nlb_arn.clone()).or_default().insert(c.port);
            st.hold(c);
        }
        Ok(())
    }

    async fn take_over(
        &self,
        claims: &[Claim],
        token: &RunToken,
        now: i64,
        stale_before: i64,
    ) -> Result<(), TakeOverError> {
        self.round_trip().await;
        let mut st = self.lock();
        // All or none, as one DynamoDB transaction: check every condition first.
        for c in claims {
            let stored = st.owners.get(&record_id(c));
            let Some(stored) = stored else {
                return Err(TakeOverError::Gone { key: c.key.clone() });
            };
            if stored.token == token.as_str() {
                continue; // taken by an earlier attempt of this very call (a lost answer)
            }
            let live = stored.held_at > 0 && stored.held_at >= stale_before;
            if stored.token != c.token || live {
                return Err(if live {
                    TakeOverError::Busy {
                        key: c.key.clone(),
                        token: stored.token.clone(),
                        held_for: now - stored.held_at,
                    }
                } else {
                    TakeOverError::Changed { key: c.key.clone() }
                });
            }
        }
        for c in claims {
            if let Some(stored) = st.owners.get_mut(&record_id(c)) {
                stored.token = token.as_str().to_owned();
                stored.held_at = now;
                stored.applied = None;
            }
        }
        Ok(())
    }

    async fn record_resources(
        &self,
        claim: &Claim,
        token: &RunToken,
        listener_arn: &str,
        target_group_arn: &str,
        now: i64,
    ) -> Result<(), HoldError> {
        self.round_trip().await;
        let mut st = self.lock();
        let c = held(&mut st, claim, token)?;
        c.listener_arn = Some(listener_arn.to_owned());
        c.target_group_arn = Some(target_group_arn.to_owned());
        c.state = ClaimState::Active;
        c.held_at = now;
        Ok(())
    }

    async fn let_go(&self, claims: &[Claim], token: &RunToken) -> Result<(), HoldError> {
        self.round_trip().await;
        let mut st = self.lock();
        // Each on its own, as separate DynamoDB updates: the first refusal is reported.
        let mut refused = None;
        for c in claims {
            match held(&mut st, c, token) {
                Ok(stored) => {
                    stored.held_at = 0;
                    stored.applied = c.applied.clone();
                }
                Err(e) => refused = refused.or(Some(e)),
            }
        }
        refused.map_or(Ok(()), Err)
    }

    async fn release(&self, claims: &[Claim], token: &RunToken) -> Result<(), ReleaseError> {
        self.round_trip().await;
        let mut st = self.lock();
        // As DynamoDB: transactions as `release_batches` groups them, each all or nothing and
        // refused over 100 items (2 per claim, 1 NLB item).
        for (_, batch) in crate::model::claims::release_batches(claims) {
            let items = crate::model::claims::release_items(batch.len());
            if items > crate::model::claims::TRANSACTION_ITEMS {
                return Err(ReleaseError::Store(StoreError {
                    operation: "TransactWriteItems (release)",
                    message: "ValidationException: transactItems must have length less than or \
                              equal to 100"
                        .into(),
                    retryable: false,
                }));
            }
            for c in &batch {
                if let Some(stored) = st.owners.get(&record_id(c))
                    && stored.token != token.as_str()
                {
                    return Err(ReleaseError::NotHeld {
                        key: c.key.clone(),
                        token: stored.token.clone(),
                    });
                }
                if let Some(holder) = st.ports.get(&(c.nlb_arn.clone(), c.port))
                    && (holder.owner.uid != c.owner.uid || holder.owner.pod != c.owner.pod)
                {
                    return Err(ReleaseError::PortHeldByOther {
                        nlb_arn: c.nlb_arn.clone(),
                        port: c.port,
                    });
                }
            }
            for c in &batch {
                st.ports.remove(&(c.nlb_arn.clone(), c.port));
                st.owners.remove(&record_id(c));
                if let Some(set) = st.nlbs.get_mut(&c.nlb_arn) {
                    set.remove(&c.port);
                }
            }
            st.release_transactions.push(items);
        }
        Ok(())
    }

    async fn record_listing(
        &self,
        nlb_arn: &str,
        listing: &crate::model::claims::NlbListing,
        made: bool,
    ) -> Result<(), StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        // A made NLB's item exists while it has a state; a retired one's is gone.
        if made && !st.nlb_states.contains_key(nlb_arn) {
            return Ok(());
        }
        st.listings.insert(nlb_arn.to_owned(), listing.clone());
        Ok(())
    }

    async fn nlb_usage(&self, nlb_arns: &[String]) -> Result<Vec<NlbUsage>, StoreError> {
        self.round_trip().await;
        let st = self.lock();
        Ok(nlb_arns
            .iter()
            .map(|arn| {
                let state = st
                    .nlb_states
                    .get(arn)
                    .and_then(|s| s.parse::<NlbState>().ok());
                NlbUsage {
                    nlb_arn: arn.clone(),
                    ports: st.nlbs.get(arn).cloned().unwrap_or_default(),
                    active: state.is_none_or(|s| s == NlbState::Active),
                    state,
                    empty_since: st.empty_since.get(arn).copied(),
                    listing: st.listings.get(arn).cloned(),
                }
            })
            .collect())
    }

    async fn port_holders(&self, nlb_arn: &str) -> Result<Vec<PortHolder>, StoreError> {
        self.round_trip().await;
        Ok(self
            .lock()
            .ports
            .values()
            .filter(|h| h.nlb_arn == nlb_arn)
            .cloned()
            .collect())
    }

    async fn key_hold(
        &self,
        key: &str,
    ) -> Result<Option<crate::model::claims::KeyHold>, StoreError> {
        self.round_trip().await;
        Ok(self.key_hold_now(key))
    }

    async fn take_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<crate::model::claims::KeyHold, StoreError> {
        self.round_trip().await;
        Ok(self.take_key_now(key, owner))
    }

    async fn offer_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
        offered_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.round_trip().await;
        Ok(self.offer_key_now(key, owner, offered_at))
    }

    async fn hand_over(
        &self,
        hold: &crate::model::claims::KeyHold,
        from: &[Claim],
        to: &[Claim],
    ) -> Result<bool, StoreError> {
        self.round_trip().await;
        Ok(self.hand_over_now(hold, from, to))
    }

    async fn drop_key(
        &self,
        key: &str,
        owner: &crate::model::claims::Owner,
    ) -> Result<(), StoreError> {
        self.round_trip().await;
        self.drop_key_now(key, owner);
        Ok(())
    }

    async fn identities(&self) -> Result<Vec<TableIdentity>, StoreError> {
        self.round_trip().await;
        Ok(self.lock().identities.clone())
    }

    async fn record_identity(&self, identity: &TableIdentity) -> Result<TableIdentity, StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        if let Some(recorded) = st
            .identities
            .iter()
            .find(|r| r.cluster_name == identity.cluster_name)
        {
            return Ok(recorded.clone());
        }
        st.identities.push(identity.clone());
        Ok(identity.clone())
    }
}

#[async_trait]
impl CursorStore for MemoryClaimStore {
    async fn load_cursor(&self) -> Result<SweepCursor, StoreError> {
        Ok(self.lock().cursor.clone())
    }

    async fn save_cursor(&self, cursor: &SweepCursor) -> Result<(), StoreError> {
        self.lock().cursor = cursor.clone();
        Ok(())
    }
}
