//! What a Starting or Running session should do next, decided from what was observed of its
//! slot. Pure: the reconciler gathers the facts, this decides, the reconciler acts.

use std::time::Duration;

use openspace_crds::{Phase, Resolution};
use openspace_protocol::SlotStatus;
use tokio::time::Instant;

use crate::agents::SlotState;

/// What the operator could learn about the session's slot.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    Slot(SlotState),
    /// The server did not answer (or left the directory) since this instant.
    Unreachable {
        since: Instant,
    },
}

/// Facts besides the slot.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub phase: Phase,
    pub uid: &'a str,
    /// The slot is followed by WATCH, so changes wake the session.
    pub pushed: bool,
    /// How long the session has been Running, from `readyAt` on the wall clock: used only when
    /// the server does not report its instance's running time (a seed server); see
    /// [`SlotState::running_since`].
    pub running_for: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// The spec's generation differs from the one last applied.
    pub resize_to: Option<Resolution>,
    pub server_lost_after: Duration,
    pub poll_interval: Duration,
    pub now: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Look again after this long (or sooner, when a push wakes the session).
    Wait(Duration),
    /// The instance runs: publish the URL.
    Ready,
    Resize(Resolution),
    /// Stop the instance; the session ended on purpose.
    End(String),
    /// The session cannot go on.
    Fail(String),
}

/// How long a pushed session waits without news before looking anyway.
const SAFETY_RECHECK: Duration = Duration::from_secs(300);

pub fn next(facts: &Facts<'_>, observed: &Observed) -> Next {
    let wait = if facts.pushed {
        SAFETY_RECHECK
    } else {
        facts.poll_interval
    };
    let slot = match observed {
        Observed::Unreachable { since } => {
            let down = facts.now.saturating_duration_since(*since);
            return if down >= facts.server_lost_after {
                Next::Fail(format!(
                    "the rendering server has been unreachable for {}s",
                    down.as_secs()
                ))
            } else {
                Next::Wait(facts.server_lost_after - down)
            };
        }
        Observed::Slot(slot) => slot,
    };
    if let Some(owner) = &slot.session {
        if owner.session() != Some(facts.uid) && slot.status != SlotStatus::Idle {
            return Next::Fail("the slot now runs another session's instance".into());
        }
    }
    let gone = |what: &str| {
        let why = slot
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        Next::Fail(format!("the instance {what}{why}"))
    };
    match (facts.phase, slot.status) {
        (Phase::Starting, SlotStatus::Initializing) => Next::Wait(wait),
        (Phase::Starting, SlotStatus::Running) => Next::Ready,
        (Phase::Starting, _) => gone("ended before it was ready"),
        (Phase::Running, SlotStatus::Running) => running(facts, slot, wait),
        (Phase::Running, _) => gone("ended"),
        _ => Next::Wait(wait),
    }
}

