use super::*;
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::ListenerKey;
use crate::model::claims::{ClaimState, Owner};

fn claims(ports: &[u16]) -> Vec<Claim> {
    ports
        .iter()
        .map(|&p| Claim {
            owner: Owner {
                key: ServiceKey {
                    cluster: "c".into(),
                    namespace: "n".into(),
                    name: "s".into(),
                },
                uid: "u".into(),
                pod: None,
            },
            key: ListenerKey::new(p, ListenerProtocol::Tcp),
            port_name: "p".into(),
            protocol: ListenerProtocol::Tcp,
            service_port: p,
            pool: "default".into(),
            nlb_arn: "arn:nlb".into(),
            port: p,
            state: ClaimState::Claimed,
            listener_arn: None,
            target_group_arn: None,
            claimed_at: 0,
            token: "run".into(),
            held_at: 0,
            gone_since: None,
            applied: None,
            claim_key: None,
        })
        .collect()
}

fn reasons(codes: &[&str]) -> Vec<Option<String>> {
    codes.iter().map(|c| Some((*c).to_owned())).collect()
}

#[test]
fn decodes_each_cancellation_reason() {
    let cs = claims(&[1, 2]);
    let ccf = "ConditionalCheckFailed";
    assert_eq!(
        decode_cancellation(&cs, &reasons(&["None", "None", ccf, "None", "None"])),
        ClaimError::PortTaken {
            nlb_arn: "arn:nlb".into(),
            ports: vec![2]
        }
    );
    assert_eq!(
        decode_cancellation(&cs, &reasons(&[ccf, "None", "None", "None", "None"])),
        ClaimError::NlbFull {
            nlb_arn: "arn:nlb".into()
        }
    );
    assert_eq!(
        decode_cancellation(&cs, &reasons(&["None", ccf, "None", "None", ccf])),
        ClaimError::AlreadyClaimed
    );
    let conflict = decode_cancellation(
        &cs,
        &reasons(&["TransactionConflict", "None", "None", "None", "None"]),
    );
    assert!(
        matches!(
            conflict,
            ClaimError::Store(StoreError {
                retryable: true,
                ..
            })
        ),
        "{conflict:?}"
    );
}
