//! The slot table: who holds which slot and in what state. Pure data, no processes or clocks, so
//! every transition is unit-tested. The supervisor wraps it in a lock and acts on what it returns.
//!
//! IDLE -> INITIALIZING (START) -> RUNNING (ready) -> DEINITIALIZING (STOP) -> IDLE (process gone).
//! A crash or a failed start goes from INITIALIZING or RUNNING straight to IDLE with a `reason`.
//! Every instance gets a fresh `generation`, so a late event of an old instance cannot touch a
//! slot that was reused since.

use crate::command::protocol::{SlotInfo, SlotStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    pub width: u32,
    pub height: u32,
}

/// What an instance is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The owner: a session, or while `warm` the pool that started it.
    pub session: Option<String>,
    /// Started ahead of demand for a pool; no session owns it until CLAIM.
    pub warm: bool,
    /// After CLAIM: the pool owner the instance was warm for.
    pub pool: Option<String>,
    pub resolution: Resolution,
    pub profile: String,
    /// Viewers of this instance must present it (when the agent enforces tokens).
    pub token: String,
}

/// A read-only copy of one slot, for answers and WATCH pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    pub id: u32,
    pub status: SlotStatus,
    /// The owner of the current instance, or of the last one when it failed.
    pub session: Option<String>,
    pub resolution: Option<Resolution>,
    pub profile: Option<String>,
    /// Why the last instance ended on its own (crash, start timeout, spawn error).
    pub reason: Option<String>,
    /// Connected viewers, for instances the agent streams itself (set by the supervisor).
    pub viewers: Option<u32>,
    /// How long a RUNNING instance has been running (set by the supervisor, which keeps the
    /// clock; the table has none).
    pub running_for: Option<std::time::Duration>,
    /// A warm instance no session has claimed yet.
    pub warm: bool,
    /// The pool owner a claimed instance was warm for.
    pub pool: Option<String>,
}

impl SlotView {
    pub fn info(&self) -> SlotInfo {
        SlotInfo {
            id: self.id,
            status: self.status,
            session: self.session.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    status: SlotStatus,
    generation: u64,
    spec: Option<InstanceSpec>,
    reason: Option<String>,
}

/// Identifies one instance: its slot and the generation it was started as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceKey {
    pub id: u32,
    pub generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A slot was taken; the caller must now run the instance.
    New(InstanceKey),
    /// The session already holds this live slot; nothing new was started.
    Existing(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The slot is now DEINITIALIZING; the caller must end the instance.
    Stopping(InstanceKey),
    /// A stop was already under way.
    AlreadyStopping,
}

/// What CLAIM hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The viewer token now valid for the instance.
    pub token: String,
    /// The session had claimed it already (a retried CLAIM); nothing changed.
    pub again: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("no available slots")]
    NoAvailableSlots,
    #[error("invalid id")]
    InvalidId,
    #[error("not running")]
    NotRunning,
    /// The supervisor refuses new instances while the agent shuts down.
    #[error("shutting down")]
    ShuttingDown,
    /// CLAIM of an instance another session holds.
    #[error("already claimed")]
    AlreadyClaimed,
    /// CLAIM of an instance that is not warm and RUNNING, or by a session with another instance.
    #[error("not claimable")]
    NotClaimable,
}

#[derive(Debug, Clone)]
pub struct SlotTable {
    slots: Vec<Slot>,
}

impl SlotTable {
    pub fn new(capacity: u32) -> Self {
        let idle = Slot {
            status: SlotStatus::Idle,
            generation: 0,
            spec: None,
            reason: None,
        };
        Self {
            slots: vec![idle; capacity as usize],
        }
    }

    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Slots that are not IDLE, as SERVER_STATUS's `running` counts them.
    pub fn busy(&self) -> u32 {
        self.slots
            .iter()
            .filter(|s| s.status != SlotStatus::Idle)
            .count() as u32
    }

    pub fn count(&self, status: SlotStatus) -> usize {
        self.slots.iter().filter(|s| s.status == status).count()
    }

    /// Slots holding warm (unclaimed) instances, as SERVER_STATUS's `warm` counts them.
    pub fn warm(&self) -> u32 {
        self.slots
            .iter()
            .filter(|s| s.status != SlotStatus::Idle && s.spec.as_ref().is_some_and(|sp| sp.warm))
            .count() as u32
    }