fn running(facts: &Facts<'_>, slot: &SlotState, wait: Duration) -> Next {
    if let Some(resolution) = facts.resize_to {
        return Next::Resize(resolution);
    }
    let mut until = wait;
    // The agent's own clock when it reports one; two machines' wall clocks only for seed servers.
    let ran = slot
        .running_since
        .map(|since| facts.now.saturating_duration_since(since))
        .or(facts.running_for);
    if let (Some(limit), Some(ran)) = (facts.max_duration, ran) {
        if ran >= limit {
            return Next::End(format!(
                "maxDuration {} reached",
                humantime::format_duration(limit)
            ));
        }
        until = until.min(limit - ran);
    }
    if let (Some(limit), Some(since)) = (facts.idle_timeout, slot.unwatched_since) {
        let unwatched = facts.now.saturating_duration_since(since);
        if unwatched >= limit {
            return Next::End(format!(
                "nobody watched for {} (idleTimeout)",
                humantime::format_duration(limit)
            ));
        }
        until = until.min(limit - unwatched);
    }
    Next::Wait(until)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";
    const OTHER: &str = "1b6f3c1e-6a2b-4a55-9f1e-0123456789ab";

    fn facts(phase: Phase, now: Instant) -> Facts<'static> {
        Facts {
            phase,
            uid: ME,
            pushed: true,
            running_for: None,
            max_duration: None,
            idle_timeout: None,
            resize_to: None,
            server_lost_after: Duration::from_secs(15),
            poll_interval: Duration::from_secs(5),
            now,
        }
    }

    fn slot(status: SlotStatus, session: Option<&str>) -> Observed {
        Observed::Slot(SlotState {
            status,
            session: session.map(openspace_protocol::Owner::parse),
            viewers: Some(0),
            reason: Some("exit code 3".into()),
            unwatched_since: None,
            running_since: None,
            size: None,
            pool: None,
        })
    }

    #[test]
    fn starting_waits_then_becomes_ready_or_fails_with_the_reason() {
        let now = Instant::now();
        let f = facts(Phase::Starting, now);
        assert_eq!(
            next(&f, &slot(SlotStatus::Initializing, Some(ME))),
            Next::Wait(SAFETY_RECHECK)
        );
        let polled = Facts {
            pushed: false,
            ..f.clone()
        };
        assert_eq!(
            next(&polled, &slot(SlotStatus::Initializing, None)),
            Next::Wait(Duration::from_secs(5))
        );
        assert_eq!(next(&f, &slot(SlotStatus::Running, Some(ME))), Next::Ready);
        assert_eq!(
            next(&f, &slot(SlotStatus::Idle, None)),
            Next::Fail("the instance ended before it was ready: exit code 3".into())
        );
        assert!(matches!(
            next(&f, &slot(SlotStatus::Running, Some(OTHER))),
            Next::Fail(_)
        ));
    }

    #[test]
    fn an_unreachable_server_fails_the_session_only_after_the_grace() {
        let t0 = Instant::now();
        let f = facts(Phase::Running, t0 + Duration::from_secs(5));
        assert_eq!(
            next(&f, &Observed::Unreachable { since: t0 }),
            Next::Wait(Duration::from_secs(10))
        );
        let later = facts(Phase::Running, t0 + Duration::from_secs(15));
        assert!(
            matches!(next(&later, &Observed::Unreachable { since: t0 }), Next::Fail(m) if m.contains("unreachable"))
        );
    }

    #[test]
    fn running_resizes_ends_on_time_and_wakes_at_the_next_deadline() {
        let now = Instant::now();
        let running = slot(SlotStatus::Running, Some(ME));
        let resize = Facts {
            resize_to: Some(Resolution {
                width: 640,
                height: 360,
            }),
            ..facts(Phase::Running, now)
        };
        assert_eq!(
            next(&resize, &running),
            Next::Resize(Resolution {
                width: 640,
                height: 360
            })
        );
        let timed = Facts {
            max_duration: Some(Duration::from_secs(60)),
            running_for: Some(Duration::from_secs(45)),
            ..facts(Phase::Running, now)
        };
        assert_eq!(next(&timed, &running), Next::Wait(Duration::from_secs(15)));
        let over = Facts {
            running_for: Some(Duration::from_secs(60)),
            ..timed.clone()
        };
        assert_eq!(
            next(&over, &running),
            Next::End("maxDuration 1m reached".into())
        );
        // The agent's running time wins over readyAt's: a leader whose wall clock runs an hour
        // ahead of the one that wrote readyAt neither ends the session early nor late.
        let Observed::Slot(mut reported) = running.clone() else {
            unreachable!()
        };
        reported.running_since = Some(now - Duration::from_secs(10));
        let skewed = Facts {
            running_for: Some(Duration::from_secs(3600)),
            ..timed.clone()
        };
        assert_eq!(
            next(&skewed, &Observed::Slot(reported.clone())),
            Next::Wait(Duration::from_secs(50))
        );
        reported.running_since = Some(now - Duration::from_secs(61));
        let behind = Facts {
            running_for: Some(Duration::ZERO),
            ..timed
        };
        assert_eq!(
            next(&behind, &Observed::Slot(reported)),
            Next::End("maxDuration 1m reached".into())
        );
        assert_eq!(
            next(&facts(Phase::Running, now), &slot(SlotStatus::Idle, None)),
            Next::Fail("the instance ended: exit code 3".into())
        );
    }

    #[test]
    fn idle_timeout_counts_from_the_last_viewer() {
        let t0 = Instant::now();
        let f = Facts {
            idle_timeout: Some(Duration::from_secs(10)),
            ..facts(Phase::Running, t0 + Duration::from_secs(4))
        };
        let watched = slot(SlotStatus::Running, Some(ME));
        assert_eq!(
            next(&f, &watched),
            Next::Wait(SAFETY_RECHECK),
            "viewers: no clock"
        );
        let Observed::Slot(mut s) = watched else {
            unreachable!()
        };
        s.unwatched_since = Some(t0);
        assert_eq!(
            next(&f, &Observed::Slot(s.clone())),
            Next::Wait(Duration::from_secs(6))
        );
        let late = Facts {
            now: t0 + Duration::from_secs(10),
            ..f
        };
        assert!(
            matches!(next(&late, &Observed::Slot(s)), Next::End(m) if m.contains("idleTimeout"))
        );
    }
}
