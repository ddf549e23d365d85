//! Turns one parsed request into its answer by asking the supervisor. No I/O here: the server
//! owns the socket, WATCH subscriptions and timing.

use std::sync::Arc;

use super::protocol::{errors, Answer, Request, SlotStatus};
use crate::instances::{Resolution, SlotError, SlotView, Supervisor};

pub fn handle(supervisor: &Arc<Supervisor>, request: Request) -> Answer {
    let command = request.command();
    match request {
        Request::Start(start) => match supervisor.start(start) {
            Ok(started) => Answer {
                token: started.token,
                ..Answer::ok(command, started.id.into())
            },
            Err(e) => failed(supervisor, command, -1, e),
        },
        Request::Stop { id } => match supervisor.stop(id) {
            Ok(()) => Answer::ok(command, id.into()),
            Err(e) => failed(supervisor, command, id.into(), e),
        },
        // Answers the size applied (odd sizes rounded to even, clamped to what the instance
        // supports), or on an error the size asked for.
        Request::Resolution { id, width, height } => {
            let asked = Resolution { width, height };
            let (mut answer, size) = match supervisor.set_resolution(id, asked) {
                Ok(applied) => (Answer::ok(command, id.into()), applied),
                Err(e) => (failed(supervisor, command, id.into(), e), asked),
            };
            answer.width = Some(size.width);
            answer.height = Some(size.height);
            answer
        }
        Request::Status { id } => match supervisor.view(id) {
            Ok(view) => status_answer(&view),
            Err(e) => Answer {
                status: Some(SlotStatus::Invalid),
                ..failed(supervisor, command, id.into(), e)
            },
        },
        Request::Claim { id, session } => match supervisor.claim(id, &session) {
            Ok(claimed) => {
                let view = supervisor.view(id).ok();
                Answer {
                    token: Some(claimed.token),
                    session: Some(session),
                    width: view.as_ref().and_then(|v| v.resolution).map(|r| r.width),
                    height: view.as_ref().and_then(|v| v.resolution).map(|r| r.height),
                    pool: view.and_then(|v| v.pool),
                    ..Answer::ok(command, id.into())
                }
            }
            Err(e) => failed(supervisor, command, id.into(), e),
        },
        Request::ServerStatus => {
            let (busy, warm, views) = supervisor.server_status();
            Answer {
                running: Some(busy),
                warm: Some(warm),
                total: Some(supervisor.capacity()),
                slots: Some(views.iter().map(SlotView::info).collect()),
                // The seed's example answers with id 0; there is no slot to name.
                ..Answer::ok(command, 0)
            }
        }
        Request::Watch => watch_answer(supervisor),
    }
}

/// WATCH's own answer; the server follows it with one STATUS push per slot.
pub fn watch_answer(supervisor: &Supervisor) -> Answer {
    Answer {
        total: Some(supervisor.capacity()),
        ..Answer::ok("WATCH", -1)
    }
}

/// A STATUS answer, also used for WATCH pushes.
pub fn status_answer(view: &SlotView) -> Answer {
    Answer {
        status: Some(view.status),
        session: view.session.clone(),
        width: view.resolution.map(|r| r.width),
        height: view.resolution.map(|r| r.height),
        profile: view.profile.clone(),
        reason: view.reason.clone(),
        pool: view.pool.clone(),
        viewers: view.viewers,
        running_ms: view
            .running_for
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        ..Answer::ok("STATUS", view.id.into())
    }
}

fn failed(supervisor: &Supervisor, command: &str, id: i64, error: SlotError) -> Answer {
    let (code, detail) = match error {
        SlotError::NoAvailableSlots => (
            errors::NO_AVAILABLE_SLOTS,
            format!("all {} slots are in use", supervisor.capacity()),
        ),
        SlotError::InvalidId => (
            errors::INVALID_ID,
            format!(
                "id {id} is out of range: this server has slots 0..={}",
                supervisor.capacity().saturating_sub(1)
            ),
        ),
        SlotError::NotRunning => (
            errors::NOT_RUNNING,
            format!("slot {id} has no live instance"),
        ),
        SlotError::ShuttingDown => (
            errors::SHUTTING_DOWN,
            "the rendering server is shutting down".to_owned(),
        ),
        SlotError::AlreadyClaimed => (
            errors::ALREADY_CLAIMED,
            format!("instance {id} belongs to another session"),
        ),
        SlotError::NotClaimable => (
            errors::NOT_CLAIMABLE,
            format!(
                "instance {id} is not a warm RUNNING instance, or the session owns another one"
            ),
        ),
    };
    Answer::failed(command, id, code, detail)
}
