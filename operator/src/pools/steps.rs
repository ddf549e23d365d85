//! What a pool should do next, and which warm instance a session should claim. Pure: the pool
//! controller and the session's scheduling gather what the agents report, these decide.

use crate::agents::SlotState;
use openspace_protocol::SlotStatus;

/// One warm instance as the fleet reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Warm {
    pub server: String,
    pub id: u32,
    pub slot: SlotState,
}

/// What the pool's instances are now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Warm instances the agents report (RUNNING or INITIALIZING; DEINITIALIZING ones are
    /// going and count for nothing).
    pub warm: Vec<Warm>,
    /// Warm STARTs acknowledged but not yet in the agents' pushes.
    pub in_flight: u32,
    /// Instances sessions claimed from the pool that still run.
    pub claimed: u32,
}

impl Seen {
    pub fn ready(&self) -> u32 {
        self.count(SlotStatus::Running)
    }

    /// Initialising, plus STARTs in flight.
    pub fn starting(&self) -> u32 {
        self.count(SlotStatus::Initializing) + self.in_flight
    }

    fn count(&self, status: SlotStatus) -> u32 {
        self.warm.iter().filter(|w| w.slot.status == status).count() as u32
    }
}

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Warm instances to start.
    pub start: u32,
    /// Warm instances to stop (server, id): the pool shrank, or `maxInstances` leaves no room.
    pub stop: Vec<(String, u32)>,
}

/// How many warm instances the pool should have: `warm`, unless `maxInstances` (warm plus
/// claimed) leaves less room.
pub fn target(warm: u32, max_instances: Option<u32>, claimed: u32) -> u32 {
    match max_instances {
        Some(max) => warm.min(max.saturating_sub(claimed)),
        None => warm,
    }
}

/// Starts what is missing; stops the excess, initialising ones first (they serve nobody yet and
/// cannot be claimed), then the newest ready ones (highest id last seen).
pub fn plan(warm: u32, max_instances: Option<u32>, seen: &Seen) -> Plan {
    let want = target(warm, max_instances, seen.claimed);
    let live: Vec<&Warm> = seen
        .warm
        .iter()
        .filter(|w| {
            matches!(
                w.slot.status,
                SlotStatus::Running | SlotStatus::Initializing
            )
        })
        .collect();
    let have = live.len() as u32 + seen.in_flight;
    if have <= want {
        return Plan {
            start: want - have,
            stop: Vec::new(),
        };
    }
    let mut excess = (have - want) as usize;
    // In-flight STARTs cannot be stopped yet; they will be seen (and stopped) next time.
    excess = excess.min(live.len());
    let mut order: Vec<&Warm> = live;
    order.sort_by_key(|w| (w.slot.status == SlotStatus::Running, w.server.clone(), w.id));
    Plan {
        start: 0,
        stop: order
            .into_iter()
            .take(excess)
            .map(|w| (w.server.clone(), w.id))
            .collect(),
    }
}

/// The claimable warm instances in the order a session of `size` should try them: RUNNING
/// ones only, the same size first (no resize needed), then the rest; ties by server and id.
pub fn claim_order(warm: &[Warm], size: (u32, u32)) -> Vec<(String, u32)> {
    let mut ready: Vec<&Warm> = warm
        .iter()
        .filter(|w| w.slot.status == SlotStatus::Running)
        .collect();
    ready.sort_by_key(|w| (w.slot.size != Some(size), w.server.clone(), w.id));
    ready
        .into_iter()
        .map(|w| (w.server.clone(), w.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(server: &str, id: u32, status: SlotStatus, size: (u32, u32)) -> Warm {
        Warm {
            server: server.into(),
            id,
            slot: SlotState {
                status,
                session: None,
                viewers: None,
                reason: None,
                unwatched_since: None,
                running_since: None,
                size: Some(size),
                pool: None,
            },
        }
    }

    const HD: (u32, u32) = (1280, 720);

    #[test]
    fn an_empty_pool_starts_warm_and_a_full_one_nothing() {
        let seen = Seen::default();
        assert_eq!(plan(3, None, &seen).start, 3);
        let seen = Seen {
            warm: vec![
                warm("a", 0, SlotStatus::Running, HD),
                warm("b", 0, SlotStatus::Initializing, HD),
            ],
            in_flight: 1,
            claimed: 7,
        };
        assert_eq!(plan(3, None, &seen), Plan::default());
        assert_eq!((seen.ready(), seen.starting()), (1, 2));
        assert_eq!(plan(5, None, &seen).start, 2, "refills after claims");
    }

    #[test]
    fn max_instances_caps_warm_plus_claimed() {
        assert_eq!(target(5, Some(8), 4), 4);
        assert_eq!(target(5, Some(8), 9), 0);
        assert_eq!(target(5, None, 100), 5);
        let seen = Seen {
            warm: vec![warm("a", 0, SlotStatus::Running, HD)],
            in_flight: 0,
            claimed: 3,
        };
        assert_eq!(plan(5, Some(5), &seen).start, 1);
        assert_eq!(
            plan(5, Some(3), &seen).stop,
            vec![("a".to_string(), 0)],
            "no room left: the warm one goes"
        );
    }

    #[test]
    fn a_shrunk_pool_stops_initialising_ones_first_and_never_deinitialising_ones() {
        let seen = Seen {
            warm: vec![
                warm("a", 0, SlotStatus::Running, HD),
                warm("a", 1, SlotStatus::Initializing, HD),
                warm("b", 0, SlotStatus::Running, HD),
                warm("b", 1, SlotStatus::Deinitializing, HD),
            ],
            in_flight: 0,
            claimed: 0,
        };
        let p = plan(1, None, &seen);
        assert_eq!(
            p.stop,
            vec![("a".to_string(), 1), ("a".to_string(), 0)],
            "{p:?}"
        );
        assert_eq!(plan(0, None, &seen).stop.len(), 3);
        let flying = Seen {
            in_flight: 5,
            ..seen
        };
        assert_eq!(plan(0, None, &flying).stop.len(), 3, "only what exists");
    }

    #[test]
    fn a_session_tries_ready_instances_of_its_size_first() {
        let all = [
            warm("a", 0, SlotStatus::Running, (640, 360)),
            warm("a", 1, SlotStatus::Initializing, HD),
            warm("b", 2, SlotStatus::Running, HD),
            warm("c", 0, SlotStatus::Running, (800, 600)),
        ];
        assert_eq!(
            claim_order(&all, HD),
            vec![
                ("b".to_string(), 2),
                ("a".to_string(), 0),
                ("c".to_string(), 0)
            ]
        );
        assert!(claim_order(&all[1..2], HD).is_empty(), "none ready");
    }
}
