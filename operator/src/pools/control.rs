//! The `OpenSpacePool` controller: one reconcile per pool change or wake (a warm instance
//! changed, capacity freed, a server came or went), behind the finalizer `openspace.io/pool`.
//! It counts the pool's instances from the agents' pushes, decides with [`steps::plan`], starts
//! warm instances through the scheduler (so they take slots and reservations like sessions),
//! stops the excess, and writes the counts to the status.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalize};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use openspace_crds::{OpenSpacePool, OpenSpacePoolStatus};
use openspace_protocol::command::errors;
use openspace_protocol::{Owner, Request, StartRequest};
use serde_json::json;

use super::steps::{self, Seen};
use crate::reconcile::status::set_condition_in;
use crate::reconcile::{now, stop_if_ours, Context, Error, FIELD_MANAGER};
use crate::scheduler::Decision;

pub const FINALIZER: &str = "openspace.io/pool";

/// Looks again this often without news (pushes wake it sooner).
const RECHECK: Duration = Duration::from_secs(10);
/// While instances start or capacity is short.
const RECHECK_BUSY: Duration = Duration::from_secs(2);

/// Makes every warm START's reservation key unique.
static STARTS: AtomicU64 = AtomicU64::new(0);

pub async fn reconcile(pool: Arc<OpenSpacePool>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let api: Api<OpenSpacePool> =
        Api::namespaced(ctx.client.clone(), &pool.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, pool, |event| async {
        match event {
            Finalize::Apply(pool) => apply(&pool, &ctx).await,
            Finalize::Cleanup(pool) => cleanup(&pool, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    result
}

pub fn error_policy(pool: Arc<OpenSpacePool>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_errors.inc();
    tracing::warn!(pool = %pool.name_any(), "pool reconcile failed: {error}");
    Action::requeue(Duration::from_secs(1))
}

async fn apply(pool: &OpenSpacePool, ctx: &Context) -> Result<Action, Error> {
    let uid = pool.uid().ok_or(Error::MissingField("metadata.uid"))?;
    ctx.pools.index(&uid, ObjectRef::from_obj(pool));
    let selector = match pool.spec.server_selector.clone().map(Selector::try_from) {
        None => None,
        Some(Ok(selector)) => Some(selector),
        Some(Err(e)) => {
            let seen = ctx.pools.seen(&uid, &ctx.fleet);
            let why = format!("spec.serverSelector: {e}");
            write_status(pool, ctx, &seen, Some(("InvalidSpec", why))).await?;
            return Ok(Action::await_change());
        }
    };
    let seen = ctx.pools.seen(&uid, &ctx.fleet);
    let plan = steps::plan(pool.spec.warm, pool.spec.max_instances, &seen);
    for (server, id) in &plan.stop {
        stop_warm(ctx, &uid, server, *id).await;
    }
    let starts = (0..plan.start).map(|_| start_warm(pool, &uid, selector.clone(), ctx));
    // Concurrent asks share one scheduling round.
    let short = futures::future::join_all(starts)
        .await
        .into_iter()
        .find_map(Result::err);
    let seen = ctx.pools.seen(&uid, &ctx.fleet);
    let problem = short.map(|why| ("NoCapacity", why));
    let busy = problem.is_some() || seen.starting() > 0;
    write_status(pool, ctx, &seen, problem).await?;
    Ok(Action::requeue(if busy { RECHECK_BUSY } else { RECHECK }))
}

/// One warm START on the server the scheduler picks. Err: why none could start.
async fn start_warm(
    pool: &OpenSpacePool,
    uid: &str,
    selector: Option<Selector>,
    ctx: &Context,
) -> Result<(), String> {
    let owner = Owner::pool(uid).encode();
    let key = format!("{owner}#{}", STARTS.fetch_add(1, Ordering::Relaxed));
    let server = match ctx.scheduler.ask_warm(&key, selector).await {
        Decision::Place(server) => server,
        Decision::Full { matching, answered } => {
            return Err(format!(
                "no free slot: {matching} rendering server(s) match, {answered} with warm \
                 instances answered, all full"
            ))
        }
        Decision::NoServers | Decision::Adopt { .. } => {
            return Err("no rendering server matches the pool".to_owned())
        }
    };
    let request = Request::Start(StartRequest {
        session: Some(owner),
        width: Some(pool.spec.resolution.width),
        height: Some(pool.spec.resolution.height),
        profile: Some(pool.spec.profile.clone()),
        warm: true,
    });
    let outcome = match ctx.links.call(&server, &request).await {
        Ok(answer) if answer.is_ok() => match u32::try_from(answer.id) {
            Ok(id) => {
                ctx.scheduler.acked(&server.name, &key);
                ctx.pools.started(uid, &server.name, id);
                tracing::info!(pool = %pool.name_any(), server = %server.name, id, "warm START");
                return Ok(());
            }
            Err(_) => format!("{} answered START with id {}", server.name, answer.id),
        },
        Ok(answer) if answer.error == errors::NO_AVAILABLE_SLOTS => {
            format!("{} filled up before START", server.name)
        }
        Ok(answer) => format!(
            "{} refused the warm START: {}{}",
            server.name,
            answer.error,
            answer.detail.map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        Err(e) => e.to_string(),
    };
    ctx.scheduler.release(&server.name, &key);
    Err(outcome)
}

/// Stops warm instance (server, id) if it is still the pool's and no session is claiming it.
async fn stop_warm(ctx: &Context, uid: &str, server_name: &str, id: u32) {
    let Some(_lock) = ctx.pools.lock_slot(server_name, id) else {
        return;
    };
    let Ok(server) = ctx.directory.reach(server_name) else {
        return;
    };
    match stop_if_ours(ctx, &server, id, &Owner::pool(uid)).await {
        Ok(()) => tracing::info!(server = server_name, id, "stopped a warm instance"),
        Err(e) => tracing::warn!("stopping warm instance {id} on {server_name}: {e}"),
    }
}

/// The pool is being deleted: its unclaimed instances stop; claimed ones belong to their
/// sessions now and live on. Instances on servers out of reach are left to the orphan sweep,
/// which stops pool-owned instances whose pool is gone.
async fn cleanup(pool: &OpenSpacePool, ctx: &Context) -> Result<Action, Error> {
    let uid = pool.uid().ok_or(Error::MissingField("metadata.uid"))?;
    for (server, id, _) in ctx.fleet.pool_slots(&uid) {
        stop_warm(ctx, &uid, &server, id).await;
    }
    ctx.pools.forget(&uid);
    let labels = [
        pool.namespace().unwrap_or_default(),
        pool.name_any().to_string(),
    ];
    let _ = ctx
        .metrics
        .pool_warm_ready
        .remove_label_values(&[&labels[0], &labels[1]]);
    Ok(Action::await_change())
}

/// Writes ready/starting/claimed and the Ready condition when they changed; sets the gauge.
async fn write_status(
    pool: &OpenSpacePool,
    ctx: &Context,
    seen: &Seen,
    problem: Option<(&str, String)>,
) -> Result<(), Error> {
    let namespace = pool.namespace().unwrap_or_default();
    let name = pool.name_any();
    ctx.metrics
        .pool_warm_ready
        .with_label_values(&[&namespace, &name])
        .set(i64::from(seen.ready()));
    let current = pool.status.clone().unwrap_or_default();
    let want = steps::target(pool.spec.warm, pool.spec.max_instances, seen.claimed);
    let generation = pool.metadata.generation;
    let mut status = OpenSpacePoolStatus {
        ready: seen.ready(),
        starting: seen.starting(),
        claimed: seen.claimed,
        conditions: current.conditions.clone(),
        observed_generation: generation,
    };
    let (value, reason, message) = match problem {
        Some((reason, why)) => (false, reason.to_owned(), why),
        None if seen.ready() >= want => (true, "Filled".to_owned(), format!("{want} ready")),
        None => (
            false,
            "Filling".to_owned(),
            format!("{} of {want} ready", seen.ready()),
        ),
    };
    let unchanged_condition = current
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.reason == reason && c.message == message);
    if !unchanged_condition {
        set_condition_in(
            &mut status.conditions,
            "Ready",
            value,
            &reason,
            message,
            generation,
            &now(),
        );
    }
    if status == current {
        return Ok(());
    }
    let api: Api<OpenSpacePool> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "apiVersion": "openspace.io/v1alpha1",
        "kind": "OpenSpacePool",
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
