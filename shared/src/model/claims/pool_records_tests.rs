use super::*;

#[test]
fn states_round_trip_and_unknown_ones_are_refused() {
    for s in [NlbState::Provisioning, NlbState::Active, NlbState::Draining] {
        assert_eq!(s.as_str().parse::<NlbState>(), Ok(s));
    }
    assert!("deleted".parse::<NlbState>().is_err());
}
