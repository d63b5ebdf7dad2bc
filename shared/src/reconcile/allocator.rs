//! Choosing where a Service's listeners go: which NLB of the pool, which ports.
//!
//! The choice uses a view of each NLB's claimed ports kept in memory between invocations of a
//! warm function, so the happy path reads nothing before its one claim transaction. The view
//! is only a hint: the transaction decides, and a refusal (port taken, NLB full) corrects it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::backoff::random_below;
use crate::model::claims::NlbUsage;
use crate::model::pool::{NlbPool, PlacementPolicy};

/// A view older than this is read again before use.
const VIEW_TTL: Duration = Duration::from_secs(60);

/// Where to put `count` listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The NLB.
    pub nlb_arn: String,
    /// Distinct free ports on it, one per listener.
    pub ports: Vec<u16>,
}

/// One NLB as last seen.
struct NlbSeen {
    /// Ports claimed, or used by a listener of anyone's.
    used: BTreeSet<u16>,
    /// When it was read.
    at: Instant,
    /// AWS refused it a listener for want of room or because it is gone: not chosen until the
    /// view is read again.
    usable: bool,
    /// Its cross-zone setting, as the sweep last listed it (`None`: not listed yet).
    cross_zone: Option<bool>,
}

/// The used ports of each NLB, as last seen.
#[derive(Default)]
pub struct PoolView {
    nlbs: Mutex<HashMap<String, NlbSeen>>,
}

impl PoolView {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, NlbSeen>> {
        self.nlbs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether every NLB of `pool` has a fresh entry.
    pub fn is_fresh(&self, pool: &NlbPool) -> bool {
        let nlbs = self.lock();
        pool.nlb_arns()
            .iter()
            .all(|a| nlbs.get(a).is_some_and(|n| n.at.elapsed() < VIEW_TTL))
    }

    /// Replaces the view with what the store says: an NLB is usable again if its item is
    /// active.
    pub fn update(&self, usage: &[NlbUsage]) {
        let mut nlbs = self.lock();
        for u in usage {
            let mut used = u.ports.clone();
            if let Some(listing) = &u.listing {
                used.extend(&listing.foreign_ports);
            }
            nlbs.insert(
                u.nlb_arn.clone(),
                NlbSeen {
                    used,
                    at: Instant::now(),
                    usable: u.active,
                    cross_zone: u.listing.as_ref().map(|l| l.cross_zone),
                },
            );
        }
    }

    /// Notes ports as used (claimed here, found taken, or used by a listener).
    pub fn add_ports(&self, nlb_arn: &str, ports: &[u16]) {
        let mut nlbs = self.lock();
        let entry = nlbs.entry(nlb_arn.to_owned()).or_insert_with(|| NlbSeen {
            used: BTreeSet::new(),
            at: Instant::now(),
            usable: true,
            cross_zone: None,
        });
        entry.used.extend(ports);
    }

    /// Notes ports as free (released here).
    pub fn remove_ports(&self, nlb_arn: &str, ports: &[u16]) {
        if let Some(seen) = self.lock().get_mut(nlb_arn) {
            for p in ports {
                seen.used.remove(p);
            }
        }
    }

    /// Notes an NLB as taking no listener (AWS said it is full, or gone) until the view is
    /// read again.
    pub fn mark_unusable(&self, nlb_arn: &str) {
        let mut nlbs = self.lock();
        let entry = nlbs.entry(nlb_arn.to_owned()).or_insert_with(|| NlbSeen {
            used: BTreeSet::new(),
            at: Instant::now(),
            usable: false,
            cross_zone: None,
        });
        entry.usable = false;
    }

    /// How many NLBs of `pool` are noted as taking no listener.
    pub fn unusable(&self, pool: &NlbPool) -> usize {
        let nlbs = self.lock();
        pool.nlb_arns()
            .iter()
            .filter(|a| nlbs.get(*a).is_some_and(|n| !n.usable))
            .count()
    }

