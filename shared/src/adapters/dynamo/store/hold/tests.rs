//! Decoding the refusals of the writes on held claims.

use super::*;
use crate::adapters::dynamo::record::owner_item;

fn claim() -> Claim {
    Claim {
        owner: crate::model::claims::Owner {
            key: crate::contract::event::ServiceKey {
                cluster: "c".into(),
                namespace: "n".into(),
                name: "s".into(),
            },
            uid: "u".into(),
            pod: None,
        },
        key: crate::contract::service_model::ListenerKey::new(
            7,
            crate::contract::protocol::ListenerProtocol::Tcp,
        ),
        port_name: "p".into(),
        protocol: crate::contract::protocol::ListenerProtocol::Tcp,
        service_port: 7,
        pool: "default".into(),
        nlb_arn: "arn:nlb".into(),
        port: 30007,
        state: crate::model::claims::ClaimState::Claimed,
        listener_arn: None,
        target_group_arn: None,
        claimed_at: 100,
        token: "other".into(),
        held_at: 100,
        gone_since: None,
        applied: None,
        claim_key: None,
    }
}

fn reason(code: &str, item: Option<Item>) -> CancellationReason {
    CancellationReason::builder()
        .code(code)
        .set_item(item)
        .build()
}

#[test]
fn a_refused_take_over_names_why() {
    let c = claim();
    let held = owner_item(&c);
    // Confirmed at 100, stale before 90: a live holder.
    assert!(matches!(
        decode_take_over(&c, Some(&held), 105, 90),
        TakeOverError::Busy { held_for: 5, ref token, .. } if token == "other"
    ));
    // Confirmed at 100, stale before 110: it changed since it was read.
    assert!(matches!(
        decode_take_over(&c, Some(&held), 130, 110),
        TakeOverError::Changed { .. }
    ));
    assert!(matches!(
        decode_take_over(&c, None, 130, 110),
        TakeOverError::Gone { .. }
    ));
}

#[test]
fn a_refused_write_on_a_held_claim_names_the_new_holder() {
    let c = claim();
    assert_eq!(
        decode_lost(&c, Some(&owner_item(&c))),
        HoldError::TakenOver {
            key: c.key.clone(),
            token: "other".into()
        }
    );
    assert_eq!(
        decode_lost(&c, None),
        HoldError::Gone { key: c.key.clone() }
    );
}

#[test]
fn a_refused_release_names_the_claim_or_the_port() {
    let c = claim();
    let group = [&c];
    let ccf = "ConditionalCheckFailed";
    assert!(matches!(
        decode_release(
            &group,
            &[
                reason("None", None),
                reason(ccf, Some(owner_item(&c))),
                reason("None", None)
            ]
        ),
        ReleaseError::NotHeld { ref token, .. } if token == "other"
    ));
    assert!(matches!(
        decode_release(
            &group,
            &[
                reason(ccf, None),
                reason("None", None),
                reason("None", None)
            ]
        ),
        ReleaseError::PortHeldByOther { port: 30007, .. }
    ));
    assert!(matches!(
        decode_release(
            &group,
            &[
                reason("None", None),
                reason("None", None),
                reason("TransactionConflict", None)
            ]
        ),
        ReleaseError::Store(StoreError {
            retryable: true,
            ..
        })
    ));
}

#[test]
fn a_take_over_retried_after_a_lost_answer_is_taken() {
    // GIVEN a take-over the SDK sent twice: the first applied, the retry met its writes
    let c = claim();
    let mine = RunToken::for_request("me");
    let mut applied = c.clone();
    applied.token = mine.as_str().to_owned();
    let ccf = "ConditionalCheckFailed";
    let retried = [reason(ccf, Some(owner_item(&applied)))];

    // WHEN its cancellation is decoded
    // THEN the claim counts as taken; another holder's refusal still says who
    assert_eq!(
        decode_take_over_cancellation(std::slice::from_ref(&c), &retried, &mine, 105, 90),
        Ok(())
    );
    let theirs = [reason(ccf, Some(owner_item(&c)))];
    assert!(matches!(
        decode_take_over_cancellation(std::slice::from_ref(&c), &theirs, &mine, 105, 90),
        Err(TakeOverError::Busy { .. })
    ));
    assert!(matches!(
        decode_take_over_cancellation(&[c], &[reason("TransactionConflict", None)], &mine, 105, 90),
        Err(TakeOverError::Store(StoreError {
            retryable: true,
            ..
        }))
    ));
}
