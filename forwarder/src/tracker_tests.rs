//! Unit tests of the trackers: re-lists, resyncs, slices and coalescing, without a server.

use super::*;
use k8s_openapi::api::discovery::v1::Endpoint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use nlb_port_pool::contract::annotations::{AUTO_ASSIGN, FINALIZER};
use nlb_port_pool::contract::event::DetailType;

fn svc(ns: &str, name: &str, uid: &str, opted_in: bool) -> Service {
    let annotations = if opted_in {
        [(AUTO_ASSIGN.to_owned(), "true".to_owned())].into()
    } else {
        Default::default()
    };
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid: Some(uid.into()),
            resource_version: Some("1".into()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        ..Service::default()
    }
}

fn names(e: &[Emission]) -> Vec<(DetailType, String)> {
    e.iter()
        .map(|e| (e.detail_type, e.key.name.clone()))
        .collect()
}

fn list(t: &mut ServiceTracker, scope: usize, items: Vec<Service>) -> Vec<Emission> {
    let mut out = t.apply(scope, Event::Init);
    for s in items {
        out.extend(t.apply(scope, Event::InitApply(s)));
    }
    out.extend(t.apply(scope, Event::InitDone));
    out
}

#[test]
fn the_first_list_announces_every_interesting_service_once() {
    let mut t = ServiceTracker::new(1);
    assert!(!t.synced());
    let out = list(
        &mut t,
        0,
        vec![
            svc("a", "one", "1", true),
            svc("a", "plain", "2", false),
            svc("a", "two", "3", true),
        ],
    );
    assert_eq!(
        names(&out),
        vec![
            (DetailType::ServiceChanged, "one".into()),
            (DetailType::ServiceChanged, "two".into())
        ]
    );
    assert!(t.synced());
    assert_eq!(t.len(), 2, "plain Services are not remembered");
}

