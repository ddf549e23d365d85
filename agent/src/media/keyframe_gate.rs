//! How often an encoder may be made to start over with a keyframe. A new viewer or a PLI/FIR
//! gets one on the next frame; but each keyframe costs several inter frames' worth of bits, so a
//! flood of requests (many viewers joining, a receiver sending PLI after PLI on a lossy link)
//! would starve the stream of bitrate. Requests that come sooner than the interval after the
//! last forced keyframe wait for it to pass, and are then served by one keyframe.

use std::time::{Duration, Instant};

/// At most one forced keyframe per this long (about 8 frames at 30 fps).
pub const MIN_KEYFRAME_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct KeyframeGate {
    min_interval: Duration,
    last: Option<Instant>,
}

impl KeyframeGate {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last: None,
        }
    }

    /// Whether a pending keyframe request may be served by the frame encoded at `now`; if so,
    /// it counts as served.
    pub fn admit(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.min_interval);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_is_served_at_once_and_a_flood_at_most_once_per_interval() {
        let mut gate = KeyframeGate::new(Duration::from_millis(250));
        let t0 = Instant::now();
        assert!(
            gate.admit(t0),
            "a new viewer gets its keyframe on the next frame"
        );
        let frame = Duration::from_millis(33);
        // A PLI on every frame for a second: served at 0, 264 (8 frames), 528, 792 ms.
        let served: Vec<u32> = (1..=30).filter(|n| gate.admit(t0 + frame * *n)).collect();
        assert_eq!(served, [8, 16, 24]);
    }
}
