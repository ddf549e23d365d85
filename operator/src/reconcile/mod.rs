//! The controller: one `reconcile` per OpenSpaceSession change (or wake), behind a finalizer so
//! deletion always stops the instance. `Pending` sessions are scheduled ([`schedule`]);
//! `Starting` and `Running` ones are followed ([`follow`], deciding with [`steps`]); deletion
//! runs [`cleanup`].

mod claim;
mod cleanup;
mod follow;
mod schedule;
pub mod status;
pub mod steps;
pub mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{finalizer, Event as Finalize};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};
use openspace_crds::{OpenSpaceSession, OpenSpaceSessionStatus, Phase};
use openspace_protocol::Owner;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use crate::agents::{CallError, Fleet, Links, Wake};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pools::Pools;
use crate::scheduler::Scheduler;
use crate::servers::Directory;

pub const FINALIZER: &str = "openspace.io/instance";
pub const FIELD_MANAGER: &str = "openspace-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the session has no {0}")]
    MissingField(&'static str),
    #[error("cannot stop the instance yet: {0}")]
    StopPending(String),
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub directory: Arc<Directory>,
    pub links: Arc<Links>,
    pub fleet: Arc<Fleet>,
    pub scheduler: Scheduler,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Warm pools: their cache, claims and stops in progress, warm STARTs in flight.
    pub pools: Arc<Pools>,
    wakes: UnboundedSender<Wake>,
    tracked: Mutex<HashMap<String, Tracked>>,
}

/// What the operator remembers of a session between reconciles (lost on restart, and nothing
/// depends on it surviving one: it only saves calls and hides stale cache reads).
#[derive(Debug, Clone)]
struct Tracked {
    object: ObjectRef<OpenSpaceSession>,
    server: Option<String>,
    /// Waiting for capacity: woken when a slot frees.
    waiting: bool,
    attempts: u32,
    /// START's answer, for the URL.
    placed: Option<Placed>,
    /// The furthest phase written, to tell a stale cached object from news.
    written: Phase,
    /// When this process first saw the session being deleted (its monotonic clock).
    deleting_since: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub server: String,
    pub id: u32,
    pub token: Option<String>,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        config: Config,
        directory: Arc<Directory>,
        links: Arc<Links>,
        fleet: Arc<Fleet>,
        scheduler: Scheduler,
        recorder: Recorder,
        metrics: Metrics,
        pools: Arc<Pools>,
        wakes: UnboundedSender<Wake>,
    ) -> Self {
        Self {
            client,
            config,
            directory,
            links,
            fleet,
            scheduler,
            recorder,
            metrics,
            pools,
            wakes,
            tracked: Mutex::default(),
        }
    }

    fn tracked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn track(&self, uid: &str, session: &OpenSpaceSession) -> Tracked {
        let server = session.status.as_ref().and_then(|s| s.server.clone());
        let mut tracked = self.tracked();
        let entry = tracked.entry(uid.to_owned()).or_insert_with(|| Tracked {
            object: ObjectRef::from_obj(session),
            server: None,
            waiting: false,
            attempts: 0,
            placed: None,
            written: Phase::Pending,
            deleting_since: None,
        });
        if server.is_some() {
            entry.server = server;
        }
        entry.clone()
    }

    fn update(&self, uid: &str, f: impl FnOnce(&mut Tracked)) {
        if let Some(entry) = self.tracked().get_mut(uid) {
            f(entry);
        }
    }

    fn placed(&self, uid: &str) -> Option<Placed> {
        self.tracked().get(uid).and_then(|t| t.placed.clone())
    }

    /// How long this process has seen the session being deleted, on its own monotonic clock
    /// (not `deletionTimestamp`, which the apiserver's clock wrote). A new leader counts from
    /// its first look, so a failover can only lengthen the stop give-up bound, never cut it.
    fn deleting_for(&self, uid: &str, session: &OpenSpaceSession) -> Duration {
        self.track(uid, session);
        let now = Instant::now();
        let mut tracked = self.tracked();
        let since = tracked
            .get_mut(uid)
            .map(|t| *t.deleting_since.get_or_insert(now))
            .unwrap_or(now);
        now.saturating_duration_since(since)
    }

    fn untrack(&self, uid: &str) {
        self.tracked().remove(uid);
    }

    pub fn wake(&self, wake: Wake) {
        let _ = self.wakes.send(wake);
    }

    /// The sessions a wake concerns.
    pub fn woken(&self, wake: &Wake) -> Vec<ObjectRef<OpenSpaceSession>> {
        let tracked = self.tracked();
        match wake {
            Wake::Session(uid) => tracked
                .get(uid)
                .map(|t| t.object.clone())
                .into_iter()
                .collect(),
            Wake::Capacity => tracked
                .values()
                .filter(|t| t.waiting)
                .map(|t| t.object.clone())
                .collect(),
            Wake::Server(name) => tracked
                .values()
                .filter(|t| t.server.as_deref() == Some(name) || t.waiting)
                .map(|t| t.object.clone())
                .collect(),
            Wake::Pool(_) => Vec::new(),
        }
    }

    pub(crate) fn event(
        &self,
        session: &OpenSpaceSession,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        // Events are for people; never let them slow a session down.
        let recorder = self.recorder.clone();
        let reference = session.object_ref(&());
        let reason = reason.to_owned();
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::warn!("cannot publish event {reason}: {e}");
            }
        });
    }

    /// Writes the whole status (server-side apply: fields left out are removed).
    async fn write_status(
        &self,
        session: &OpenSpaceSession,
        status: &OpenSpaceSessionStatus,
    ) -> Result<(), Error> {
        let api: Api<OpenSpaceSession> = Api::namespaced(
            self.client.clone(),
            &session.namespace().unwrap_or_default(),
        );
        let patch = json!({
            "apiVersion": "openspace.io/v1alpha1",
            "kind": "OpenSpaceSession",
            "status": status,
        });
        api.patch_status(
            &session.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        if let (Some(uid), Some(phase)) = (session.uid(), status.phase) {
            self.update(&uid, |t| {
                if rank(phase) > rank(t.written) {
                    t.written = phase;
                }
            });
        }
        Ok(())
    }
}

