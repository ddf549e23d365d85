//! What a visitor's page shows, computed from the sessions this frontend made: nothing yet,
//! waiting (with the place in the queue while no server has room), running, or ended. Pure, so
//! the page's states are tested without a cluster.

use std::sync::Arc;

use openspace_crds::{OpenSpaceSession, Phase};
use serde::Serialize;

use crate::visitor::LABEL;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum View {
    /// No session (or only one being deleted): the page offers "Start".
    None,
    /// Asked for and not running yet. `queue` is the 1-based place among the waiting sessions
    /// while the session is Pending.
    Waiting {
        phase: String,
        message: Option<String>,
        queue: Option<usize>,
    },
    /// The stream can be opened.
    Running,
    /// Ended (timeout, idle) or failed; the page offers "Start" again.
    Ended {
        phase: String,
        message: Option<String>,
    },
}

fn phase(session: &OpenSpaceSession) -> Phase {
    session
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(Phase::Pending)
}

fn deleting(session: &OpenSpaceSession) -> bool {
    session.metadata.deletion_timestamp.is_some()
}

/// Whether the session still holds or waits for a server.
pub fn is_live(session: &OpenSpaceSession) -> bool {
    !deleting(session) && !matches!(phase(session), Phase::Ended | Phase::Failed)
}

pub(crate) fn owner(session: &OpenSpaceSession) -> Option<&str> {
    session
        .metadata
        .labels
        .as_ref()?
        .get(LABEL)
        .map(String::as_str)
}

/// Oldest first (creation time, then name): the order the page reports places in the queue.
/// The operator serves waiting sessions as their retries come up, so this is the order of
/// waiting, not a promise of service order.
fn by_age(a: &&Arc<OpenSpaceSession>, b: &&Arc<OpenSpaceSession>) -> std::cmp::Ordering {
    let key = |s: &OpenSpaceSession| {
        (
            s.metadata.creation_timestamp.as_ref().map(|t| t.0),
            s.metadata.name.clone(),
        )
    };
    key(a).cmp(&key(b))
}

/// The visitor's newest session that is not being deleted.
pub fn visitors_session<'a>(
    sessions: &'a [Arc<OpenSpaceSession>],
    label: &str,
) -> Option<&'a Arc<OpenSpaceSession>> {
    sessions
        .iter()
        .filter(|s| owner(s) == Some(label) && !deleting(s))
        .max_by(by_age)
}

pub fn view(sessions: &[Arc<OpenSpaceSession>], label: &str) -> View {
    let Some(mine) = visitors_session(sessions, label) else {
        return View::None;
    };
    let message = mine.status.as_ref().and_then(|s| s.message.clone());
    match phase(mine) {
        Phase::Running => View::Running,
        p @ (Phase::Ended | Phase::Failed) => View::Ended {
            phase: format!("{p:?}"),
            message,
        },
        p @ Phase::Pending => {
            let mut waiting: Vec<_> = sessions
                .iter()
                .filter(|s| !deleting(s) && phase(s) == Phase::Pending)
                .collect();
            waiting.sort_by(by_age);
            let queue = waiting
                .iter()
                .position(|s| s.metadata.uid == mine.metadata.uid)
                .map(|i| i + 1);
            View::Waiting {
                phase: format!("{p:?}"),
                message,
                queue,
            }
        }
        p => View::Waiting {
            phase: format!("{p:?}"),
            message,
            queue: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use openspace_crds::{OpenSpaceSessionSpec, OpenSpaceSessionStatus};

    fn session(
        name: &str,
        visitor: &str,
        age_s: i64,
        phase: Option<Phase>,
    ) -> Arc<OpenSpaceSession> {
        let spec = OpenSpaceSessionSpec {
            resolution: Default::default(),
            profile: "default".into(),
            server_selector: None,
            max_duration: None,
            idle_timeout: None,
            pool: None,
        };
        let mut s = OpenSpaceSession::new(name, spec);
        s.metadata.uid = Some(format!("uid-{name}"));
        s.metadata.labels = Some([(LABEL.to_owned(), visitor.to_owned())].into());
        let created = k8s_openapi::jiff::Timestamp::from_second(1_000_000 - age_s).unwrap();
        s.metadata.creation_timestamp = Some(Time(created));
        s.status = phase.map(|p| OpenSpaceSessionStatus {
            phase: Some(p),
            message: Some(format!("{p:?} message")),
            ..Default::default()
        });
        Arc::new(s)
    }

    #[test]
    fn each_state_of_the_page() {
        let sessions = vec![
            session("a", "va", 30, Some(Phase::Running)),
            session("b", "vb", 20, Some(Phase::Pending)),
            session("c", "vc", 10, None),
            session("d", "vd", 5, Some(Phase::Starting)),
            session("e", "ve", 5, Some(Phase::Failed)),
        ];
        assert_eq!(view(&sessions, "va"), View::Running);
        assert_eq!(view(&sessions, "nobody"), View::None);
        assert_eq!(
            view(&sessions, "vb"),
            View::Waiting {
                phase: "Pending".into(),
                message: Some("Pending message".into()),
                queue: Some(1)
            }
        );
        // No status yet counts as Pending, behind the older one.
        assert_eq!(
            view(&sessions, "vc"),
            View::Waiting {
                phase: "Pending".into(),
                message: None,
                queue: Some(2)
            }
        );
        assert_eq!(
            view(&sessions, "vd"),
            View::Waiting {
                phase: "Starting".into(),
                message: Some("Starting message".into()),
                queue: None
            }
        );
        assert_eq!(
            view(&sessions, "ve"),
            View::Ended {
                phase: "Failed".into(),
                message: Some("Failed message".into())
            }
        );
        assert_eq!(sessions.iter().filter(|s| is_live(s)).count(), 4);
    }

    #[test]
    fn the_newest_session_counts_and_deleted_ones_do_not() {
        let old = session("old", "v", 100, Some(Phase::Ended));
        let mut gone = (*session("gone", "v", 1, Some(Phase::Running))).clone();
        gone.metadata.deletion_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap(),
        ));
        let new = session("new", "v", 50, Some(Phase::Starting));
        let sessions = vec![old, Arc::new(gone), new];
        assert_eq!(
            visitors_session(&sessions, "v")
                .and_then(|s| s.metadata.name.clone())
                .as_deref(),
            Some("new")
        );
        assert!(!is_live(&sessions[1]));
    }
}
