//! What the operator knows of the slots of the servers it watches: kept current by WATCH pushes,
//! read by the reconciler instead of asking STATUS. Pure bookkeeping, tested without a server.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use openspace_protocol::{Answer, Owner, SlotStatus};
use tokio::time::Instant;

/// One slot as last reported.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotState {
    pub status: SlotStatus,
    /// The owner given at START (a session, or a pool for a warm instance); agents only.
    pub session: Option<Owner>,
    /// How many viewers watch; agents only.
    pub viewers: Option<u32>,
    /// Why the slot last went IDLE (exit code, start timeout, ...).
    pub reason: Option<String>,
    /// Since when a running instance has had no viewer (for `idleTimeout`).
    pub unwatched_since: Option<Instant>,
    /// Since when the instance has been RUNNING, on this process's clock, from the agent's
    /// `running_ms` (its own monotonic clock) at the moment the answer arrived: `maxDuration`
    /// is measured with it. None from servers that do not report it (the seed's).
    pub running_since: Option<Instant>,
    /// The picture size the instance really has (width, height in pixels), as STATUS reports
    /// it: the agent answers the size applied, not the one asked for.
    pub size: Option<(u32, u32)>,
    /// The pool a claimed instance was warm for (agents with warm pools only).
    pub pool: Option<Owner>,
}

impl SlotState {
    /// The slot an answer (STATUS or a WATCH push) describes; `previous` carries the idle clock.
    pub fn from_answer(
        answer: &Answer,
        previous: Option<&SlotState>,
        now: Instant,
    ) -> Option<Self> {
        let status = answer.status?;
        let session = answer.session.as_deref().map(Owner::parse);
        let same_owner = previous.is_some_and(|p| p.session == session && p.status == status);
        let unwatched_since = match (status, answer.viewers) {
            (SlotStatus::Running, Some(0)) => Some(
                previous
                    .filter(|_| same_owner)
                    .and_then(|p| p.unwatched_since)
                    .unwrap_or(now),
            ),
            _ => None,
        };
        Some(Self {
            status,
            session,
            viewers: answer.viewers,
            reason: answer.reason.clone(),
            unwatched_since,
            running_since: answer
                .running_ms
                .filter(|_| status == SlotStatus::Running)
                .and_then(|ms| now.checked_sub(Duration::from_millis(ms))),
            size: answer.width.zip(answer.height),
            pool: answer.pool.as_deref().map(Owner::parse),
        })
    }

    pub fn is_free(&self) -> bool {
        self.status == SlotStatus::Idle
    }
}

/// What one update changed, for waking the right reconciles.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Owners whose slot changed (the old owner and the new one).
    pub owners: Vec<Owner>,
    /// A slot became free.
    pub freed: bool,
}

/// One watched server.
#[derive(Debug, Default)]
pub struct ServerSlots {
    /// The WATCH snapshot is complete and the connection is up: `slots` is the truth.
    pub live: bool,
    pub unreachable_since: Option<Instant>,
    pub slots: BTreeMap<u32, SlotState>,
}

impl ServerSlots {
    pub fn apply(&mut self, id: u32, answer: &Answer, now: Instant) -> Changes {
        let previous = self.slots.get(&id);
        let Some(next) = SlotState::from_answer(answer, previous, now) else {
            return Changes::default();
        };
        let mut changes = Changes::default();
        if previous == Some(&next) {
            return changes;
        }
        for owner in [
            previous.and_then(|p| p.session.clone()),
            next.session.clone(),
        ]
        .into_iter()
        .flatten()
        {
            if !changes.owners.contains(&owner) {
                changes.owners.push(owner);
            }
        }
        changes.freed = next.is_free() && previous.is_none_or(|p| !p.is_free());
        self.slots.insert(id, next);
        changes
    }
}

/// Every watched server's slots, shared by the watchers (writers) and reconcilers (readers).
#[derive(Default)]
pub struct Fleet {
    servers: Mutex<HashMap<String, ServerSlots>>,
}

