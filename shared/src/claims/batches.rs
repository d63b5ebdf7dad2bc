//! Releases grouped into DynamoDB transactions of at most [`TRANSACTION_ITEMS`] items.
//!
//! A release deletes two items per claim (the port item and the owner record) and updates the
//! NLB item once per transaction. The claim path keeps a Service's new claims within one
//! transaction ([`MAX_LISTENERS_PER_CLAIM`]), but what one owner holds on one NLB can be more:
//! claims made in several runs (ports added to a Service over time by a version that did not
//! check the limit at the door, up to the NLB's 50 listeners). One transaction of 50 claims is
//! 101 items, which DynamoDB refuses at every retry, and the Service's finalizer would never
//! come off. So a release goes per NLB in batches of at most [`CLAIMS_PER_RELEASE`] claims.
//! Each batch is safe alone: its deletes are conditional on the owner, and deleting what is
//! already gone succeeds, so a release stopped between batches is finished by the next.

use std::collections::BTreeMap;

use super::{Claim, MAX_LISTENERS_PER_CLAIM, TRANSACTION_ITEMS};

/// Claims per release transaction: two items each, and the NLB item.
pub const CLAIMS_PER_RELEASE: usize = MAX_LISTENERS_PER_CLAIM;

const _: () = assert!(2 * CLAIMS_PER_RELEASE < TRANSACTION_ITEMS);

/// The items a release transaction of `claims` claims (on one NLB) writes.
pub fn release_items(claims: usize) -> usize {
    2 * claims + 1
}

/// The release transactions of `claims`, in order: per NLB (by ARN), batches of at most
/// [`CLAIMS_PER_RELEASE`] claims, each within [`TRANSACTION_ITEMS`] items.
pub fn release_batches(claims: &[Claim]) -> Vec<(&str, Vec<&Claim>)> {
    let mut by_nlb: BTreeMap<&str, Vec<&Claim>> = BTreeMap::new();
    for c in claims {
        by_nlb.entry(c.nlb_arn.as_str()).or_default().push(c);
    }
    by_nlb
        .into_iter()
        .flat_map(|(nlb, group)| {
            group
                .chunks(CLAIMS_PER_RELEASE)
                .map(|batch| (nlb, batch.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{ClaimState, Owner};
    use crate::event::ServiceKey;
    use crate::protocol::ListenerProtocol;
    use crate::service_model::ListenerKey;

    fn claim(nlb: &str, port: u16) -> Claim {
        Claim {
            owner: Owner::service(
                ServiceKey {
                    cluster: "prod".into(),
                    namespace: "games".into(),
                    name: "room".into(),
                },
                "u1",
            ),
            key: ListenerKey::new(port, ListenerProtocol::Tcp),
            port_name: format!("p{port}"),
            protocol: ListenerProtocol::Tcp,
            service_port: port,
            pool: "default".into(),
            nlb_arn: nlb.into(),
            port,
            state: ClaimState::Active,
            listener_arn: None,
            target_group_arn: None,
            claimed_at: 0,
            token: String::new(),
            held_at: 0,
            gone_since: None,
            applied: None,
        }
    }

    #[test]
    fn an_nlb_full_of_one_owners_claims_is_released_in_transactions_within_100_items() {
        // GIVEN 50 claims of one Service on NLB a (its 50 listeners) and 3 on NLB b
        let claims: Vec<Claim> = (0..50)
            .map(|i| claim("a", 30000 + i))
            .chain((0..3).map(|i| claim("b", 30000 + i)))
            .collect();

        // WHEN they are grouped for release
        let batches = release_batches(&claims);

        // THEN a's go in two transactions (99 and 3 items), b's in one, every claim once
        let sizes: Vec<(&str, usize)> = batches.iter().map(|(n, b)| (*n, b.len())).collect();
        assert_eq!(sizes, [("a", 49), ("a", 1), ("b", 3)]);
        assert!(
            batches
                .iter()
                .all(|(_, b)| release_items(b.len()) <= TRANSACTION_ITEMS)
        );
        assert_eq!(release_items(50), 101, "one transaction would be refused");
        let released: usize = batches.iter().map(|(_, b)| b.len()).sum();
        assert_eq!(released, claims.len());
        assert!(
            batches
                .iter()
                .all(|(nlb, b)| b.iter().all(|c| c.nlb_arn == *nlb))
        );
    }
}
