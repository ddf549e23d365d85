//! Building `.status`: conditions that keep their transition time, and the phase messages.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use openspace_crds::{OpenSpaceSessionStatus, Phase};

pub const SCHEDULED: &str = "Scheduled";
pub const READY: &str = "Ready";

/// Sets condition `type_`, keeping `lastTransitionTime` when its status does not change.
pub fn set_condition(
    status: &mut OpenSpaceSessionStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &Time,
) {
    set_condition_in(
        &mut status.conditions,
        type_,
        value,
        reason,
        message,
        generation,
        now,
    );
}

/// [`set_condition`] on any resource's conditions (a pool's too).
pub fn set_condition_in(
    conditions: &mut Vec<Condition>,
    type_: &str,
    value: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &Time,
) {
    let value = if value { "True" } else { "False" };
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == value)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: value.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: transition,
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Ends the session in `phase` (Ended or Failed) with `message`: `endedAt` now, no URL, and
/// Ready=False for `reason`.
pub fn end(
    status: &mut OpenSpaceSessionStatus,
    phase: Phase,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    status.phase = Some(phase);
    status.ended_at = Some(now.clone());
    status.message = Some(message.to_owned());
    status.url = None;
    set_condition(status, READY, false, reason, message, generation, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_flips() {
        let mut status = OpenSpaceSessionStatus::default();
        set_condition(&mut status, READY, false, "Starting", "", Some(1), &at(10));
        set_condition(
            &mut status,
            READY,
            false,
            "Starting",
            "still",
            Some(2),
            &at(20),
        );
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].last_transition_time, at(10));
        assert_eq!(status.conditions[0].message, "still");
        set_condition(&mut status, READY, true, "Running", "", Some(2), &at(30));
        assert_eq!(status.conditions[0].last_transition_time, at(30));
        set_condition(
            &mut status,
            SCHEDULED,
            true,
            "Scheduled",
            "",
            Some(2),
            &at(30),
        );
        let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Scheduled"]);
    }
}
