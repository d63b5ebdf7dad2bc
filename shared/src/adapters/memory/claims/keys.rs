//! Claim keys in memory, with the conditions of the DynamoDB items (see
//! [`crate::model::claims::KeyHold`]).

use super::{MemoryClaimStore, record_id};
use crate::model::claims::{Claim, KeyHold, Owner};

impl MemoryClaimStore {
    pub(super) fn key_hold_now(&self, key: &str) -> Option<KeyHold> {
        self.lock().keys.get(key).cloned()
    }

    pub(super) fn take_key_now(&self, key: &str, owner: &Owner) -> KeyHold {
        self.lock()
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| KeyHold {
                key: key.to_owned(),
                owner: owner.clone(),
                offered_at: None,
            })
            .clone()
    }

    pub(super) fn offer_key_now(&self, key: &str, owner: &Owner, at: Option<i64>) -> bool {
        match self.lock().keys.get_mut(key) {
            Some(hold) if hold.held_by(owner) => {
                hold.offered_at = at;
                true
            }
            _ => false,
        }
    }

    pub(super) fn hand_over_now(&self, hold: &KeyHold, from: &[Claim], to: &[Claim]) -> bool {
        let mut st = self.lock();
        let as_read = st
            .keys
            .get(&hold.key)
            .is_some_and(|h| h.held_by(&hold.owner) && h.offered_at.is_some());
        // Each held as read: no run of the old owner took it up meanwhile.
        let all_there = from.iter().all(|c| {
            st.owners
                .get(&record_id(c))
                .is_some_and(|now| now.token == c.token && now.held_at == c.held_at)
                && st
                    .ports
                    .get(&(c.nlb_arn.clone(), c.port))
                    .is_some_and(|p| p.owner.uid == hold.owner.uid)
        });
        let free = to.iter().all(|c| !st.owners.contains_key(&record_id(c)));
        let Some(taker) = to.first().map(|c| c.owner.clone()) else {
            return false;
        };
        if !as_read || !all_there || !free || from.len() != to.len() {
            return false;
        }
        for c in from {
            st.owners.remove(&record_id(c));
        }
        for c in to {
            st.hold(c);
        }
        st.keys.insert(
            hold.key.clone(),
            KeyHold {
                key: hold.key.clone(),
                owner: taker,
                offered_at: None,
            },
        );
        true
    }

    pub(super) fn drop_key_now(&self, key: &str, owner: &Owner) {
        let mut st = self.lock();
        if st.keys.get(key).is_some_and(|h| h.held_by(owner)) {
            st.keys.remove(key);
        }
    }
}
