//! How long rooms wait, as the forwarder sees it: it watches every opted-in Service anyway,
//! so it sees the moment the functions write a Service's address and its `Ready` status.
//! Prometheus histograms of the seconds from a Service's creation to each, and gauges of the
//! Services by status and of the oldest Pending one.
//!
//! Only transitions it sees are timed: a Service listed at start (or after a watch restart)
//! already allocated says nothing about how long it took. Per-pod Services' pods are timed by
//! the functions (`PodAddressSeconds`, `PodReachableSeconds`); the forwarder does not watch
//! pods.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Service;
use kube::runtime::watcher::Event;
use nlb_port_pool::contract::annotations;

use crate::histogram::Histogram;

/// Upper bounds of the room latency buckets, in seconds: an allocation takes seconds, a
/// target's first passed health checks 90 to 300 s in AWS.
pub const ROOM_BUCKETS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1800.0,
];

/// What a status annotation says, as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum State {
    None,
    Pending,
    Error,
    Allocated,
    Ready,
    /// Taken out of its listeners on purpose (`network-disabled`).
    Disabled,
}

impl State {
    const ALL: [State; 6] = [
        State::None,
        State::Pending,
        State::Error,
        State::Allocated,
        State::Ready,
        State::Disabled,
    ];

    fn of(status: Option<&str>) -> Self {
        match status {
            Some("Ready") => Self::Ready,
            Some("Allocated") => Self::Allocated,
            Some("Disabled") => Self::Disabled,
            Some(s) if s.starts_with("Pending") => Self::Pending,
            Some(s) if s.starts_with("Error") => Self::Error,
            _ => Self::None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Error => "error",
            Self::Allocated => "allocated",
            Self::Ready => "ready",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone)]
struct Room {
    state: State,
    has_address: bool,
    /// Since when it has been Pending, as far as the forwarder knows.
    pending_since: Option<i64>,
}

/// The rooms the watches see, and the latencies of their transitions.
#[derive(Debug)]
pub struct RoomClock {
    rooms: Mutex<HashMap<(usize, String), Room>>,
    /// From creation to the address written.
    pub address: Histogram,
    /// From creation to `Ready`.
    pub ready: Histogram,
}

impl Default for RoomClock {
    fn default() -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            address: Histogram::with_bounds(&ROOM_BUCKETS),
            ready: Histogram::with_bounds(&ROOM_BUCKETS),
        }
    }
}

impl RoomClock {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, String), Room>> {
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a Service watch event of watch `scope`, at the current time.
    pub fn observe(&self, scope: usize, event: &Event<Service>) {
        self.observe_at(scope, event, nlb_port_pool::model::claims::now_epoch());
    }

    /// Notes a Service watch event of watch `scope` at `now` (seconds since the epoch).
    pub fn observe_at(&self, scope: usize, event: &Event<Service>, now: i64) {
        let mut rooms = self.lock();
        match event {
            // A relist of this scope: what it had is replaced by what it lists.
            Event::Init => rooms.retain(|(s, _), _| *s != scope),
            Event::InitDone => {}
            Event::Delete(svc) => {
                if let Some(uid) = &svc.metadata.uid {
                    rooms.remove(&(scope, uid.clone()));
                }
            }
            Event::InitApply(svc) => self.apply(&mut rooms, scope, svc, now, false),
            Event::Apply(svc) => self.apply(&mut rooms, scope, svc, now, true),
        }
    }

    fn apply(
        &self,
        rooms: &mut HashMap<(usize, String), Room>,
        scope: usize,
        svc: &Service,
        now: i64,
        live: bool,
    ) {
        let Some(uid) = svc.metadata.uid.clone() else {
            return;
        };
        let notes = svc.metadata.annotations.as_ref();
        let note = |k: &str| notes.and_then(|a| a.get(k)).map(String::as_str);
        if note(annotations::AUTO_ASSIGN) != Some("true")
            || svc.metadata.deletion_timestamp.is_some()
        {
            rooms.remove(&(scope, uid));
            return;
        }
        let created = svc
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, |t| t.0.as_second());
        let state = State::of(note(annotations::STATUS));
        let has_address = note(annotations::ADDRESS).is_some();
        let seconds = std::time::Duration::from_secs(u64::try_from(now - created).unwrap_or(0));
        // Seen before: time what changed since. A Service first seen in a list has an
        // unknown history; one first seen live is new, and its first look is its start.
        if let Some(before) = rooms.get(&(scope, uid.clone())) {
            if live && has_address && !before.has_address {
                self.address.observe(seconds);
            }
            if live && state == State::Ready && before.state != State::Ready {
                self.ready.observe(seconds);
            }
        }
        let pending_since = match (state, rooms.get(&(scope, uid.clone()))) {
            (State::Pending, Some(r)) if r.state == State::Pending => r.pending_since,
            (State::Pending, _) if live => Some(now),
            (State::Pending, _) => Some(created),
            _ => None,
        };
        rooms.insert(
            (scope, uid),
            Room {
                state,
                has_address,
                pending_since,
            },
        );
    }

    /// The Prometheus text of the histograms and gauges, at the current time.
    pub fn render(&self, out: &mut String) {
        self.render_at(out, nlb_port_pool::model::claims::now_epoch());
    }

    /// The Prometheus text at `now`.
    pub fn render_at(&self, out: &mut String, now: i64) {
        self.address.render(
            out,
            "nlb_port_pool_service_address_seconds",
            "Seconds from a Service's creation to its address written (transitions this replica saw).",
        );
        self.ready.render(
            out,
            "nlb_port_pool_service_ready_seconds",
            "Seconds from a Service's creation to status Ready: a healthy target on each listener.",
        );
        let rooms = self.lock();
        out.push_str(
            "# HELP nlb_port_pool_services Opted-in Services by nlb.port-manager/status.\n\
             # TYPE nlb_port_pool_services gauge\n",
        );
        for state in State::ALL {
            let n = rooms.values().filter(|r| r.state == state).count();
            let _ = writeln!(
                out,
                "nlb_port_pool_services{{status=\"{}\"}} {n}",
                state.label()
            );
        }
        let oldest = rooms
            .values()
            .filter_map(|r| r.pending_since)
            .min()
            .map_or(0, |since| (now - since).max(0));
        let _ = write!(
            out,
            "# HELP nlb_port_pool_oldest_pending_seconds How long the longest Pending Service has waited (0: none).\n\
             # TYPE nlb_port_pool_oldest_pending_seconds gauge\n\
             nlb_port_pool_oldest_pending_seconds {oldest}\n"
        );
    }
}

#[cfg(test)]
#[path = "room_clock_tests.rs"]
mod tests;