/// Phases in the order a session goes through them.
fn rank(phase: Phase) -> u8 {
    match phase {
        Phase::Pending => 0,
        Phase::Starting => 1,
        Phase::Running => 2,
        Phase::Stopping | Phase::Ended | Phase::Failed => 3,
    }
}

pub fn now() -> Time {
    Time(Timestamp::now())
}

/// Time since `then` on the wall clock (zero if `then` is in the future).
pub fn since(then: &Time) -> Duration {
    let elapsed = Timestamp::now().duration_since(then.0);
    Duration::try_from(elapsed).unwrap_or_default()
}

pub async fn reconcile(session: Arc<OpenSpaceSession>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let api: Api<OpenSpaceSession> =
        Api::namespaced(ctx.client.clone(), &session.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, session, |event| async {
        match event {
            Finalize::Apply(session) => apply(&session, &ctx).await,
            Finalize::Cleanup(session) => cleanup::run(&session, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    result
}

pub fn error_policy(session: Arc<OpenSpaceSession>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_errors.inc();
    tracing::warn!(session = %session.name_any(), "reconcile failed: {error}");
    Action::requeue(Duration::from_secs(1))
}

async fn apply(session: &OpenSpaceSession, ctx: &Context) -> Result<Action, Error> {
    let uid = session.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let tracked = ctx.track(&uid, session);
    let status = session.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    if rank(tracked.written) > rank(phase) {
        // Our own newer write is on its way through the watch; it will trigger a reconcile.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    match phase {
        Phase::Pending => schedule::run(session, &uid, status, tracked, ctx).await,
        Phase::Starting | Phase::Running => follow::run(session, &uid, status, tracked, ctx).await,
        Phase::Stopping | Phase::Ended | Phase::Failed => {
            ctx.update(&uid, |t| t.waiting = false);
            Ok(Action::await_change())
        }
    }
}

/// Marks the session Failed (terminal) with `message`.
async fn fail(
    session: &OpenSpaceSession,
    mut status: OpenSpaceSessionStatus,
    ctx: &Context,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    status::end(
        &mut status,
        Phase::Failed,
        reason,
        &message,
        session.metadata.generation,
        &now(),
    );
    let slot = status.server.clone().zip(status.instance_id);
    ctx.write_status(session, &status).await?;
    ctx.event(session, true, reason, message);
    if let Some(uid) = session.uid() {
        ctx.update(&uid, |t| t.waiting = false);
        // The instance may outlive the failure (e.g. its server comes back): free the slot if it
        // is still ours. Seed servers cannot say whose a slot is, so they are left alone.
        if let Some((name, id)) = slot {
            if let Some(server) = ctx.directory.reach(&name).ok().filter(|s| !s.external) {
                if let Err(e) = stop_if_ours(ctx, &server, id, &Owner::Session(uid.clone())).await {
                    tracing::debug!("stopping the failed session's instance: {e}");
                }
            }
        }
    }
    ctx.wake(Wake::Capacity);
    Ok(Action::await_change())
}

/// STOP, unless the slot belongs to another owner now (agents say whose a slot is; for seed
/// servers the status is trusted). "not running" counts as stopped.
pub(crate) async fn stop_if_ours(
    ctx: &Context,
    server: &crate::servers::Server,
    id: u32,
    owner: &Owner,
) -> Result<(), CallError> {
    use openspace_protocol::{Request, SlotStatus};
    if !server.external {
        let answer = ctx.links.call(server, &Request::Status { id }).await?;
        let ours = answer.session.as_deref().map(Owner::parse).as_ref() == Some(owner);
        if !ours || answer.status == Some(SlotStatus::Idle) {
            return Ok(());
        }
    }
    let answer = ctx.links.call(server, &Request::Stop { id }).await?;
    tracing::info!(%owner, server = %server.name, id, "STOP answered {}", answer.error);
    Ok(())
}
