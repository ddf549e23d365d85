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
#[path = "slots_tests.rs"]
mod tests;
