//! Warm pools: what the operator shares about them ([`Pools`]: the pools' cache, slots being
//! claimed or stopped, warm STARTs in flight), and the `OpenSpacePool` controller ([`control`])
//! that keeps each pool at `warm` ready instances. Sessions claim in `reconcile::claim`;
//! the decisions of both are pure in [`steps`].

pub mod control;
pub mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};
use openspace_crds::OpenSpacePool;
use openspace_protocol::Owner;
use tokio::time::Instant;

use crate::agents::{Fleet, Wake};
use steps::{Seen, Warm};

pub use control::{error_policy, reconcile, FINALIZER};

/// An acknowledged warm START not yet in the agents' pushes is counted this long at most.
const IN_FLIGHT_MEMORY: Duration = Duration::from_secs(10);
/// A slot claimed a moment ago is not offered to others until the agents' push shows its new
/// owner (or this long has passed).
const TAKEN_MEMORY: Duration = Duration::from_secs(5);

/// Shared by the pool controller and the sessions that claim.
pub struct Pools {
    /// The pools, as the pool controller's watch sees them.
    pub store: Store<OpenSpacePool>,
    /// Slots (server, id) being claimed or stopped now (None) or claimed a moment ago (Some).
    busy: Mutex<HashMap<(String, u32), Option<Instant>>>,
    /// Per pool UID: warm STARTs acknowledged.
    in_flight: Mutex<HashMap<String, Vec<InFlight>>>,
    /// Pool UID -> the object, for wakes.
    index: Mutex<HashMap<String, ObjectRef<OpenSpacePool>>>,
}

/// A warm START acknowledged on (server, id) at the instant.
type InFlight = (String, u32, Instant);

/// Holds a slot against other claims and stops while it lives.
pub struct SlotLock<'a> {
    pools: &'a Pools,
    key: (String, u32),
    keep: bool,
}

impl SlotLock<'_> {
    /// The slot was claimed: keep it from others until the push shows its new owner.
    pub fn taken(mut self) {
        self.keep = true;
    }
}

impl Drop for SlotLock<'_> {
    fn drop(&mut self) {
        let mut busy = lock(&self.pools.busy);
        if self.keep {
            busy.insert(self.key.clone(), Some(Instant::now()));
        } else {
            busy.remove(&self.key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pools {
    pub fn new(store: Store<OpenSpacePool>) -> Self {
        Self {
            store,
            busy: Mutex::default(),
            in_flight: Mutex::default(),
            index: Mutex::default(),
        }
    }

    /// The pool `name` in `namespace`, from the cache.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<OpenSpacePool>> {
        self.store
            .get(&ObjectRef::<OpenSpacePool>::new(name).within(namespace))
    }

    /// Takes slot (server, id) for a claim or a stop, unless another holds it.
    pub fn lock_slot(&self, server: &str, id: u32) -> Option<SlotLock<'_>> {
        let key = (server.to_owned(), id);
        let mut busy = lock(&self.busy);
        let now = Instant::now();
        busy.retain(|_, at| at.is_none_or(|t| now.duration_since(t) < TAKEN_MEMORY));
        if busy.contains_key(&key) {
            return None;
        }
        busy.insert(key.clone(), None);
        Some(SlotLock {
            pools: self,
            key,
            keep: false,
        })
    }

    /// Whether (server, id) was claimed a moment ago or is being claimed or stopped.
    pub fn is_busy(&self, server: &str, id: u32) -> bool {
        let now = Instant::now();
        lock(&self.busy)
            .get(&(server.to_owned(), id))
            .is_some_and(|at| at.is_none_or(|t| now.duration_since(t) < TAKEN_MEMORY))
    }

    /// A warm START of pool `uid` was acknowledged on (server, id).
    pub fn started(&self, uid: &str, server: &str, id: u32) {
        lock(&self.in_flight)
            .entry(uid.to_owned())
            .or_default()
            .push((server.to_owned(), id, Instant::now()));
    }

    /// What pool `uid`'s instances are now: the warm ones the fleet reports (minus those just
    /// claimed), the STARTs not yet reported, the claimed ones still running.
    pub fn seen(&self, uid: &str, fleet: &Fleet) -> Seen {
        let warm: Vec<Warm> = fleet
            .pool_slots(uid)
            .into_iter()
            .filter(|(server, id, _)| !self.is_taken(server, *id))
            .map(|(server, id, slot)| Warm { server, id, slot })
            .collect();
        let pool = Owner::pool(uid);
        let now = Instant::now();
        let mut in_flight = lock(&self.in_flight);
        let list = in_flight.entry(uid.to_owned()).or_default();
        // Reported (as the pool's, in any state, or already claimed): no longer in flight.
        list.retain(|(server, id, at)| {
            let owner = fleet.owner(server, *id);
            let reported = owner.as_ref() == Some(&pool)
                || fleet
                    .slot(server, *id)
                    .is_some_and(|s| s.pool.as_ref() == Some(&pool));
            !reported && now.duration_since(*at) < IN_FLIGHT_MEMORY
        });
        Seen {
            warm,
            in_flight: list.len() as u32,
            claimed: fleet.claimed_from(uid),
        }
    }

    fn is_taken(&self, server: &str, id: u32) -> bool {
        let now = Instant::now();
        lock(&self.busy)
            .get(&(server.to_owned(), id))
            .is_some_and(|at| at.is_some_and(|t| now.duration_since(t) < TAKEN_MEMORY))
    }

    pub fn index(&self, uid: &str, pool: ObjectRef<OpenSpacePool>) {
        lock(&self.index).insert(uid.to_owned(), pool);
    }

    pub fn forget(&self, uid: &str) {
        lock(&self.index).remove(uid);
        lock(&self.in_flight).remove(uid);
    }

    /// The pools a wake concerns: the pool whose slot changed; every pool when capacity freed
    /// or a server came or went (its warm instances may need replacing).
    pub fn woken(&self, wake: &Wake) -> Vec<ObjectRef<OpenSpacePool>> {
        let index = lock(&self.index);
        match wake {
            Wake::Pool(uid) => index.get(uid).cloned().into_iter().collect(),
            Wake::Capacity | Wake::Server(_) => index.values().cloned().collect(),
            Wake::Session(_) => Vec::new(),
        }
    }
}
