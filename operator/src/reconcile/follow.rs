//! A Starting or Running session: observe its slot, decide with [`steps::next`], act.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use openspace_crds::{OpenSpaceSession, OpenSpaceSessionStatus, Phase, Resolution};
use openspace_protocol::{Request, StartRequest};
use tokio::time::Instant;

use super::status::{end, set_condition, READY};
use super::steps::{self, Facts, Next, Observed};
use super::url::UrlValues;
use super::{fail, now, since, Context, Error, Tracked};
use crate::agents::{SlotState, Wake};
use crate::servers::Server;

pub async fn run(
    session: &OpenSpaceSession,
    uid: &str,
    status: OpenSpaceSessionStatus,
    tracked: Tracked,
    ctx: &Context,
) -> Result<Action, Error> {
    let (Some(server_name), Some(id)) = (status.server.clone(), status.instance_id) else {
        let message = "status names no server or instance".to_owned();
        return fail(session, status, ctx, "Lost", message).await;
    };
    let server = ctx.directory.reach(&server_name);
    let mut observed = match &server {
        Err(_) => Observed::Unreachable {
            since: ctx.fleet.mark_unreachable(&server_name, Instant::now()),
        },
        Ok(server) => observe(ctx, server, id).await,
    };
    let phase = status.phase.unwrap_or_default();
    let generation = session.metadata.generation;
    let facts = Facts {
        phase,
        uid,
        pushed: ctx.fleet.is_live(&server_name),
        running_for: status.ready_at.as_ref().map(since),
        max_duration: session.spec.max_duration().ok().flatten(),
        idle_timeout: session.spec.idle_timeout().ok().flatten(),
        resize_to: (phase == Phase::Running && generation != status.observed_generation)
            .then_some(session.spec.resolution),
        server_lost_after: ctx.config.server_lost_after,
        poll_interval: ctx.config.status_interval,
        now: Instant::now(),
    };
    let mut next = steps::next(&facts, &observed);
    if let (Next::Fail(_), Ok(server)) = (&next, &server) {
        // The WATCH cache may lag an answer just received on the call connection (START's, for
        // one): never fail a session on cached news alone.
        if ctx.fleet.is_live(&server.name) {
            observed = ask_status(ctx, server, id).await;
            next = steps::next(&facts, &observed);
        }
    }
    let server = match (server, &next) {
        (Ok(server), _) => server,
        (Err(_), Next::Wait(after)) => return Ok(Action::requeue(*after)),
        (Err(absence), _) => {
            let message = absence.describe(&server_name);
            return fail(session, status, ctx, "ServerLost", message).await;
        }
    };
    match next {
        Next::Wait(after) => Ok(Action::requeue(after)),
        Next::Ready => {
            let mut status = status;
            if let Observed::Slot(slot) = &observed {
                status.resolution = slot
                    .size
                    .map(|(width, height)| Resolution { width, height });
            }
            ready(session, uid, status, tracked, ctx, &server, id).await
        }
        Next::Resize(resolution) => {
            let request = Request::Resolution {
                id,
                width: resolution.width,
                height: resolution.height,
            };
            let answer = ctx.links.call(&server, &request).await?;
            let mut status = status;
            status.observed_generation = generation;
            if !answer.is_ok() {
                let note = format!("RESOLUTION refused: {}", answer.error);
                ctx.event(session, true, "ResizeFailed", note);
            } else {
                // The agent answers the size it applied (even, within what it can stream).
                let applied = Resolution {
                    width: answer.width.unwrap_or(resolution.width),
                    height: answer.height.unwrap_or(resolution.height),
                };
                let note = if applied == resolution {
                    format!("resized to {}x{}", applied.width, applied.height)
                } else {
                    format!(
                        "resized to {}x{} (asked for {}x{})",
                        applied.width, applied.height, resolution.width, resolution.height
                    )
                };
                status.resolution = Some(applied);
                ctx.event(session, false, "Resized", note);
            }
            ctx.write_status(session, &status).await?;
            Ok(Action::requeue(ctx.config.status_interval))
        }
        Next::End(message) => {
            let answer = ctx.links.call(&server, &Request::Stop { id }).await?;
            tracing::info!(session = uid, "{message}: STOP answered {}", answer.error);
            let mut status = status;
            end(
                &mut status,
                Phase::Ended,
                "Ended",
                &message,
                generation,
                &now(),
            );
            ctx.write_status(session, &status).await?;
            ctx.event(session, false, "Ended", message);
            ctx.wake(Wake::Capacity);
            Ok(Action::await_change())
        }
        Next::Fail(message) => {
            let message = format!("{message} (server {server_name}, instance {id})");
            fail(session, status, ctx, "InstanceLost", message).await
        }
    }
}

