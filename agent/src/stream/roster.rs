//! Who watches which instance, and who controls it: the earliest viewer still connected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

pub struct Roster {
    viewers: Mutex<HashMap<u32, Vec<u64>>>,
    /// Bumped on every join and leave, so sessions can re-announce their role.
    changes: watch::Sender<u64>,
    /// Told which instance's viewers changed (the supervisor republishes its STATUS).
    on_change: Box<dyn Fn(u32) + Send + Sync>,
}

impl Default for Roster {
    fn default() -> Self {
        Self::new(|_| {})
    }
}

/// A viewer's place on the roster; leaving is dropping it.
pub struct Seat {
    roster: Arc<Roster>,
    pub instance: u32,
    pub viewer: u64,
}

impl Roster {
    pub fn new(on_change: impl Fn(u32) + Send + Sync + 'static) -> Self {
        Self {
            viewers: Mutex::new(HashMap::new()),
            changes: watch::Sender::new(0),
            on_change: Box::new(on_change),
        }
    }

    fn changed(&self, instance: u32) {
        self.changes.send_modify(|n| *n += 1);
        (self.on_change)(instance);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Vec<u64>>> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn join(self: &Arc<Self>, instance: u32, viewer: u64) -> Seat {
        self.lock().entry(instance).or_default().push(viewer);
        self.changed(instance);
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
        self.roster.changed(self.instance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_viewer_controls_and_control_passes_on_when_it_leaves() {
        let told = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&told);
        let roster = Arc::new(Roster::new(move |i| log.lock().unwrap().push(i)));
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
        assert_eq!(
            *told.lock().unwrap(),
            vec![0, 0, 1, 0, 0],
            "every join and leave is told"
        );
    }
}