impl Fleet {
    pub fn with<R>(&self, server: &str, f: impl FnOnce(&mut ServerSlots) -> R) -> R {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        f(servers.entry(server.to_owned()).or_default())
    }

    /// The slot as last pushed, if the server is watched live.
    pub fn slot(&self, server: &str, id: u32) -> Option<SlotState> {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let slots = servers.get(server).filter(|s| s.live)?;
        slots.slots.get(&id).cloned()
    }

    pub fn is_live(&self, server: &str) -> bool {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers.get(server).is_some_and(|s| s.live)
    }

    /// Notes a failed call; returns since when the server has been unreachable.
    pub fn mark_unreachable(&self, server: &str, now: Instant) -> Instant {
        self.with(server, |s| {
            s.live = false;
            *s.unreachable_since.get_or_insert(now)
        })
    }

    pub fn mark_reachable(&self, server: &str) {
        self.with(server, |s| s.unreachable_since = None);
    }

    /// Every (server, id) slot a session owns, on live servers.
    pub fn slots_of(&self, session: &str) -> Vec<(String, u32)> {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::new();
        for (name, slots) in servers.iter().filter(|(_, s)| s.live) {
            for (id, slot) in &slots.slots {
                let owner = slot.session.as_ref().and_then(Owner::session);
                if owner == Some(session) && !slot.is_free() {
                    found.push((name.clone(), *id));
                }
            }
        }
        found
    }

    /// Every owned, busy slot on live servers: (server, id, owner).
    pub fn owned_slots(&self) -> Vec<(String, u32, Owner)> {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::new();
        for (name, slots) in servers.iter().filter(|(_, s)| s.live) {
            for (id, slot) in &slots.slots {
                if let (Some(session), false) = (&slot.session, slot.is_free()) {
                    found.push((name.clone(), *id, session.clone()));
                }
            }
        }
        found
    }

    /// The warm instances of pool `uid` (busy slots it owns) on live servers: (server, id, slot).
    pub fn pool_slots(&self, uid: &str) -> Vec<(String, u32, SlotState)> {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::new();
        for (name, slots) in servers.iter().filter(|(_, s)| s.live) {
            for (id, slot) in &slots.slots {
                let pool = slot.session.as_ref().and_then(Owner::pool_uid);
                if pool == Some(uid) && !slot.is_free() {
                    found.push((name.clone(), *id, slot.clone()));
                }
            }
        }
        found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        found
    }

    /// How many instances sessions claimed from pool `uid` still run, on live servers.
    pub fn claimed_from(&self, uid: &str) -> u32 {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let from = |slot: &SlotState| {
            let session = slot.session.as_ref().and_then(Owner::session).is_some();
            let pool = slot.pool.as_ref().and_then(Owner::pool_uid);
            session && pool == Some(uid) && !slot.is_free()
        };
        servers
            .values()
            .filter(|s| s.live)
            .map(|s| s.slots.values().filter(|slot| from(slot)).count() as u32)
            .sum()
    }

    /// The owner of slot `id` on `server` as last pushed (also of a slot that went IDLE after
    /// a failure), if the server is watched live.
    pub fn owner(&self, server: &str, id: u32) -> Option<Owner> {
        self.slot(server, id).and_then(|s| s.session)
    }

