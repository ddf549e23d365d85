//! A deleted session: STOP every instance it owns, then let the finalizer go. A server that
//! cannot be reached is retried until `--stop-give-up`, then given up with a Warning event, so
//! deletion never blocks forever.

use kube::runtime::controller::Action;
use openspace_crds::{OpenSpaceSession, Phase};
use openspace_protocol::Owner;

use super::status::{set_condition, READY};
use super::{now, stop_if_ours, Context, Error};
use crate::agents::Wake;
use crate::servers::Absence;

pub async fn run(session: &OpenSpaceSession, ctx: &Context) -> Result<Action, Error> {
    let uid = session.metadata.uid.clone().unwrap_or_default();
    let status = session.status.clone().unwrap_or_default();
    // Slots the watched servers say this session owns (also finds a START whose status write
    // never happened), plus the one the status names.
    let mut targets = ctx.fleet.slots_of(&uid);
    let live = matches!(
        status.phase,
        Some(Phase::Starting | Phase::Running | Phase::Stopping)
    );
    let named = status
        .server
        .clone()
        .zip(status.instance_id)
        .filter(|_| live);
    // START acknowledged but the cached object does not show it yet.
    let placed = ctx.placed(&uid).map(|p| (p.server, p.id));
    for target in [named, placed].into_iter().flatten() {
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let deleting_for = ctx.deleting_for(&uid, session);
    let owner = Owner::Session(uid.clone());
    let mut pending = Vec::new();
    for (name, id) in &targets {
        let outcome = match ctx.directory.reach(name) {
            Ok(server) => stop_if_ours(ctx, &server, *id, &owner)
                .await
                .map_err(|e| e.to_string()),
            // A deleted agent pod took its instances with it: nothing left to stop.
            Err(Absence::Deleted) => Ok(()),
            Err(absence) => Err(absence.describe(name)),
        };
        if let Err(why) = outcome {
            pending.push(format!("instance {id} on {name}: {why}"));
        }
    }
    if !pending.is_empty() {
        let message = pending.join("; ");
        if deleting_for < ctx.config.stop_give_up {
            if status.phase != Some(Phase::Stopping) {
                let mut status = status.clone();
                let now = now();
                status.phase = Some(Phase::Stopping);
                status.message = Some(format!("stopping: {message}"));
                let generation = session.metadata.generation;
                set_condition(
                    &mut status,
                    READY,
                    false,
                    "Stopping",
                    &message,
                    generation,
                    &now,
                );
                ctx.write_status(session, &status).await?;
            }
            return Err(Error::StopPending(message));
        }
        let note = format!(
            "gave up stopping after {}s, the instance may still run: {message}",
            deleting_for.as_secs()
        );
        ctx.event(session, true, "StopGaveUp", note);
    }
    ctx.untrack(&uid);
    // Servers that cannot push (the seed's) will not say a slot freed: wake the waiting now.
    ctx.wake(Wake::Capacity);
    Ok(Action::await_change())
}
