//! The reachability work list in memory, with DynamoDB's conditions.

use async_trait::async_trait;

use super::MemoryClaimStore;
use crate::model::claims::StoreError;
use crate::model::claims::checks::{CheckItem, CheckRecords};

#[async_trait]
impl CheckRecords for MemoryClaimStore {
    async fn note_check(&self, item: &CheckItem) -> Result<(), StoreError> {
        let mut st = self.lock();
        let entry = st
            .checks
            .entry(item.uid.clone())
            .or_insert_with(|| item.clone());
        entry.deadline = item.deadline.max(entry.deadline);
        Ok(())
    }

    async fn checks(&self) -> Result<Vec<CheckItem>, StoreError> {
        Ok(self.lock().checks.values().cloned().collect())
    }

    async fn reschedule_check(&self, uid: &str, due: i64) -> Result<(), StoreError> {
        if let Some(c) = self.lock().checks.get_mut(uid) {
            c.due = due;
        }
        Ok(())
    }

    async fn clear_check(&self, uid: &str, seen_deadline: i64) -> Result<(), StoreError> {
        let mut st = self.lock();
        if st
            .checks
            .get(uid)
            .is_some_and(|c| c.deadline <= seen_deadline)
        {
            st.checks.remove(uid);
        }
        Ok(())
    }
}