    /// How many more listeners `pool` takes, as last seen: the room left on each usable NLB
    /// (an NLB not seen yet counts as empty).
    pub fn free(&self, pool: &NlbPool) -> usize {
        let nlbs = self.lock();
        pool.nlb_arns()
            .iter()
            .map(|a| room_on(nlbs.get(a), pool))
            .sum()
    }

    /// Whether every NLB of `arns` is known, from the sweep's listing, to have cross-zone load
    /// balancing `enabled` (so a new target group can follow its NLB).
    pub fn nlbs_cross_zone(&self, arns: &[String], enabled: bool) -> bool {
        let nlbs = self.lock();
        let known = arns
            .iter()
            .filter_map(|a| Some((a.clone(), nlbs.get(a)?.cross_zone?)))
            .collect();
        crate::contract::cross_zone::nlbs_agree(arns, &known, enabled)
    }

    /// Forgets an NLB, so the next choice reads it again.
    pub fn forget(&self, nlb_arn: &str) {
        self.lock().remove(nlb_arn);
    }

    /// Chooses an NLB of `pool` with room for `count` listeners, and free ports on it: `only`
    /// that NLB when given (a Service that names one), else `prefer` if it has room (where a
    /// Service's other listeners are, so they share one address), else as the pool's
    /// placement policy says. `None` when no NLB has room.
    pub fn choose(
        &self,
        pool: &NlbPool,
        count: usize,
        prefer: Option<&str>,
        only: Option<&str>,
    ) -> Option<Placement> {
        let nlbs = self.lock();
        let range = pool.ports();
        let room = |arn: &str| room_on(nlbs.get(arn), pool);
        let fits: Vec<(&String, usize)> = pool
            .nlb_arns()
            .iter()
            .filter(|a| only.is_none_or(|o| a.as_str() == o))
            .map(|a| (a, room(a)))
            .filter(|(_, r)| *r >= count)
            .collect();
        let nlb = match prefer.and_then(|p| fits.iter().find(|(a, _)| a.as_str() == p)) {
            Some((a, _)) => (*a).clone(),
            None => pick_nlb(&fits, pool.placement())?,
        };
        let used = nlbs.get(&nlb).map(|n| n.used.clone()).unwrap_or_default();
        let mut ports = Vec::with_capacity(count);
        // Random probing finds a free port in a few tries while the range is mostly free; the
        // scan from a random start is the bounded fallback for a crowded range.
        const PROBES: u32 = 8;
        let start = random_below(range.len() as usize) as u32;
        for i in 0..PROBES + range.len() {
            if ports.len() == count {
                break;
            }
            let candidate = if i < PROBES {
                range.nth_wrapping(random_below(range.len() as usize) as u32)
            } else {
                range.nth_wrapping(start + (i - PROBES))
            };
            if !used.contains(&candidate)
                && !ports.contains(&candidate)
                && !pool.is_blocked(candidate)
            {
                ports.push(candidate);
            }
        }
        (ports.len() == count).then_some(Placement {
            nlb_arn: nlb,
            ports,
        })
    }
}

/// The NLB among `fits` (each with its room) that `policy` chooses.
fn pick_nlb(fits: &[(&String, usize)], policy: PlacementPolicy) -> Option<String> {
    let chosen = match policy {
        // The fullest first; the pool's order breaks ties, so one NLB fills before the next.
        PlacementPolicy::Pack => fits.iter().min_by_key(|(_, r)| *r)?,
        // The emptiest first; ties at random, so concurrent claims do not all meet on one.
        PlacementPolicy::Spread => {
            let most = fits.iter().map(|(_, r)| *r).max()?;
            let emptiest: Vec<_> = fits.iter().filter(|(_, r)| *r == most).collect();
            emptiest[random_below(emptiest.len())]
        }
        // Weighted by free room: fuller NLBs are chosen less, and concurrent claims spread
        // over the pool instead of all meeting on the emptiest NLB's item.
        PlacementPolicy::Balanced => {
            let total: usize = fits.iter().map(|(_, r)| r).sum();
            if total == 0 {
                return None;
            }
            let mut pick = random_below(total);
            fits.iter().find(|(_, r)| {
                if pick < *r {
                    true
                } else {
                    pick -= r;
                    false
                }
            })?
        }
    };
    Some(chosen.0.clone())
}

/// How many more listeners an NLB of `pool` takes, as `seen` (not seen: empty).
fn room_on(seen: Option<&NlbSeen>, pool: &NlbPool) -> usize {
    let quota = pool.listener_quota() as usize;
    let usable = pool.usable_ports() as usize;
    let Some(seen) = seen else {
        return quota.min(usable);
    };
    if !seen.usable {
        return 0;
    }
    // Every listener counts against the quota; only those on ports the pool hands out take
    // them from its range.
    let taken = seen.used.iter().filter(|p| pool.takes_port(**p)).count();
    let free_ports = usable.saturating_sub(taken);
    quota.saturating_sub(seen.used.len()).min(free_ports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pool::PoolSet;

    fn pool(nlbs: usize, ports: &str, quota: u32) -> NlbPool {
        let arns: Vec<String> = (0..nlbs)
            .map(|i| format!("\"arn:aws:elasticloadbalancing:r:1:loadbalancer/net/n{i}/1\""))
            .collect();
        let json = format!(
            r#"{{"p":{{"nlbArns":[{}],"ports":"{ports}","listenerQuota":{quota}}}}}"#,
            arns.join(",")
        );
        PoolSet::from_json(&json)
            .expect("pool")
            .get("p")
            .expect("p")
            .clone()
    }

    fn pool_with(nlbs: usize, extra: &str) -> NlbPool {
        let arns: Vec<String> = (0..nlbs)
            .map(|i| format!("\"arn:aws:elasticloadbalancing:r:1:loadbalancer/net/n{i}/1\""))
            .collect();
        let json = format!(
            r#"{{"p":{{"nlbArns":[{}],"ports":"100-109","listenerQuota":5,{extra}}}}}"#,
            arns.join(",")
        );
        PoolSet::from_json(&json)
            .expect("pool")
            .get("p")
            .expect("p")
            .clone()
    }

    #[test]
    fn pack_fills_the_fullest_nlb_and_spread_the_emptiest() {
        let view = PoolView::default();
        let pack = pool_with(3, r#""placement":"pack""#);
        let [a, b, c] = [0, 1, 2].map(|i| pack.nlb_arns()[i].clone());
        view.add_ports(&a, &[100]);
        view.add_ports(&b, &[100, 101, 102]);
        for _ in 0..20 {
            assert_eq!(
                view.choose(&pack, 1, None, None).map(|p| p.nlb_arn),
                Some(b.clone())
            );
        }
        view.add_ports(&b, &[103, 104]);
        // b is full (quota 5): the next fullest.
        assert_eq!(
            view.choose(&pack, 1, None, None).map(|p| p.nlb_arn),
            Some(a.clone())
        );
        let spread = pool_with(3, r#""placement":"spread""#);
        for _ in 0..20 {
            assert_eq!(
                view.choose(&spread, 1, None, None).map(|p| p.nlb_arn),
                Some(c.clone())
            );
        }
        // A Service's own NLB first, and one it names only.
        assert_eq!(
            view.choose(&pack, 1, Some(&c), None).map(|p| p.nlb_arn),
            Some(c.clone())
        );
        assert_eq!(
            view.choose(&spread, 1, None, Some(&a)).map(|p| p.nlb_arn),
            Some(a)
        );
        assert!(
            view.choose(&spread, 1, None, Some(&b)).is_none(),
            "b is full"
        );
    }

    #[test]
    fn blocked_ports_are_never_chosen_and_take_no_room() {
        let p = pool_with(1, r#""blockedPorts":["100","102-108"]"#);
        assert_eq!(p.usable_ports(), 2);
        assert_eq!(p.per_nlb(), 2);
        let view = PoolView::default();
        for _ in 0..20 {
            let mut ports = view.choose(&p, 2, None, None).expect("room").ports;
            ports.sort_unstable();
            assert_eq!(ports, vec![101, 109]);
        }
        assert!(view.choose(&p, 3, None, None).is_none());
        view.add_ports(&p.nlb_arns()[0], &[101]);
        assert_eq!(view.free(&p), 1);
    }

    #[test]
    fn chooses_distinct_free_ports_in_range() {
        let p = pool(1, "100-104", 50);
        let view = PoolView::default();
        view.add_ports(&p.nlb_arns()[0], &[100, 101, 102]);
        let placed = view.choose(&p, 2, None, None).expect("room");
        let mut ports = placed.ports.clone();
        ports.sort_unstable();
        assert_eq!(ports, vec![103, 104]);
        assert!(
            view.choose(&p, 3, None, None).is_none(),
            "only two ports are free"
        );
    }

    #[test]
    fn respects_the_quota() {
        let p = pool(2, "1000-1999", 2);
        let view = PoolView::default();
        view.add_ports(&p.nlb_arns()[0], &[1000, 1001]);
        for _ in 0..20 {
            let placed = view.choose(&p, 1, None, None).expect("second NLB has room");
            assert_eq!(placed.nlb_arn, p.nlb_arns()[1]);
        }
        view.add_ports(&p.nlb_arns()[1], &[1000, 1001]);
        assert!(view.choose(&p, 1, None, None).is_none());
    }

    #[test]
    fn prefers_the_services_nlb_and_spreads_otherwise() {
        let p = pool(4, "1000-1999", 50);
        let view = PoolView::default();
        let second = p.nlb_arns()[1].clone();
        assert_eq!(
            view.choose(&p, 1, Some(&second), None).map(|c| c.nlb_arn),
            Some(second)
        );
        let chosen: BTreeSet<String> = (0..200)
            .filter_map(|_| view.choose(&p, 1, None, None))
            .map(|c| c.nlb_arn)
            .collect();
        assert!(chosen.len() > 1, "random choice spreads over the pool");
    }

    #[test]
    fn listeners_outside_the_range_count_against_the_quota_only() {
        let p = pool(1, "100-109", 5);
        let view = PoolView::default();
        view.add_ports(&p.nlb_arns()[0], &[80, 443, 8080]);
        assert_eq!(
            view.choose(&p, 2, None, None).map(|c| c.ports.len()),
            Some(2)
        );
        assert!(
            view.choose(&p, 3, None, None).is_none(),
            "three foreign listeners leave two of five"
        );
    }

    #[test]
    fn an_unusable_nlb_is_not_chosen_until_read_again() {
        let p = pool(2, "100-199", 50);
        let view = PoolView::default();
        let (full, other) = (&p.nlb_arns()[0], &p.nlb_arns()[1]);
        view.mark_unusable(full);
        assert_eq!(view.unusable(&p), 1);
        for _ in 0..20 {
            let placed = view
                .choose(&p, 1, Some(full), None)
                .expect("the other NLB has room");
            assert_eq!(&placed.nlb_arn, other);
        }
        view.update(&[NlbUsage::unclaimed(full)]);
        assert_eq!(view.unusable(&p), 0);
    }

    #[test]
    fn freshness_and_forgetting() {
        let p = pool(1, "1-10", 5);
        let view = PoolView::default();
        assert!(!view.is_fresh(&p));
        view.update(&[NlbUsage {
            ports: BTreeSet::from([1]),
            ..NlbUsage::unclaimed(&p.nlb_arns()[0])
        }]);
        assert!(view.is_fresh(&p));
        view.remove_ports(&p.nlb_arns()[0], &[1]);
        view.forget(&p.nlb_arns()[0]);
        assert!(!view.is_fresh(&p));
    }
}