#[test]
fn a_relist_reports_what_happened_while_the_watch_was_away() {
    let mut t = ServiceTracker::new(1);
    let mut held = svc("a", "held", "1", true);
    held.metadata.finalizers = Some(vec![FINALIZER.into()]);
    let mut gone_while_away = svc("a", "gone", "2", true);
    gone_while_away.metadata.finalizers = Some(vec![FINALIZER.into()]);
    list(
        &mut t,
        0,
        vec![held.clone(), gone_while_away, svc("a", "stays", "3", true)],
    );

    // While away: "gone" vanished, "held" lost its opt-in, "new" appeared.
    let mut unopted = svc("a", "held", "1", false);
    unopted.metadata.finalizers = held.metadata.finalizers.clone();
    let out = list(
        &mut t,
        0,
        vec![
            unopted,
            svc("a", "stays", "3", true),
            svc("a", "new", "4", true),
        ],
    );
    let got = names(&out);
    assert!(
        got.contains(&(DetailType::ServiceDeleted, "gone".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(DetailType::ServiceChanged, "held".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(DetailType::ServiceChanged, "stays".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(DetailType::ServiceChanged, "new".into())),
        "{got:?}"
    );
    assert_eq!(got.len(), 4, "{got:?}");
}

#[test]
fn a_relist_of_one_scope_leaves_the_others_alone() {
    let mut t = ServiceTracker::new(2);
    list(&mut t, 0, vec![svc("a", "one", "1", true)]);
    list(&mut t, 1, vec![svc("b", "two", "2", true)]);
    let out = list(&mut t, 1, vec![svc("b", "two", "2", true)]);
    assert_eq!(
        names(&out),
        vec![(DetailType::ServiceChanged, "two".into())]
    );
    assert_eq!(t.len(), 2);
    assert_eq!(t.resync(None).len(), 2);
    assert_eq!(t.resync(Some(0)).len(), 1);
}

#[test]
fn live_events_follow_the_decisions() {
    let mut t = ServiceTracker::new(1);
    list(&mut t, 0, vec![]);
    let out = t.apply(0, Event::Apply(svc("a", "one", "1", true)));
    assert_eq!(
        names(&out),
        vec![(DetailType::ServiceChanged, "one".into())]
    );
    assert!(
        t.apply(0, Event::Apply(svc("a", "one", "1", true)))
            .is_empty()
    );
    assert!(
        t.apply(0, Event::Apply(svc("a", "plain", "2", false)))
            .is_empty()
    );
    let mut doomed = svc("a", "one", "1", true);
    doomed.metadata.finalizers = Some(vec![FINALIZER.into()]);
    doomed.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let out = t.apply(0, Event::Apply(doomed.clone()));
    assert_eq!(
        names(&out),
        vec![(DetailType::ServiceDeleted, "one".into())]
    );
    doomed.metadata.finalizers = None;
    assert!(
        t.apply(0, Event::Delete(doomed)).is_empty(),
        "already announced"
    );
    assert!(t.is_empty());
    assert!(
        t.apply(0, Event::Delete(svc("a", "plain", "2", false)))
            .is_empty()
    );
}

#[test]
fn endpoints_events_need_a_valid_opt_in() {
    let mut t = ServiceTracker::new(1);
    let mut invalid = svc("a", "bad", "2", false);
    invalid.metadata.annotations = Some([(AUTO_ASSIGN.to_owned(), "yes".to_owned())].into());
    list(&mut t, 0, vec![svc("a", "one", "1", true), invalid]);
    let one = ObjectKey::new("a", "one");
    assert_eq!(
        t.endpoints(&one).map(|e| e.detail_type),
        Some(DetailType::EndpointsChanged)
    );
    assert!(t.opted_in(&one));
    assert!(t.endpoints(&ObjectKey::new("a", "bad")).is_none());
    assert!(t.endpoints(&ObjectKey::new("a", "unknown")).is_none());
}

fn slice(ns: &str, name: &str, service: &str, ip: &str) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some([(decide::SERVICE_NAME_LABEL.to_owned(), service.to_owned())].into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(vec![Endpoint {
            addresses: vec![ip.into()],
            ..Endpoint::default()
        }]),
        ports: None,
    }
}

#[test]
fn slices_report_their_service_on_real_changes_only() {
    let mut t = SliceTracker::new(1);
    t.apply(0, Event::Init);
    assert!(
        t.apply(0, Event::InitApply(slice("a", "s1", "one", "10.0.0.1")))
            .is_empty()
    );
    assert!(t.apply(0, Event::InitDone).is_empty());
    assert!(t.synced());
    let one = ObjectKey::new("a", "one");
    assert!(
        t.apply(0, Event::Apply(slice("a", "s1", "one", "10.0.0.1")))
            .is_empty()
    );
    assert_eq!(
        t.apply(0, Event::Apply(slice("a", "s1", "one", "10.0.0.2"))),
        vec![one.clone()]
    );
    assert_eq!(
        t.apply(0, Event::Apply(slice("a", "s2", "one", "10.0.0.3"))),
        vec![one.clone()]
    );
    assert_eq!(
        t.apply(0, Event::Delete(slice("a", "s2", "one", "10.0.0.3"))),
        vec![one.clone()]
    );

    // A re-list after the watch was away: s1 changed, nothing else.
    t.apply(0, Event::Init);
    let changed = t.apply(0, Event::InitApply(slice("a", "s1", "one", "10.0.0.9")));
    assert_eq!(changed, vec![one.clone()]);
    // ... and then s1 vanished while away.
    t.apply(0, Event::Init);
    assert_eq!(t.apply(0, Event::InitDone), vec![one]);
}

#[test]
fn a_slice_moving_to_another_service_reports_both() {
    let mut t = SliceTracker::new(1);
    t.apply(0, Event::Init);
    t.apply(0, Event::InitDone);
    t.apply(0, Event::Apply(slice("a", "s1", "one", "10.0.0.1")));
    let got = t.apply(0, Event::Apply(slice("a", "s1", "two", "10.0.0.1")));
    assert_eq!(
        got,
        vec![ObjectKey::new("a", "two"), ObjectKey::new("a", "one")]
    );
}

#[test]
fn the_coalescer_sends_one_event_per_service_per_window() {
    let start = Instant::now();
    let window = Duration::from_secs(1);
    let mut c = Coalescer::new(window);
    let (one, two) = (ObjectKey::new("a", "one"), ObjectKey::new("a", "two"));
    c.mark(one.clone(), start);
    c.mark(one.clone(), start + Duration::from_millis(300));
    c.mark(two.clone(), start + Duration::from_millis(500));
    assert_eq!(c.next_deadline(), Some(start + window));
    assert!(c.take_due(start + Duration::from_millis(999)).is_empty());
    assert_eq!(c.take_due(start + window), vec![one.clone()]);
    c.mark(one.clone(), start + window);
    assert_eq!(c.take_due(start + Duration::from_secs(3)), vec![two, one]);
    assert_eq!(c.next_deadline(), None);
}
