//! [`PoolRecords`] in memory, with DynamoDB's conditions, sharing the claim store's state so
//! the claim transaction sees the NLBs' states.

use async_trait::async_trait;

use super::MemoryClaimStore;
use crate::model::claims::{
    NlbState, PoolMember, PoolRecord, PoolRecords, StoreError, WaitingService,
};

#[async_trait]
impl PoolRecords for MemoryClaimStore {
    async fn pool_record(&self, pool: &str) -> Result<PoolRecord, StoreError> {
        self.round_trip().await;
        Ok(self.lock().pools.get(pool).cloned().unwrap_or_default())
    }

    async fn set_held(&self, pool: &str, reason: Option<&str>) -> Result<(), StoreError> {
        self.round_trip().await;
        self.lock().pools.entry(pool.to_owned()).or_default().held = reason.map(str::to_owned);
        Ok(())
    }

    async fn add_members(
        &self,
        pool: &str,
        seq_read: u64,
        pool_id: &str,
        members: &[PoolMember],
    ) -> Result<bool, StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        let record = st.pools.entry(pool.to_owned()).or_default();
        if record.id.as_deref().is_some_and(|id| id != pool_id) {
            return Ok(false);
        }
        record.id = Some(pool_id.to_owned());
        if record.seq != seq_read
            || members
                .iter()
                .any(|m| record.members.iter().any(|e| e.seq == m.seq))
        {
            return Ok(false);
        }
        record.seq = seq_read + members.len() as u64;
        record.members.extend(members.iter().cloned());
        record.members.sort_by_key(|m| m.seq);
        Ok(true)
    }

    async fn record_member_arn(
        &self,
        pool: &str,
        seq: u64,
        arn: &str,
        _now: i64,
    ) -> Result<bool, StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        let Some(member) = st
            .pools
            .get_mut(pool)
            .and_then(|r| r.members.iter_mut().find(|m| m.seq == seq))
        else {
            return Ok(false);
        };
        match &member.arn {
            Some(a) if a != arn => return Ok(false),
            _ => member.arn = Some(arn.to_owned()),
        }
        st.nlb_states
            .entry(arn.to_owned())
            .or_insert_with(|| NlbState::Provisioning.as_str().to_owned());
        Ok(true)
    }

    async fn set_nlb_state(
        &self,
        nlb_arn: &str,
        from: NlbState,
        to: NlbState,
        when_empty: bool,
        _now: i64,
    ) -> Result<bool, StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        let claimed = st.nlbs.get(nlb_arn).is_some_and(|p| !p.is_empty());
        if st.nlb_states.get(nlb_arn).map(String::as_str) != Some(from.as_str())
            || (when_empty && claimed)
        {
            return Ok(false);
        }
        st.nlb_states
            .insert(nlb_arn.to_owned(), to.as_str().to_owned());
        st.empty_since.remove(nlb_arn);
        Ok(true)
    }

    async fn set_empty_since(&self, nlb_arn: &str, since: Option<i64>) -> Result<(), StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        match since {
            Some(t) => {
                let active = st.nlb_states.get(nlb_arn).map(String::as_str)
                    == Some(NlbState::Active.as_str());
                let claimed = st.nlbs.get(nlb_arn).is_some_and(|p| !p.is_empty());
                if active && !claimed {
                    st.empty_since.entry(nlb_arn.to_owned()).or_insert(t);
                }
            }
            None => {
                st.empty_since.remove(nlb_arn);
            }
        }
        Ok(())
    }

    async fn remove_member(
        &self,
        pool: &str,
        seq: u64,
        arn: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        let matches = st
            .pools
            .get(pool)
            .and_then(|r| r.members.iter().find(|m| m.seq == seq))
            .is_some_and(|m| m.arn.as_deref() == arn);
        if !matches {
            return Ok(false);
        }
        if let Some(a) = arn {
            let claimed = st.nlbs.get(a).is_some_and(|p| !p.is_empty());
            let state = st.nlb_states.get(a).map(String::as_str);
            let removable =
                state.is_none() || (state == Some(NlbState::Draining.as_str()) && !claimed);
            if !removable {
                return Ok(false);
            }
            st.nlb_states.remove(a);
            st.nlbs.remove(a);
            st.empty_since.remove(a);
        }
        if let Some(r) = st.pools.get_mut(pool) {
            r.members.retain(|m| m.seq != seq);
        }
        Ok(true)
    }

    async fn note_waiting(&self, pool: &str, waiting: &WaitingService) -> Result<(), StoreError> {
        self.round_trip().await;
        let mut st = self.lock();
        let record = st.pools.entry(pool.to_owned()).or_default();
        match record.waiting.iter_mut().find(|w| w.uid == waiting.uid) {
            Some(w) => {
                let since = w.since;
                *w = waiting.clone();
                w.since = since;
            }
            None => record.waiting.push(waiting.clone()),
        }
        Ok(())
    }

    async fn clear_waiting(&self, pool: &str, uid: &str) -> Result<(), StoreError> {
        self.round_trip().await;
        if let Some(r) = self.lock().pools.get_mut(pool) {
            r.waiting.retain(|w| w.uid != uid);
        }
        Ok(())
    }
}