    pub fn remove(&self, server: &str) {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers.remove(server);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(status: SlotStatus, session: Option<&str>, viewers: Option<u32>) -> Answer {
        Answer {
            status: Some(status),
            session: session.map(str::to_owned),
            viewers,
            ..Answer::ok("STATUS", 0)
        }
    }

    #[test]
    fn owners_old_and_new_are_woken_and_freed_slots_reported() {
        let now = Instant::now();
        let mut server = ServerSlots::default();
        let c = server.apply(0, &push(SlotStatus::Initializing, Some("a"), Some(0)), now);
        assert_eq!(
            c,
            Changes {
                owners: vec![Owner::parse("a")],
                freed: false
            }
        );
        let c = server.apply(0, &push(SlotStatus::Initializing, Some("a"), Some(0)), now);
        assert_eq!(c, Changes::default(), "an unchanged push wakes nobody");
        let c = server.apply(0, &push(SlotStatus::Idle, None, None), now);
        assert_eq!(
            c,
            Changes {
                owners: vec![Owner::parse("a")],
                freed: true
            }
        );
        let c = server.apply(0, &push(SlotStatus::Running, Some("b"), Some(1)), now);
        assert_eq!(c.owners, vec![Owner::parse("b")]);
    }

    #[test]
    fn the_running_time_comes_from_the_agents_clock() {
        let now = Instant::now();
        let mut answer = push(SlotStatus::Running, Some("a"), Some(1));
        answer.running_ms = Some(90_000);
        let slot = SlotState::from_answer(&answer, None, now).unwrap();
        assert_eq!(slot.running_since, Some(now - Duration::from_secs(90)));
        answer.status = Some(SlotStatus::Deinitializing);
        let slot = SlotState::from_answer(&answer, None, now).unwrap();
        assert_eq!(slot.running_since, None, "only a RUNNING instance runs");
        let seed = push(SlotStatus::Running, Some("a"), None);
        assert_eq!(
            SlotState::from_answer(&seed, None, now)
                .unwrap()
                .running_since,
            None
        );
    }

    #[test]
    fn the_idle_clock_starts_when_the_last_viewer_leaves_and_stops_when_one_comes() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(5);
        let t2 = t0 + Duration::from_secs(9);
        let mut server = ServerSlots::default();
        server.apply(1, &push(SlotStatus::Running, Some("a"), Some(0)), t0);
        server.apply(1, &push(SlotStatus::Running, Some("a"), Some(0)), t1);
        assert_eq!(
            server.slots[&1].unwatched_since,
            Some(t0),
            "the clock keeps running"
        );
        server.apply(1, &push(SlotStatus::Running, Some("a"), Some(2)), t1);
        assert_eq!(server.slots[&1].unwatched_since, None);
        server.apply(1, &push(SlotStatus::Running, Some("a"), Some(0)), t2);
        assert_eq!(server.slots[&1].unwatched_since, Some(t2));
        server.apply(
            1,
            &push(SlotStatus::Running, Some("b"), Some(0)),
            t2 + Duration::from_secs(1),
        );
        assert_eq!(
            server.slots[&1].unwatched_since,
            Some(t2 + Duration::from_secs(1)),
            "a new owner starts a new clock"
        );
    }

    const UID: &str = "0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";

    #[test]
    fn the_fleet_answers_only_for_live_servers() {
        let fleet = Fleet::default();
        let now = Instant::now();
        fleet.with("s", |s| {
            s.apply(2, &push(SlotStatus::Running, Some(UID), Some(1)), now);
        });
        assert_eq!(fleet.slot("s", 2), None, "not live yet");
        assert!(fleet.slots_of(UID).is_empty());
        fleet.with("s", |s| s.live = true);
        assert_eq!(
            fleet.slot("s", 2).map(|s| s.status),
            Some(SlotStatus::Running)
        );
        assert_eq!(fleet.slots_of(UID), vec![("s".to_string(), 2)]);
        assert_eq!(
            fleet.owned_slots(),
            vec![("s".to_string(), 2, Owner::Session(UID.into()))]
        );
        let since = fleet.mark_unreachable("s", now);
        assert_eq!(
            fleet.mark_unreachable("s", now + Duration::from_secs(3)),
            since
        );
        assert!(!fleet.is_live("s"));
        fleet.mark_reachable("s");
        let later = now + Duration::from_secs(5);
        assert_eq!(
            fleet.mark_unreachable("s", later),
            later,
            "reachable again: the old clock is gone"
        );
    }
}
