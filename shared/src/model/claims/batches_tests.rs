use super::*;
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::ListenerKey;
use crate::model::claims::{ClaimState, Owner};

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
        claim_key: None,
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
