//! What all API connections of one built-in instance share: the properties its clients set
//! (and a broadcast of which changed, for `subscribe`), and the moment its clock started. Kept
//! per slot by the supervisor and renewed with each new instance (a new picture pipeline).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::broadcast;

use super::topics::{Scene, SimTime, World};
use crate::instances::Supervisor;
use crate::media::input::InputEvent;
use crate::media::pipeline::Pipeline;

/// Property changes buffered per connection before it counts as lagging (it then misses
/// updates, never blocks the writer).
const CHANGE_BUFFER: usize = 64;

/// One instance's shared API state.
pub struct SharedScene {
    scene: Mutex<Scene>,
    changes: broadcast::Sender<&'static str>,
    /// Wall-clock start of the instance's clock.
    started: SystemTime,
}

impl SharedScene {
    fn lock(&self) -> MutexGuard<'_, Scene> {
        self.scene.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a validated write, announces it, and returns the camera input it needs.
    pub fn set(&self, uri: &'static str, value: &Value) -> Option<InputEvent> {
        let input = self.lock().apply(uri, value);
        let _ = self.changes.send(uri);
        input
    }

    /// URIs of properties as they change.
    pub fn changes(&self) -> broadcast::Receiver<&'static str> {
        self.changes.subscribe()
    }

    /// The instance now, as the topics see it.
    pub fn world(&self, supervisor: &Supervisor, id: u32) -> World {
        let view = supervisor.view(id).ok();
        let elapsed = view
            .as_ref()
            .and_then(|v| v.running_for)
            .unwrap_or_default();
        let aspect = view
            .and_then(|v| v.resolution)
            .map_or(16.0 / 9.0, |r| r.width as f32 / r.height.max(1) as f32);
        World {
            scene: self.lock().clone(),
            time: SimTime::builtin(self.started, elapsed),
            aspect,
        }
    }
}

/// A slot's shared state and the picture of the instance it belongs to.
type Slot = (Weak<Pipeline>, Arc<SharedScene>);

/// The shared state of each slot's current instance.
#[derive(Default)]
pub struct Scenes {
    slots: Mutex<HashMap<u32, Slot>>,
}

impl Scenes {
    /// Instance `id`'s state while `pipeline` is its picture; a new pipeline (a new instance)
    /// starts from the defaults.
    pub fn get(
        &self,
        supervisor: &Supervisor,
        id: u32,
        pipeline: &Arc<Pipeline>,
    ) -> Arc<SharedScene> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, shared)) = slots.get(&id) {
            // A held Weak keeps the allocation, so a new pipeline never has the old address.
            if Weak::ptr_eq(owner, &Arc::downgrade(pipeline)) {
                return Arc::clone(shared);
            }
        }
        let elapsed = supervisor
            .view(id)
            .ok()
            .and_then(|v| v.running_for)
            .unwrap_or_default();
        let shared = Arc::new(SharedScene {
            scene: Mutex::new(Scene::default()),
            changes: broadcast::channel(CHANGE_BUFFER).0,
            started: SystemTime::now()
                .checked_sub(elapsed)
                .unwrap_or_else(SystemTime::now),
        });
        slots.insert(id, (Arc::downgrade(pipeline), Arc::clone(&shared)));
        shared
    }
}
