//! A Pending session: find a server, START with the session's UID, record where it landed.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

use kube::core::Selector;
use kube::runtime::controller::Action;
use openspace_crds::{OpenSpaceSession, OpenSpaceSessionStatus, Phase, Start};
use openspace_protocol::command::errors;
use openspace_protocol::{Request, StartRequest};

use super::claim::{self, Claim};
use super::status::{set_condition, READY, SCHEDULED};
use super::{fail, now, since, Context, Error, Placed, Tracked};
use crate::scheduler::Decision;
use crate::servers::Server;

/// START refusals ("no available slots" after a race) retried at once with a new round.
const ATTEMPTS: usize = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Test fault injection: `OPENSPACE_OPERATOR_FAULT=exit-after-start` makes the process exit right
/// after an acknowledged START, before the status write, to prove restarts lose nothing.
const FAULT_ENV: &str = "OPENSPACE_OPERATOR_FAULT";
/// Whether [`FAULT_ENV`] asks for that exit (read once).
static EXIT_AFTER_START: LazyLock<bool> =
    LazyLock::new(|| std::env::var(FAULT_ENV).as_deref() == Ok("exit-after-start"));

pub async fn run(
    session: &OpenSpaceSession,
    uid: &str,
    status: OpenSpaceSessionStatus,
    tracked: Tracked,
    ctx: &Context,
) -> Result<Action, Error> {
    if let Err(e) = session
        .spec
        .max_duration()
        .and_then(|_| session.spec.idle_timeout())
    {
        return fail(session, status, ctx, "InvalidSpec", e.to_string()).await;
    }
    let selector = match session.spec.server_selector.clone().map(Selector::try_from) {
        None => None,
        Some(Ok(selector)) => Some(selector),
        Some(Err(e)) => {
            let message = format!("spec.serverSelector: {e}");
            return fail(session, status, ctx, "InvalidSpec", message).await;
        }
    };
    if let Some(placed) = tracked.placed {
        // START was acknowledged but the status write did not land (or is not visible yet).
        if let Ok(server) = ctx.directory.reach(&placed.server) {
            return starting(session, status, ctx, &server, placed, "started").await;
        }
        // Its server left the directory: wait for it a while rather than start a second
        // instance elsewhere (if it comes back later, the orphan sweep stops the first).
        let since = ctx.fleet.mark_unreachable(&placed.server, Instant::now());
        if since.elapsed() < ctx.config.server_lost_after {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        ctx.update(uid, |t| t.placed = None);
    }
    let mut status = status;
    // Why a session with a pool starts cold; said (Event, metric, status) only once it does.
    let mut cold = None;
    if let Some(pool) = session.spec.pool.as_deref() {
        match claim::run(session, uid, pool, &status, selector.as_ref(), ctx).await? {
            Claim::Done(action) => return Ok(action),
            // Scheduling adopts it below.
            Claim::Owned { warm } => {
                if warm {
                    status.start = Some(Start::Warm);
                }
            }
            Claim::Cold(why) => cold = Some(why),
        }
    }
    // Waiting from now on, so a slot freed during this round wakes the session.
    ctx.update(uid, |t| t.waiting = true);
    for _ in 0..ATTEMPTS {
        match ctx.scheduler.ask(uid, selector.clone()).await {
            Decision::Adopt { server, id } => {
                if session.spec.pool.is_some() {
                    // A claim whose status write was lost (the WATCH cache was not live yet to
                    // say so): the agent says whether the instance was a pool's.
                    status.start = Some(adopted_start(ctx, &server, id).await);
                }
                let placed = Placed {
                    server: server.name.clone(),
                    id,
                    token: None,
                };
                return starting(session, status, ctx, &server, placed, "adopted").await;
            }
            Decision::Place(server) => match start(session, uid, &server, ctx).await {
                Ok(Some(placed)) => {
                    ctx.scheduler.acked(&server.name, uid);
                    ctx.update(uid, |t| t.placed = Some(placed.clone()));
                    if *EXIT_AFTER_START {
                        tracing::error!("{FAULT_ENV}: exiting between START and the status write");
                        std::process::exit(86);
                    }
                    if let Some(created) = &session.metadata.creation_timestamp {
                        ctx.metrics
                            .scheduling_seconds
                            .observe(since(created).as_secs_f64());
                    }
                    if let Some(why) = cold.take() {
                        started_cold(session, &mut status, ctx, why);
                    }
                    return starting(session, status, ctx, &server, placed, "started").await;
                }
                Ok(None) => ctx.scheduler.release(&server.name, uid),
                Err(refusal) => {
                    ctx.scheduler.release(&server.name, uid);
                    if let Some(message) = refusal {
                        return fail(session, status, ctx, "StartRefused", message).await;
                    }
                }
            },
            Decision::Full { matching, answered } => {
                let message = format!(
                    "no free slot: {matching} rendering server(s) match, {answered} answered, all full"
                );
                return pending(session, uid, status, ctx, "NoCapacity", message).await;
            }
            Decision::NoServers => {
                let message = "no rendering server matches this session".to_owned();
                return pending(session, uid, status, ctx, "NoServers", message).await;
            }
        }
    }
    let message = "the chosen servers filled up before START; retrying".to_owned();
    pending(session, uid, status, ctx, "NoCapacity", message).await
}

/// A session with a pool starts cold: the status says so, and an Event says why (once).
fn started_cold(
    session: &OpenSpaceSession,
    status: &mut OpenSpaceSessionStatus,
    ctx: &Context,
    why: String,
) {
    if status.start != Some(Start::Cold) {
        ctx.metrics.pool_cold_starts.inc();
        ctx.event(session, false, "ColdStart", format!("{why}: started cold"));
    }
    status.start = Some(Start::Cold);
}

/// Warm when the agent says the adopted instance came from a pool.
async fn adopted_start(ctx: &Context, server: &Server, id: u32) -> Start {
    match ctx.links.call(server, &Request::Status { id }).await {
        Ok(answer) if answer.pool.is_some() => Start::Warm,
        _ => Start::Cold,
    }
}

/// Sends START. `Ok(Some)`: started (or already running for this session). `Ok(None)`: the
/// server was full or did not answer: try another round. `Err(Some(message))`: the server refused
/// the session itself (e.g. an invalid profile), which no retry fixes.
async fn start(
    session: &OpenSpaceSession,
    uid: &str,
    server: &Server,
    ctx: &Context,
) -> Result<Option<Placed>, Option<String>> {
    let request = Request::Start(StartRequest {
        session: Some(uid.to_owned()),
        width: Some(session.spec.resolution.width),
        height: Some(session.spec.resolution.height),
        profile: Some(session.spec.profile.clone()),
        warm: false,
    });
    match ctx.links.call(server, &request).await {
        Ok(answer) if answer.is_ok() => match u32::try_from(answer.id) {
            Ok(id) => Ok(Some(Placed {
                server: server.name.clone(),
                id,
                token: answer.token,
            })),
            Err(_) => Err(Some(format!(
                "{} answered START with the invalid id {}",
                server.name, answer.id
            ))),
        },
        Ok(answer) if answer.error == errors::NO_AVAILABLE_SLOTS => Ok(None),
        Ok(answer) => Err(Some(format!(
            "{} refused START: {}{}",
            server.name,
            answer.error,
            answer.detail.map(|d| format!(" ({d})")).unwrap_or_default()
        ))),
        Err(e) => {
            tracing::warn!("{e}");
            Ok(None)
        }
    }
}

async fn starting(
    session: &OpenSpaceSession,
    mut status: OpenSpaceSessionStatus,
    ctx: &Context,
    server: &Server,
    placed: Placed,
    how: &str,
) -> Result<Action, Error> {
    let now = now();
    let generation = session.metadata.generation;
    let message = format!("instance {} on {} {how}", placed.id, server.name);
    status.phase = Some(Phase::Starting);
    status.server = Some(server.name.clone());
    status.node = server.node.clone();
    status.instance_id = Some(placed.id);
    status.started_at = Some(now.clone());
    status.message = Some(message.clone());
    status.observed_generation = generation;
    set_condition(
        &mut status,
        SCHEDULED,
        true,
        "Scheduled",
        &message,
        generation,
        &now,
    );
    set_condition(
        &mut status,
        READY,
        false,
        "Starting",
        "the instance is initialising",
        generation,
        &now,
    );
    ctx.write_status(session, &status).await?;
    if let Some(uid) = session.metadata.uid.as_deref() {
        ctx.update(uid, |t| {
            t.waiting = false;
            t.attempts = 0;
            t.server = Some(server.name.clone());
            if t.placed
                .as_ref()
                .is_none_or(|p| p.server != placed.server || p.id != placed.id)
            {
                t.placed = Some(placed.clone());
            }
        });
    }
    // The usual path gets one Event (Running); taking over an earlier START is worth its own.
    // Fewer Events keep the apiserver free for status writes when hundreds start at once.
    if how != "started" {
        ctx.event(session, false, "Scheduled", message);
    }
    Ok(Action::requeue(ctx.config.status_interval))
}

async fn pending(
    session: &OpenSpaceSession,
    uid: &str,
    mut status: OpenSpaceSessionStatus,
    ctx: &Context,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    let mut attempts = 0;
    ctx.update(uid, |t| {
        t.waiting = true;
        t.attempts = t.attempts.saturating_add(1);
        attempts = t.attempts;
    });
    // Rewritten only when the reason changes: counts in the message may flap between rounds, and
    // every write would wake the session again, bypassing the backoff.
    let unchanged = status.phase == Some(Phase::Pending)
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == SCHEDULED && c.status == "False" && c.reason == reason);
    if !unchanged {
        let now = now();
        let generation = session.metadata.generation;
        status.phase = Some(Phase::Pending);
        status.message = Some(message.clone());
        status.observed_generation = generation;
        set_condition(
            &mut status,
            SCHEDULED,
            false,
            reason,
            &message,
            generation,
            &now,
        );
        ctx.write_status(session, &status).await?;
        ctx.event(session, false, reason, message);
    }
    // Woken early when a slot frees; the backoff only bounds the wait for servers that cannot
    // push (the seed's supervisor).
    let backoff = FIRST_BACKOFF
        .saturating_mul(1 << attempts.min(10))
        .min(ctx.config.max_backoff);
    Ok(Action::requeue(backoff))
}
