use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;

const T0: i64 = 1_800_000_000;

fn svc(uid: &str, created: i64, notes: &[(&str, &str)]) -> Service {
    let mut annotations: BTreeMap<String, String> =
        BTreeMap::from([(annotations::AUTO_ASSIGN.to_owned(), "true".to_owned())]);
    annotations.extend(
        notes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Service {
        metadata: ObjectMeta {
            name: Some(format!("room-{uid}")),
            namespace: Some("games".into()),
            uid: Some(uid.into()),
            creation_timestamp: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(created).expect("a time"),
            )),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        ..Service::default()
    }
}

fn text(clock: &RoomClock, now: i64) -> String {
    let mut out = String::new();
    clock.render_at(&mut out, now);
    out
}

fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn times_the_address_and_ready_transitions_it_sees() {
    let clock = RoomClock::default();
    let address = [(annotations::ADDRESS, "nlb:30000")];
    // A new room, then its address 3 s after creation, then Ready 95 s after creation.
    clock.observe_at(0, &Event::Apply(svc("a", T0, &[])), T0);
    clock.observe_at(
        0,
        &Event::Apply(svc(
            "a",
            T0,
            &[address[0], (annotations::STATUS, "Allocated")],
        )),
        T0 + 3,
    );
    clock.observe_at(
        0,
        &Event::Apply(svc("a", T0, &[address[0], (annotations::STATUS, "Ready")])),
        T0 + 95,
    );
    // The same state again times nothing more.
    clock.observe_at(
        0,
        &Event::Apply(svc("a", T0, &[address[0], (annotations::STATUS, "Ready")])),
        T0 + 500,
    );
    // A room listed already allocated: its history is unknown, nothing timed.
    clock.observe_at(
        0,
        &Event::InitApply(svc(
            "b",
            T0 - 900,
            &[address[0], (annotations::STATUS, "Ready")],
        )),
        T0,
    );
    let out = text(&clock, T0 + 600);
    assert_eq!(
        line(&out, "nlb_port_pool_service_address_seconds_count"),
        "nlb_port_pool_service_address_seconds_count 1"
    );
    assert_eq!(
        line(
            &out,
            "nlb_port_pool_service_address_seconds_bucket{le=\"2\"}"
        ),
        "nlb_port_pool_service_address_seconds_bucket{le=\"2\"} 0"
    );
    assert_eq!(
        line(
            &out,
            "nlb_port_pool_service_address_seconds_bucket{le=\"5\"}"
        ),
        "nlb_port_pool_service_address_seconds_bucket{le=\"5\"} 1"
    );
    assert_eq!(
        line(&out, "nlb_port_pool_service_ready_seconds_count"),
        "nlb_port_pool_service_ready_seconds_count 1"
    );
    assert_eq!(
        line(
            &out,
            "nlb_port_pool_service_ready_seconds_bucket{le=\"60\"}"
        ),
        "nlb_port_pool_service_ready_seconds_bucket{le=\"60\"} 0"
    );
    assert_eq!(
        line(
            &out,
            "nlb_port_pool_service_ready_seconds_bucket{le=\"120\"}"
        ),
        "nlb_port_pool_service_ready_seconds_bucket{le=\"120\"} 1"
    );
    assert_eq!(
        line(&out, "nlb_port_pool_services{status=\"ready\"}"),
        "nlb_port_pool_services{status=\"ready\"} 2"
    );
}

#[test]
fn counts_rooms_by_status_and_ages_the_oldest_pending() {
    let clock = RoomClock::default();
    let pending = [(
        annotations::STATUS,
        "Pending: pool default has no NLB with room",
    )];
    // Listed Pending: waiting since its creation as far as anyone knows.
    clock.observe_at(1, &Event::InitApply(svc("old", T0 - 300, &pending)), T0);
    // Becomes Pending while watched, at T0 + 10; stays so.
    clock.observe_at(1, &Event::Apply(svc("new", T0, &[])), T0);
    clock.observe_at(1, &Event::Apply(svc("new", T0, &pending)), T0 + 10);
    clock.observe_at(1, &Event::Apply(svc("new", T0, &pending)), T0 + 50);
    clock.observe_at(
        1,
        &Event::Apply(svc("bad", T0, &[(annotations::STATUS, "Error: x")])),
        T0,
    );
    let out = text(&clock, T0 + 100);
    assert_eq!(
        line(&out, "nlb_port_pool_services{status=\"pending\"}"),
        "nlb_port_pool_services{status=\"pending\"} 2"
    );
    assert_eq!(
        line(&out, "nlb_port_pool_services{status=\"error\"}"),
        "nlb_port_pool_services{status=\"error\"} 1"
    );
    clock.observe_at(
        1,
        &Event::Apply(svc("drained", T0, &[(annotations::STATUS, "Disabled")])),
        T0,
    );
    assert_eq!(
        line(
            &text(&clock, T0 + 100),
            "nlb_port_pool_services{status=\"disabled\"}"
        ),
        "nlb_port_pool_services{status=\"disabled\"} 1"
    );
    assert_eq!(
        line(&out, "nlb_port_pool_oldest_pending_seconds "),
        "nlb_port_pool_oldest_pending_seconds 400"
    );

    // The old one goes; the other has waited 90 s (since T0 + 10, not since T0 + 50).
    clock.observe_at(1, &Event::Delete(svc("old", T0 - 300, &pending)), T0 + 100);
    let out = text(&clock, T0 + 100);
    assert_eq!(
        line(&out, "nlb_port_pool_oldest_pending_seconds "),
        "nlb_port_pool_oldest_pending_seconds 90"
    );

    // A relist of scope 1 starts it afresh; another scope's rooms stay.
    clock.observe_at(2, &Event::Apply(svc("elsewhere", T0, &pending)), T0 + 20);
    clock.observe_at(1, &Event::Init, T0 + 100);
    let out = text(&clock, T0 + 100);
    assert_eq!(
        line(&out, "nlb_port_pool_services{status=\"pending\"}"),
        "nlb_port_pool_services{status=\"pending\"} 1"
    );
    assert_eq!(
        line(&out, "nlb_port_pool_services{status=\"error\"}"),
        "nlb_port_pool_services{status=\"error\"} 0"
    );

    // Opting out or deletion removes a room.
    clock.observe_at(
        2,
        &Event::Apply(Service {
            metadata: ObjectMeta {
                annotations: None,
                ..svc("elsewhere", T0, &[]).metadata
            },
            ..Service::default()
        }),
        T0 + 100,
    );
    let out = text(&clock, T0 + 100);
    assert_eq!(
        line(&out, "nlb_port_pool_oldest_pending_seconds "),
        "nlb_port_pool_oldest_pending_seconds 0"
    );
}
