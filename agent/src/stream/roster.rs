//! Who watches which instance, and who controls it: the earliest viewer still connected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

#[derive(Default)]
pub struct Roster {
    viewers: Mutex<HashMap<u32, Vec<u64>>>,
    /// Bumped on every join and leave, so sessions can re-announce their role.
    changes: watch::Sender<u64>,
}

/// A viewer's place on the roster; leaving is dropping it.
pub struct Seat {
    roster: Arc<Roster>,
    pub instance: u32,
    pub viewer: u64,
}

impl Roster {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Vec<u64>>> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn join(self: &Arc<Self>, instance: u32, viewer: u64) -> Seat {
        self.lock().entry(instance).or_default().push(viewer);
        self.changes.send_modify(|n| *n += 1);
        Seat {
            roster: Arc::clone(self),
            instance,
            viewer,
        }
    }

    pub fn is_controller(&self, instance: u32, viewer: u64) -> bool {
        self.lock().get(&instance).and_then(|v| v.first()) == Some(&viewer)
    }

    pub fn count(&self, instance: u32) -> usize {
        self.lock().get(&instance).map_or(0, Vec::len)
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut viewers = self.roster.lock();
        if let Some(list) = viewers.get_mut(&self.instance) {
            list.retain(|v| *v != self.viewer);
            if list.is_empty() {
                viewers.remove(&self.instance);
            }
        }
        drop(viewers);
        self.roster.changes.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_viewer_controls_and_control_passes_on_when_it_leaves() {
        let roster = Arc::new(Roster::default());
        let a = roster.join(0, 1);
        let b = roster.join(0, 2);
        let _c = roster.join(1, 3);
        assert!(
            roster.is_controller(0, 1) && !roster.is_controller(0, 2) && roster.is_controller(1, 3)
        );
        assert_eq!(roster.count(0), 2);
        drop(a);
        assert!(roster.is_controller(0, 2));
        drop(b);
        assert_eq!(roster.count(0), 0);
    }
}
