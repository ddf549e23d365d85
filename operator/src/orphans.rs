//! Instances whose session is gone (deleted while the operator was down, or a START whose
//! session vanished) or over (Ended, Failed) are stopped, and so are warm instances whose pool
//! is gone (deleted while the operator was down or a server was out of reach). Only slots whose
//! [`Owner`] is a session or a pool are touched: instances started by hand (`openspace-cmd`)
//! are [`Owner::Other`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::Api;
use openspace_crds::{OpenSpacePool, OpenSpaceSession, Phase};
use openspace_protocol::Owner;
use tokio_util::sync::CancellationToken;

use crate::reconcile::{stop_if_ours, Context};

/// A slot must look orphaned in two sweeps in a row, so a session created a moment ago is never
/// mistaken for gone. Sessions are LISTed fresh each sweep (not read from the controller's
/// cache, which may lag): one call per sweep.
pub async fn run(
    sessions: Api<OpenSpaceSession>,
    pools: Api<OpenSpacePool>,
    ctx: Arc<Context>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut suspects: HashSet<(String, u32, Owner)> = HashSet::new();
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
        let sessions: HashMap<String, Known> = listed
            .iter()
            .filter_map(|s| {
                let status = s.status.clone().unwrap_or_default();
                let done = matches!(status.phase, Some(Phase::Ended | Phase::Failed));
                let slot = status.server.zip(status.instance_id);
                Some((s.metadata.uid.clone()?, Known { slot, done }))
            })
            .collect();
        let pools: HashSet<String> = match pools.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.uid)
                .collect(),
            Err(e) => {
                tracing::warn!("orphan sweep: cannot list pools: {e}");
                continue;
            }
        };
        let now_suspect: HashSet<(String, u32, Owner)> = ctx
            .fleet
            .owned_slots()
            .into_iter()
            .filter(|(server, id, owner)| match owner {
                Owner::Session(uid) => is_orphan(&sessions, server, *id, uid),
                Owner::Pool(uid) => !pools.contains(uid),
                Owner::Other(_) => false,
            })
            .collect();
        tracing::debug!(
            sessions = sessions.len(),
            suspects = now_suspect.len(),
            "orphan sweep"
        );
        for (server_name, id, owner) in now_suspect.intersection(&suspects) {
            let Ok(server) = ctx.directory.reach(server_name) else {
                continue;
            };
            // Stopped only if the slot still runs that owner's instance.
            match stop_if_ours(&ctx, &server, *id, owner).await {
                Ok(()) => {
                    ctx.metrics.orphans_stopped.inc();
                    tracing::warn!(server = %server_name, id, %owner,
                        "stopped an instance whose session or pool is gone or over");
                }
                Err(e) => tracing::warn!("stopping orphan: {e}"),
            }
        }
        suspects = now_suspect;
    }
}

/// What the sweep needs of a session.
struct Known {
    slot: Option<(String, u32)>,
    /// Ended or Failed: it should run nowhere.
    done: bool,
}

/// No session has this UID, its session is over, or it runs elsewhere (a duplicate).
fn is_orphan(sessions: &HashMap<String, Known>, server: &str, id: u32, owner: &str) -> bool {
    match sessions.get(owner) {
        None => true,
        Some(o) if o.done => true,
        Some(Known {
            slot: Some((s, i)), ..
        }) => (s.as_str(), *i) != (server, id),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_gone_over_or_elsewhere_make_orphans() {
        let uid = "0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";
        let mut sessions = HashMap::new();
        assert!(is_orphan(&sessions, "a", 0, uid));
        let owner = |slot: Option<(&str, u32)>, done| Known {
            slot: slot.map(|(s, i)| (s.to_string(), i)),
            done,
        };
        sessions.insert(uid.to_string(), owner(None, false));
        assert!(
            !is_orphan(&sessions, "a", 0, uid),
            "pending: may be adopted"
        );
        sessions.insert(uid.to_string(), owner(Some(("a", 0)), false));
        assert!(!is_orphan(&sessions, "a", 0, uid));
        assert!(is_orphan(&sessions, "b", 1, uid), "a duplicate elsewhere");
        sessions.insert(uid.to_string(), owner(Some(("a", 0)), true));
        assert!(
            is_orphan(&sessions, "a", 0, uid),
            "failed or ended: runs nowhere"
        );
    }
}
