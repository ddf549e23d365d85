//! The built-in instance's simulation clock as OpenSpace's `time` topic (`timetopic.cpp`) and
//! `openspace.time.*` functions report it.
//!
//! The built-in renderer animates with `t` = seconds since its instance started
//! (`media/builtin.rs`), turning the planet once per [`PLANET_DAY`] seconds. Read as a
//! simulation, one turn is one day: simulation time runs at `86400 / PLANET_DAY` (960)
//! simulated seconds per second, from the wall-clock moment the instance started, and never
//! pauses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::media::renderer::PLANET_DAY;

/// Simulated seconds per wall-clock second.
pub const RATE: f64 = 86_400.0 / PLANET_DAY;
/// J2000 (2000-01-01T12:00:00 TDB) in UTC Unix seconds, as SPICE counts ephemeris time (the
/// 64.184 s TT-UTC offset of the epoch): `openspace.time.currentTime()` counts from it.
const J2000_UNIX: f64 = 946_727_935.816;

/// A moment of simulation time, with its rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimTime {
    /// Simulation time as UTC Unix seconds.
    pub unix: f64,
    /// Simulated seconds per second (`deltaTime`).
    pub delta_time: f64,
    pub paused: bool,
}

impl SimTime {
    /// The built-in clock `elapsed` after an instance started at `started` (wall clock).
    pub fn builtin(started: SystemTime, elapsed: Duration) -> Self {
        let start = started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            unix: start + elapsed.as_secs_f64() * RATE,
            delta_time: RATE,
            paused: false,
        }
    }

    /// Seconds since J2000 (`openspace.time.currentTime()`).
    pub fn j2000(&self) -> f64 {
        self.unix - J2000_UNIX
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmm`, UTC, as OpenSpace's `Time::ISO8601`.
    pub fn iso8601(&self) -> String {
        let millis = (self.unix * 1000.0).floor() as i64;
        let (secs, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// timetopic.cpp's `sendFullTimeData`.
    pub fn full(&self) -> Value {
        json!({"time": self.iso8601(), "deltaTime": self.delta_time,
               "targetDeltaTime": self.delta_time, "isPaused": self.paused,
               "hasNextStep": false, "hasPrevStep": false})
    }

    /// timetopic.cpp's `sendDeltaTimeSteps`: the built-in instance has no steps to step through.
    pub fn steps() -> Value {
        json!({"deltaTimeSteps": [], "hasNextStep": false, "hasPrevStep": false})
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_dates() {
        let at = |unix: f64| SimTime {
            unix,
            delta_time: 1.0,
            paused: false,
        };
        assert_eq!(at(0.0).iso8601(), "1970-01-01T00:00:00.000");
        assert_eq!(at(951_782_400.5).iso8601(), "2000-02-29T00:00:00.500");
        assert_eq!(at(1_798_761_599.999).iso8601(), "2026-12-31T23:59:59.999");
        assert!((at(J2000_UNIX).j2000()).abs() < 1e-9);
    }

    #[test]
    fn the_builtin_clock_runs_a_day_per_planet_turn() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t0 = SimTime::builtin(start, Duration::ZERO);
        let t1 = SimTime::builtin(start, Duration::from_secs_f64(PLANET_DAY));
        assert_eq!(t1.unix - t0.unix, 86_400.0);
        assert_eq!((t1.delta_time, t1.paused), (960.0, false));
    }
}