/// The slot as pushed by WATCH, else as STATUS answers now.
async fn observe(ctx: &Context, server: &Server, id: u32) -> Observed {
    if let Some(slot) = ctx.fleet.slot(&server.name, id) {
        return Observed::Slot(slot);
    }
    ask_status(ctx, server, id).await
}

async fn ask_status(ctx: &Context, server: &Server, id: u32) -> Observed {
    match ctx.links.call(server, &Request::Status { id }).await {
        Ok(answer) => {
            ctx.fleet.mark_reachable(&server.name);
            match SlotState::from_answer(&answer, None, Instant::now()) {
                Some(slot) => Observed::Slot(slot),
                // e.g. "invalid id": the server restarted with fewer slots.
                None => Observed::Slot(SlotState {
                    status: openspace_protocol::SlotStatus::Idle,
                    session: None,
                    viewers: None,
                    reason: Some(format!("STATUS answered {}", answer.error)),
                    unwatched_since: None,
                    running_since: None,
                    size: None,
                    pool: None,
                }),
            }
        }
        Err(e) => {
            tracing::debug!("{e}");
            Observed::Unreachable {
                since: ctx.fleet.mark_unreachable(&server.name, Instant::now()),
            }
        }
    }
}

async fn ready(
    session: &OpenSpaceSession,
    uid: &str,
    mut status: OpenSpaceSessionStatus,
    tracked: Tracked,
    ctx: &Context,
    server: &Server,
    id: u32,
) -> Result<Action, Error> {
    let mut token = tracked
        .placed
        .filter(|p| p.server == server.name && p.id == id)
        .and_then(|p| p.token);
    if token.is_none() && !server.external {
        // After a restart the token is only known to the agent: START with the same session is
        // idempotent and answers the running instance's id and token.
        let request = Request::Start(StartRequest {
            session: Some(uid.to_owned()),
            ..StartRequest::default()
        });
        let answer = ctx.links.call(server, &request).await?;
        if answer.is_ok() && answer.id == i64::from(id) {
            token = answer.token;
        }
    }
    let url = session_url(ctx, session, server, id, token.as_deref());
    let now = now();
    status.message = Some(format!("instance {id} on {} is running", server.name));
    write_running(ctx, session, &mut status, &url, &now).await?;
    ctx.event(session, false, "Running", format!("watch at {url}"));
    // Our write comes back through the watch and re-runs this with the Running object.
    Ok(Action::requeue(ctx.config.status_interval))
}

/// The session's URL for instance `id` on `server`, from the configured template.
pub(super) fn session_url(
    ctx: &Context,
    session: &OpenSpaceSession,
    server: &Server,
    id: u32,
    token: Option<&str>,
) -> String {
    ctx.config.url_template.render(&UrlValues {
        host: &server.public_host,
        id,
        token: token.unwrap_or_default(),
        name: &session.metadata.name.clone().unwrap_or_default(),
        namespace: &session.metadata.namespace.clone().unwrap_or_default(),
    })
}

/// Marks `status` Running at `now` (phase, URL, ready time, the Ready condition), writes it, and
/// observes the session's created -> Running time.
pub(super) async fn write_running(
    ctx: &Context,
    session: &OpenSpaceSession,
    status: &mut OpenSpaceSessionStatus,
    url: &str,
    now: &Time,
) -> Result<(), Error> {
    status.phase = Some(Phase::Running);
    status.url = Some(url.to_owned());
    status.ready_at = Some(now.clone());
    set_condition(
        status,
        READY,
        true,
        "Running",
        "the instance is running",
        session.metadata.generation,
        now,
    );
    ctx.write_status(session, status).await?;
    if let Some(created) = &session.metadata.creation_timestamp {
        ctx.metrics
            .ready_seconds
            .observe(since(created).as_secs_f64());
    }
    Ok(())
}
