//! A Pending session with `spec.pool`: claim the warm instance that fits best and go Running in
//! one status write, or say why none could be claimed and let the session start cold (it never
//! waits for the pool to refill).

use std::sync::LazyLock;

use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use openspace_crds::{OpenSpaceSession, OpenSpaceSessionStatus, Resolution, Start};
use openspace_protocol::Request;

use super::follow::{session_url, write_running};
use super::status::{set_condition, SCHEDULED};
use super::{now, since, Context, Error, Placed};
use crate::pools::steps::claim_order;
use crate::servers::Server;

/// Warm instances tried per attempt before starting cold.
const TRIES: usize = 4;

/// Test fault injection: `OPENSPACE_OPERATOR_FAULT=exit-after-claim` exits right after an
/// acknowledged CLAIM, before the status write, to prove a restart adopts the claimed instance.
static EXIT_AFTER_CLAIM: LazyLock<bool> = LazyLock::new(|| {
    std::env::var("OPENSPACE_OPERATOR_FAULT").as_deref() == Ok("exit-after-claim")
});

/// What the claim came to.
pub enum Claim {
    /// Running now: the reconcile is done.
    Done(Action),
    /// The session already owns an instance (a claim or START whose status write was lost):
    /// scheduling adopts it. `warm`: it was claimed from a pool.
    Owned { warm: bool },
    /// No warm instance could be claimed; start cold.
    Cold(String),
}

pub async fn run(
    session: &OpenSpaceSession,
    uid: &str,
    pool_name: &str,
    status: &OpenSpaceSessionStatus,
    selector: Option<&Selector>,
    ctx: &Context,
) -> Result<Claim, Error> {
    if let Some((server, id)) = ctx.fleet.slots_of(uid).into_iter().next() {
        let warm = ctx
            .fleet
            .slot(&server, id)
            .is_some_and(|s| s.pool.is_some());
        return Ok(Claim::Owned { warm });
    }
    let namespace = session.namespace().unwrap_or_default();
    let Some(pool) = ctx.pools.get(&namespace, pool_name) else {
        return Ok(Claim::Cold(format!("pool {pool_name} does not exist")));
    };
    if pool.metadata.deletion_timestamp.is_some() {
        return Ok(Claim::Cold(format!("pool {pool_name} is being deleted")));
    }
    if pool.spec.profile != session.spec.profile {
        return Ok(Claim::Cold(format!(
            "pool {pool_name} runs profile {}, the session asks for {}",
            pool.spec.profile, session.spec.profile
        )));
    }
    let Some(pool_uid) = pool.uid() else {
        return Ok(Claim::Cold(format!("pool {pool_name} has no UID yet")));
    };
    let warm = ctx.pools.seen(&pool_uid, &ctx.fleet).warm;
    let want = session.spec.resolution;
    let order = claim_order(&warm, (want.width, want.height));
    let mut tried = 0;
    for (server_name, id) in order {
        if tried == TRIES {
            break;
        }
        let Ok(server) = ctx.directory.reach(&server_name) else {
            continue;
        };
        if selector.is_some_and(|s| !s.matches(&server.labels)) {
            continue;
        }
        let Some(lock) = ctx.pools.lock_slot(&server_name, id) else {
            continue;
        };
        tried += 1;
        let request = Request::Claim {
            id,
            session: uid.to_owned(),
        };
        match ctx.links.call(&server, &request).await {
            Ok(answer) if answer.is_ok() => {
                lock.taken();
                let placed = Placed {
                    server: server.name.clone(),
                    id,
                    token: answer.token.clone(),
                };
                let size = answer.width.zip(answer.height);
                let action = running(
                    session,
                    uid,
                    status.clone(),
                    ctx,
                    &server,
                    placed,
                    size,
                    pool_name,
                )
                .await?;
                return Ok(Claim::Done(action));
            }
            Ok(answer) => tracing::debug!(
                server = %server.name, id, "CLAIM answered {}: {:?}", answer.error, answer.detail
            ),
            Err(e) => tracing::debug!("CLAIM: {e}"),
        }
    }
    Ok(Claim::Cold(format!(
        "no warm instance of pool {pool_name} was ready"
    )))
}

/// Claimed: resize if the session asks for another size (live, no reconnect), then Running
/// with the URL in one status write.
#[allow(clippy::too_many_arguments)]
async fn running(
    session: &OpenSpaceSession,
    uid: &str,
    mut status: OpenSpaceSessionStatus,
    ctx: &Context,
    server: &Server,
    placed: Placed,
    size: Option<(u32, u32)>,
    pool_name: &str,
) -> Result<Action, Error> {
    let id = placed.id;
    ctx.update(uid, |t| {
        t.placed = Some(placed.clone());
        t.server = Some(server.name.clone());
        t.waiting = false;
        t.attempts = 0;
    });
    if *EXIT_AFTER_CLAIM {
        tracing::error!("OPENSPACE_OPERATOR_FAULT: exiting between CLAIM and the status write");
        std::process::exit(86);
    }
    ctx.metrics.pool_claims.inc();
    if let Some(created) = &session.metadata.creation_timestamp {
        ctx.metrics
            .claim_seconds
            .observe(since(created).as_secs_f64());
    }
    let want = session.spec.resolution;
    let mut applied = size.map(|(width, height)| Resolution { width, height });
    if applied != Some(want) {
        let request = Request::Resolution {
            id,
            width: want.width,
            height: want.height,
        };
        match ctx.links.call(server, &request).await {
            Ok(answer) if answer.is_ok() => {
                applied = Some(Resolution {
                    width: answer.width.unwrap_or(want.width),
                    height: answer.height.unwrap_or(want.height),
                });
            }
            Ok(answer) => {
                let note = format!("RESOLUTION after the claim refused: {}", answer.error);
                ctx.event(session, true, "ResizeFailed", note);
            }
            // The session still runs at the pool's size; follow retries nothing, so say so.
            Err(e) => ctx.event(session, true, "ResizeFailed", e.to_string()),
        }
    }
    let url = session_url(ctx, session, server, id, placed.token.as_deref());
    let now = now();
    let generation = session.metadata.generation;
    let message = format!(
        "claimed warm instance {id} of pool {pool_name} on {}",
        server.name
    );
    status.server = Some(server.name.clone());
    status.node = server.node.clone();
    status.instance_id = Some(id);
    status.started_at = Some(now.clone());
    status.message = Some(message.clone());
    status.resolution = applied;
    status.start = Some(Start::Warm);
    status.observed_generation = generation;
    set_condition(
        &mut status,
        SCHEDULED,
        true,
        "Claimed",
        &message,
        generation,
        &now,
    );
    write_running(ctx, session, &mut status, &url, &now).await?;
    ctx.event(
        session,
        false,
        "Claimed",
        format!("{message}; watch at {url}"),
    );
    tracing::info!(session = uid, "{message}");
    Ok(Action::requeue(ctx.config.status_interval))
}