    /// Takes the lowest IDLE slot for a new instance, unless the session already holds a live one.
    /// A warm instance always takes a new slot: one pool owns many.
    pub fn start(&mut self, spec: InstanceSpec) -> Result<Started, SlotError> {
        if let Some(session) = spec.session.as_deref().filter(|_| !spec.warm) {
            if let Some(id) = self.live_slot_of(session) {
                return Ok(Started::Existing(id));
            }
        }
        let id = self
            .slots
            .iter()
            .position(|s| s.status == SlotStatus::Idle)
            .ok_or(SlotError::NoAvailableSlots)?;
        let slot = &mut self.slots[id];
        slot.status = SlotStatus::Initializing;
        slot.generation += 1;
        slot.spec = Some(spec);
        slot.reason = None;
        Ok(Started::New(InstanceKey {
            id: id as u32,
            generation: slot.generation,
        }))
    }

    /// The session's live instance; warm instances belong to no session and never count.
    fn live_slot_of(&self, session: &str) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| {
                matches!(s.status, SlotStatus::Initializing | SlotStatus::Running)
                    && s.spec
                        .as_ref()
                        .is_some_and(|sp| !sp.warm && sp.session.as_deref() == Some(session))
            })
            .map(|i| i as u32)
    }

    /// CLAIM: binds warm RUNNING instance `id` to `session` with the viewer token `token`
    /// (the warm one is dropped). A claim by the session that holds it already answers its token.
    pub fn claim(&mut self, id: u32, session: &str, token: String) -> Result<Claimed, SlotError> {
        let holder = self.live_slot_of(session);
        let slot = self
            .slots
            .get_mut(id as usize)
            .ok_or(SlotError::InvalidId)?;
        let live = matches!(slot.status, SlotStatus::Initializing | SlotStatus::Running);
        let Some(spec) = slot.spec.as_mut().filter(|_| live) else {
            return Err(match slot.status {
                SlotStatus::Deinitializing => SlotError::NotClaimable,
                _ => SlotError::NotRunning,
            });
        };
        if !spec.warm {
            return if spec.session.as_deref() == Some(session) {
                Ok(Claimed {
                    token: spec.token.clone(),
                    again: true,
                })
            } else {
                Err(SlotError::AlreadyClaimed)
            };
        }
        if slot.status != SlotStatus::Running || holder.is_some() {
            return Err(SlotError::NotClaimable);
        }
        spec.warm = false;
        spec.pool = spec.session.replace(session.to_owned());
        spec.token = token.clone();
        Ok(Claimed {
            token,
            again: false,
        })
    }

    fn current(&mut self, key: InstanceKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.id as usize)
            .filter(|s| s.generation == key.generation)
    }

    /// The instance became ready. False when it is no longer the slot's current, initialising one.
    pub fn mark_running(&mut self, key: InstanceKey) -> bool {
        match self.current(key) {
            Some(slot) if slot.status == SlotStatus::Initializing => {
                slot.status = SlotStatus::Running;
                true
            }
            _ => false,
        }
    }

    /// STOP: the slot goes DEINITIALIZING until its process is gone.
    pub fn stop(&mut self, id: u32) -> Result<StopOutcome, SlotError> {
        let slot = self
            .slots
            .get_mut(id as usize)
            .ok_or(SlotError::InvalidId)?;
        match slot.status {
            SlotStatus::Idle | SlotStatus::Invalid => Err(SlotError::NotRunning),
            SlotStatus::Deinitializing => Ok(StopOutcome::AlreadyStopping),
            SlotStatus::Initializing | SlotStatus::Running => {
                slot.status = SlotStatus::Deinitializing;
                Ok(StopOutcome::Stopping(InstanceKey {
                    id,
                    generation: slot.generation,
                }))
            }
        }
    }

    /// The instance's process is gone. `reason` is set when it ended on its own (a failure);
    /// the slot then keeps the session and reason for STATUS until it is reused.
    /// False when the key is stale (the slot was reused) or the slot was already IDLE.
    pub fn exited(&mut self, key: InstanceKey, reason: Option<String>) -> bool {
        let Some(slot) = self.current(key) else {
            return false;
        };
        if slot.status == SlotStatus::Idle {
            return false;
        }
        slot.status = SlotStatus::Idle;
        if reason.is_none() {
            slot.spec = None;
        }
        slot.reason = reason;
        true
    }

    /// RESOLUTION: recorded for a live instance.
    pub fn set_resolution(&mut self, id: u32, resolution: Resolution) -> Result<(), SlotError> {
        let slot = self
            .slots
            .get_mut(id as usize)
            .ok_or(SlotError::InvalidId)?;
        match (slot.status, slot.spec.as_mut()) {
            (SlotStatus::Initializing | SlotStatus::Running, Some(spec)) => {
                spec.resolution = resolution;
                Ok(())
            }
            _ => Err(SlotError::NotRunning),
        }
    }

    /// The access token of the slot's live instance.
    pub fn token(&self, id: u32) -> Option<&str> {
        let slot = self.slots.get(id as usize)?;
        match slot.status {
            SlotStatus::Initializing | SlotStatus::Running => {
                slot.spec.as_ref().map(|s| s.token.as_str())
            }
            _ => None,
        }
    }

    pub fn view(&self, id: u32) -> Result<SlotView, SlotError> {
        let slot = self.slots.get(id as usize).ok_or(SlotError::InvalidId)?;
        let spec = slot.spec.as_ref();
        Ok(SlotView {
            id,
            status: slot.status,
            session: spec.and_then(|s| s.session.clone()),
            resolution: spec.map(|s| s.resolution),
            profile: spec.map(|s| s.profile.clone()),
            reason: slot.reason.clone(),
            viewers: None,
            running_for: None,
            warm: spec.is_some_and(|s| s.warm) && slot.status != SlotStatus::Idle,
            pool: spec.and_then(|s| s.pool.clone()),
        })
    }

    pub fn views(&self) -> Vec<SlotView> {
        (0..self.capacity())
            .filter_map(|id| self.view(id).ok())
            .collect()
    }

    /// Live instances, for shutdown: each is moved to DEINITIALIZING and returned.
    pub fn stop_all(&mut self) -> Vec<InstanceKey> {
        (0..self.capacity())
            .filter_map(|id| match self.stop(id) {
                Ok(StopOutcome::Stopping(key)) => Some(key),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(session: Option<&str>) -> InstanceSpec {
        InstanceSpec {
            session: session.map(str::to_owned),
            warm: false,
            pool: None,
            resolution: Resolution {
                width: 1280,
                height: 720,
            },
            profile: "default".into(),
            token: "t".into(),
        }
    }

    fn new_key(started: Result<Started, SlotError>) -> InstanceKey {
        match started {
            Ok(Started::New(key)) => key,
            other => panic!("expected a new instance, got {other:?}"),
        }
    }

    #[test]
    fn start_takes_the_lowest_idle_slot_and_refuses_when_full() {
        let mut t = SlotTable::new(3);
        let a = new_key(t.start(spec(None)));
        let b = new_key(t.start(spec(None)));
        let c = new_key(t.start(spec(None)));
        assert_eq!((a.id, b.id, c.id), (0, 1, 2));
        assert_eq!(t.start(spec(None)), Err(SlotError::NoAvailableSlots));
        assert_eq!(t.busy(), 3);

        assert_eq!(t.stop(1), Ok(StopOutcome::Stopping(b)));
        // DEINITIALIZING still holds the slot until the process is gone.
        assert_eq!(t.start(spec(None)), Err(SlotError::NoAvailableSlots));
        assert!(t.exited(b, None));
        let d = new_key(t.start(spec(None)));
        assert_eq!(d.id, 1);
        assert_ne!(d.generation, b.generation);
    }

    #[test]
    fn the_full_lifecycle_follows_the_seed() {
        let mut t = SlotTable::new(1);
        let k = new_key(t.start(spec(Some("u1"))));
        assert_eq!(t.view(0).unwrap().status, SlotStatus::Initializing);
        assert_eq!(t.token(0), Some("t"));
        assert!(t.mark_running(k));
        assert_eq!(t.view(0).unwrap().status, SlotStatus::Running);
        assert!(!t.mark_running(k), "running twice is not a transition");
        assert_eq!(t.stop(0), Ok(StopOutcome::Stopping(k)));
        assert_eq!(t.view(0).unwrap().status, SlotStatus::Deinitializing);
        assert_eq!(t.stop(0), Ok(StopOutcome::AlreadyStopping));
        assert!(t.exited(k, None));
        let v = t.view(0).unwrap();
        assert_eq!(
            (v.status, v.session, v.reason),
            (SlotStatus::Idle, None, None)
        );
        assert_eq!(t.stop(0), Err(SlotError::NotRunning));
        assert_eq!(t.stop(1), Err(SlotError::InvalidId));
    }

    #[test]
    fn a_crash_frees_the_slot_and_keeps_the_reason_until_reuse() {
        let mut t = SlotTable::new(1);
        let k = new_key(t.start(spec(Some("u1"))));
        assert!(t.mark_running(k));
        assert!(t.exited(k, Some("exited with status 3".into())));
        let v = t.view(0).unwrap();
        assert_eq!(v.status, SlotStatus::Idle);
        assert_eq!(v.session.as_deref(), Some("u1"));
        assert_eq!(v.reason.as_deref(), Some("exited with status 3"));
        let k2 = new_key(t.start(spec(Some("u2"))));
        let v = t.view(0).unwrap();
        assert_eq!((v.session.as_deref(), v.reason), (Some("u2"), None));
        // A late event of the old instance cannot touch the new one.
        assert!(!t.exited(k, Some("late".into())));
        assert!(!t.mark_running(k));
        assert!(t.mark_running(k2));
    }

    #[test]
    fn a_session_holds_at_most_one_live_instance() {
        let mut t = SlotTable::new(3);
        let k = new_key(t.start(spec(Some("u1"))));
        assert_eq!(t.start(spec(Some("u1"))), Ok(Started::Existing(k.id)));
        assert_eq!(t.busy(), 1);
        new_key(t.start(spec(Some("u2"))));
        t.stop(k.id).unwrap();
        // A stopping instance no longer counts: the session may start afresh.
        assert_eq!(new_key(t.start(spec(Some("u1")))).id, 2);
    }

    #[test]
    fn resolution_applies_only_to_live_instances() {
        let mut t = SlotTable::new(2);
        let r = Resolution {
            width: 640,
            height: 480,
        };
        assert_eq!(t.set_resolution(0, r), Err(SlotError::NotRunning));
        assert_eq!(t.set_resolution(9, r), Err(SlotError::InvalidId));
        let k = new_key(t.start(spec(None)));
        assert_eq!(t.set_resolution(0, r), Ok(()));
        assert_eq!(t.view(0).unwrap().resolution, Some(r));
        t.stop(k.id).unwrap();
        assert_eq!(t.set_resolution(0, r), Err(SlotError::NotRunning));
    }

    #[test]
    fn stop_all_moves_every_live_slot_to_deinitializing() {
        let mut t = SlotTable::new(3);
        new_key(t.start(spec(None)));
        let b = new_key(t.start(spec(None)));
        t.stop(b.id).unwrap();
        assert!(t.exited(b, None));
        new_key(t.start(spec(None)));
        new_key(t.start(spec(None)));
        assert_eq!(t.stop_all().len(), 3);
        assert_eq!(t.count(SlotStatus::Deinitializing), 3);
    }

    fn warm(pool: &str) -> InstanceSpec {
        InstanceSpec {
            warm: true,
            ..spec(Some(pool))
        }
    }

    #[test]
    fn warm_instances_are_counted_apart_and_never_handed_to_a_plain_start() {
        let mut t = SlotTable::new(3);
        let a = new_key(t.start(warm("pool:p")));
        let b = new_key(t.start(warm("pool:p")));
        assert_ne!(a.id, b.id, "one pool owns many warm instances");
        assert_eq!((t.busy(), t.warm()), (2, 2));
        // Even a START naming the pool's owner gets a new slot, not a warm one.
        assert_eq!(new_key(t.start(spec(Some("pool:p")))).id, 2);
        assert_eq!(t.start(spec(None)), Err(SlotError::NoAvailableSlots));
        assert!(t.view(a.id).unwrap().warm);
    }

    #[test]
    fn claim_binds_a_running_warm_instance_once_with_a_new_token() {
        let mut t = SlotTable::new(3);
        let a = new_key(t.start(warm("pool:p")));
        assert_eq!(
            t.claim(a.id, "s1", "new".into()),
            Err(SlotError::NotClaimable),
            "still initialising"
        );
        assert!(t.mark_running(a));
        assert_eq!(
            t.claim(a.id, "s1", "new".into()),
            Ok(Claimed {
                token: "new".into(),
                again: false
            })
        );
        let v = t.view(a.id).unwrap();
        assert_eq!(
            (v.session.as_deref(), v.pool.as_deref(), v.warm),
            (Some("s1"), Some("pool:p"), false)
        );
        assert_eq!(t.token(a.id), Some("new"), "the warm token is gone");
        assert_eq!(
            t.claim(a.id, "s1", "other".into()),
            Ok(Claimed {
                token: "new".into(),
                again: true
            }),
            "a retried claim answers the same"
        );
        assert_eq!(
            t.claim(a.id, "s2", "x".into()),
            Err(SlotError::AlreadyClaimed)
        );
        assert_eq!(t.warm(), 0);
        // START by the claiming session finds its instance (the operator's restart path).
        assert_eq!(t.start(spec(Some("s1"))), Ok(Started::Existing(a.id)));
        // A session that holds an instance cannot claim a second one.
        let b = new_key(t.start(warm("pool:p")));
        assert!(t.mark_running(b));
        assert_eq!(
            t.claim(b.id, "s1", "y".into()),
            Err(SlotError::NotClaimable)
        );
        assert_eq!(t.claim(2, "s3", "z".into()), Err(SlotError::NotRunning));
        assert_eq!(t.claim(7, "s3", "z".into()), Err(SlotError::InvalidId));
    }
}
