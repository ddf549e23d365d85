//! Instances whose session is gone (deleted while the operator was down, or a START whose
//! session vanished) are stopped. Only slots owned by something that looks like a Kubernetes
//! UID are touched: instances started by hand (`openspace-cmd`) have no such owner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::Api;
use openspace_crds::OpenSpaceSession;
use openspace_protocol::Request;
use tokio_util::sync::CancellationToken;

use crate::reconcile::Context;

/// A slot must look orphaned in two sweeps in a row, so a session created a moment ago is never
/// mistaken for gone. Sessions are LISTed fresh each sweep (not read from the controller's
/// cache, which may lag): one call per sweep.
pub async fn run(
    sessions: Api<OpenSpaceSession>,
    ctx: Arc<Context>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut suspects: HashSet<(String, u32, String)> = HashSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let listed = match sessions.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::warn!("orphan sweep: cannot list sessions: {e}");
                continue;
            }
        };
        let sessions: HashMap<String, (Option<String>, Option<u32>)> = listed
            .iter()
            .filter_map(|s| {
                let status = s.status.clone().unwrap_or_default();
                Some((s.metadata.uid.clone()?, (status.server, status.instance_id)))
            })
            .collect();
        let now_suspect: HashSet<(String, u32, String)> = ctx
            .fleet
            .owned_slots()
            .into_iter()
            .filter(|(server, id, owner)| {
                looks_like_uid(owner) && is_orphan(&sessions, server, *id, owner)
            })
            .collect();
        tracing::debug!(
            sessions = sessions.len(),
            suspects = now_suspect.len(),
            "orphan sweep"
        );
        for (server_name, id, owner) in now_suspect.intersection(&suspects) {
            let Some(server) = ctx.directory.get(server_name) else {
                continue;
            };
            match ctx.links.call(&server, &Request::Stop { id: *id }).await {
                Ok(answer) => {
                    ctx.metrics.orphans_stopped.inc();
                    tracing::warn!(server = %server_name, id, session = %owner,
                        "stopped an instance whose session is gone: {}", answer.error);
                }
                Err(e) => tracing::warn!("stopping orphan: {e}"),
            }
        }
        suspects = now_suspect;
    }
}

/// No session has this UID, or the session with it runs elsewhere (a duplicate).
fn is_orphan(
    sessions: &HashMap<String, (Option<String>, Option<u32>)>,
    server: &str,
    id: u32,
    owner: &str,
) -> bool {
    match sessions.get(owner) {
        None => true,
        Some((Some(s), Some(i))) => (s.as_str(), *i) != (server, id),
        Some(_) => false,
    }
}

fn looks_like_uid(owner: &str) -> bool {
    owner.len() == 36
        && owner.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uid_owners_without_a_session_or_with_one_elsewhere_are_orphans() {
        let uid = "0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";
        assert!(looks_like_uid(uid));
        assert!(!looks_like_uid("my-demo"));
        assert!(!looks_like_uid("0b6f3c1e-6a2b-4a55-9f1e-0123456789az"));
        let mut sessions = HashMap::new();
        assert!(is_orphan(&sessions, "a", 0, uid));
        sessions.insert(uid.to_string(), (None, None));
        assert!(
            !is_orphan(&sessions, "a", 0, uid),
            "pending: may be adopted"
        );
        sessions.insert(uid.to_string(), (Some("a".into()), Some(0)));
        assert!(!is_orphan(&sessions, "a", 0, uid));
        assert!(is_orphan(&sessions, "b", 1, uid), "a duplicate elsewhere");
    }
}
