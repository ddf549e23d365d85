//! The supervisor: the slot table behind a lock, one task per instance that runs it through
//! INITIALIZING -> RUNNING -> gone (see `lifecycle`), and a broadcast of every slot change for
//! WATCH. It also hands streamed instances' pictures and access tokens to the streaming side.
//!
//! Commands change the table synchronously (so answers are immediate and concurrent STARTs can
//! never share a slot); each instance task then acts on its own process and reports back.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::kinds::{InstanceConfig, InstanceKind};
use super::lifecycle::{self, Ending};
use super::slots::{
    Claimed, InstanceKey, InstanceSpec, Resolution, SlotError, SlotTable, SlotView, Started,
    StopOutcome,
};
use crate::command::protocol::{SlotStatus, StartRequest};
use crate::media::pipeline::Pipeline;
use crate::metrics::Metrics;
use crate::stream::Roster;

/// The `reason` of instances stopped because the agent shuts down (SIGTERM).
pub const SHUTDOWN_REASON: &str =
    "the rendering server shut down (its pod was deleted or replaced)";

/// Slot changes buffered per WATCH subscriber before it counts as lagging (and is resynced).
const EVENT_BUFFER: usize = 1024;

pub struct Supervisor {
    config: InstanceConfig,
    /// Who watches which instance; changes republish the slot (STATUS carries `viewers`).
    roster: Arc<Roster>,
    metrics: Metrics,
    state: Mutex<State>,
    events: broadcast::Sender<SlotView>,
    tasks: TaskTracker,
    /// The API's per-instance state (properties its clients set), shared by its connections.
    api_scenes: crate::api::Scenes,
}

struct State {
    table: SlotTable,
    /// Cancelled to stop the current instance of each slot.
    stop_tokens: Vec<Option<CancellationToken>>,
    /// The picture of each slot whose instance the agent streams.
    pipelines: Vec<Option<Arc<Pipeline>>>,
    /// When each slot's current instance became RUNNING (this process's monotonic clock).
    running_since: Vec<Option<std::time::Instant>>,
    shutting_down: bool,
}

/// What START hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOk {
    pub id: u32,
    /// The session already held this live instance; nothing new was started.
    pub existing: bool,
    /// The instance's access token for viewers; none for a warm instance (its token never
    /// leaves the agent: CLAIM answers a new one).
    pub token: Option<String>,
}

/// 128 random bits, hex.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Supervisor {
    pub fn new(config: InstanceConfig, metrics: Metrics) -> Arc<Self> {
        let capacity = config.capacity;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let supervisor = Arc::new_cyclic(|me: &std::sync::Weak<Self>| {
            let me = me.clone();
            Self {
                config,
                roster: Arc::new(Roster::new(move |id| {
                    if let Some(supervisor) = me.upgrade() {
                        let state = supervisor.lock();
                        supervisor.publish(&state, id);
                    }
                })),
                metrics,
                state: Mutex::new(State {
                    table: SlotTable::new(capacity),
                    stop_tokens: vec![None; capacity as usize],
                    pipelines: vec![None; capacity as usize],
                    running_since: vec![None; capacity as usize],
                    shutting_down: false,
                }),
                events,
                tasks: TaskTracker::new(),
                api_scenes: crate::api::Scenes::default(),
            }
        });
        supervisor.update_gauges(&supervisor.lock().table);
        supervisor
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug in the table code, which never panics;
        // recover the data rather than take the whole agent down.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn capacity(&self) -> u32 {
        self.config.capacity
    }

    /// START: takes the lowest idle slot and launches its instance.
    pub fn start(self: &Arc<Self>, request: StartRequest) -> Result<StartOk, SlotError> {
        let resolution = self.config.fit(match (request.width, request.height) {
            (Some(width), Some(height)) => Resolution { width, height },
            _ => self.config.default_resolution,
        });
        let spec = InstanceSpec {
            session: request.session,
            warm: request.warm,
            pool: None,
            resolution,
            profile: request
                .profile
                .unwrap_or_else(|| self.config.default_profile.clone()),
            token: new_token(),
        };
        let mut state = self.lock();
        if state.shutting_down {
            return Err(SlotError::ShuttingDown);
        }
        let key = match state.table.start(spec.clone())? {
            Started::Existing(id) => {
                let token = state.table.token(id).unwrap_or_default().to_owned();
                return Ok(StartOk {
                    id,
                    existing: true,
                    token: Some(token),
                });
            }
            Started::New(key) => key,
        };
        let token = CancellationToken::new();
        state.stop_tokens[key.id as usize] = Some(token.clone());
        self.publish(&state, key.id);
        self.metrics.starts.inc();
        drop(state);
        let this = Arc::clone(self);
        let access = (!spec.warm).then(|| spec.token.clone());
        self.tasks
            .spawn(async move { this.run(key, spec, token).await });
        Ok(StartOk {
            id: key.id,
            existing: false,
            token: access,
        })
    }

    /// CLAIM: warm instance `id` now belongs to `session`, with a new viewer token.
    pub fn claim(&self, id: u32, session: &str) -> Result<Claimed, SlotError> {
        let mut state = self.lock();
        let claimed = state.table.claim(id, session, new_token())?;
        if !claimed.again {
            tracing::info!(instance = id, session, "warm instance claimed");
            self.publish(&state, id);
        }
        Ok(claimed)
    }

    /// STOP: the slot goes DEINITIALIZING now and IDLE when its process is gone.
    pub fn stop(&self, id: u32) -> Result<(), SlotError> {
        let mut state = self.lock();
        if let StopOutcome::Stopping(_) = state.table.stop(id)? {
            if let Some(token) = &state.stop_tokens[id as usize] {
                token.cancel();
            }
            self.publish(&state, id);
        }
        Ok(())
    }

    /// RESOLUTION: recorded in the slot, and applied live to a streamed instance's picture.
    /// RESOLUTION: resizes instance `id` to `asked` as this kind allows; answers the size applied
    /// (see [`InstanceConfig::fit`]).
    pub fn set_resolution(&self, id: u32, asked: Resolution) -> Result<Resolution, SlotError> {
        let resolution = self.config.fit(asked);
        let mut state = self.lock();
        state.table.set_resolution(id, resolution)?;
        if let Some(pipeline) = &state.pipelines[id as usize] {
            pipeline.resize(resolution.width, resolution.height);
        }
        self.publish(&state, id);
        Ok(resolution)
    }

    /// Whether the agent renders its instances itself (and so serves their API itself).
    pub fn renders_itself(&self) -> bool {
        matches!(self.config.kind, InstanceKind::Builtin)
    }

    /// Instance `id`'s API port (`--api-base-port` + id).
    pub fn api_port(&self, id: u32) -> u16 {
        self.config.api_port(id)
    }

    /// Whether the agent streams its instances itself (built-in renderer, X11 capture), rather
    /// than the instance program streaming on its own.
    pub fn streams_itself(&self) -> bool {
        matches!(
            self.config.kind,
            InstanceKind::Builtin | InstanceKind::X11(_)
        )
    }

    /// The picture of instance `id`, when the agent streams it and it is live.
    pub fn pipeline(&self, id: u32) -> Option<Arc<Pipeline>> {
        self.lock().pipelines.get(id as usize)?.clone()
    }

    /// Whether `token` opens instance `id` (live, and the token matches, compared in constant time).
    pub fn token_matches(&self, id: u32, token: &str) -> bool {
        let state = self.lock();
        state.table.token(id).is_some_and(|t| {
            crate::auth::BearerToken::new(t).accepts(Some(format!("Bearer {token}").as_bytes()))
        })
    }

    pub fn view(&self, id: u32) -> Result<SlotView, SlotError> {
        let state = self.lock();
        let view = state.table.view(id)?;
        Ok(self.decorate(&state, view))
    }

    /// The API's per-instance state.
    pub fn api_scenes(&self) -> &crate::api::Scenes {
        &self.api_scenes
    }

    /// Who watches which instance.
    pub fn roster(&self) -> &Arc<Roster> {
        &self.roster
    }

    /// What the table does not know: viewers, and how long a RUNNING instance has run.
    fn decorate(&self, state: &State, mut view: SlotView) -> SlotView {
        if self.streams_itself() {
            view.viewers = Some(self.roster.count(view.id) as u32);
        }
        if view.status == SlotStatus::Running {
            view.running_for = state
                .running_since
                .get(view.id as usize)
                .copied()
                .flatten()
                .map(|since| since.elapsed());
        }
        view
    }

    fn views(&self, state: &State) -> Vec<SlotView> {
        state
            .table
            .views()
            .into_iter()
            .map(|v| self.decorate(state, v))
            .collect()
    }

    /// SERVER_STATUS: (busy slots, warm slots among them, every slot).
    pub fn server_status(&self) -> (u32, u32, Vec<SlotView>) {
        let state = self.lock();
        (state.table.busy(), state.table.warm(), self.views(&state))
    }

    /// Every slot now, and every change from now on, with nothing missed in between.
    pub fn watch(&self) -> (Vec<SlotView>, broadcast::Receiver<SlotView>) {
        let state = self.lock();
        (self.views(&state), self.events.subscribe())
    }

    /// Stops every instance gracefully and waits until all are reaped. New STARTs are refused.
    pub async fn shutdown(&self) {
        {
            let mut state = self.lock();
            state.shutting_down = true;
            for key in state.table.stop_all() {
                if let Some(token) = &state.stop_tokens[key.id as usize] {
                    token.cancel();
                }
                self.publish(&state, key.id);
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn publish(&self, state: &State, id: u32) {
        if let Ok(view) = state.table.view(id) {
            // No subscribers is fine; the send only fails then.
            let _ = self.events.send(self.decorate(state, view));
        }
        self.update_gauges(&state.table);
    }

    fn update_gauges(&self, table: &SlotTable) {
        self.metrics.set_slot_counts(|status| table.count(status));
    }

    /// One instance, from start to gone: runs it, then frees its slot.
    async fn run(self: Arc<Self>, key: InstanceKey, spec: InstanceSpec, stop: CancellationToken) {
        let ending = lifecycle::drive(&self, key, &spec, &stop).await;
        let mut state = self.lock();
        state.pipelines[key.id as usize] = None;
        let reason = match ending {
            Ending::Stopped => {
                self.metrics.stops.inc();
                tracing::info!(
                    instance = key.id,
                    shutting_down = state.shutting_down,
                    "instance stopped"
                );
                // Stopped because the agent itself is going (SIGTERM: its pod deleted, a
                // rollout): the owner's last WATCH push says so, so its session can say why.
                state.shutting_down.then(|| SHUTDOWN_REASON.to_owned())
            }
            Ending::Failed { kind, reason } => {
                self.metrics.failures.with_label_values(&[kind]).inc();
                tracing::warn!(instance = key.id, session = ?spec.session, %reason, "instance failed");
                Some(reason)
            }
        };
        if state.table.exited(key, reason) {
            state.stop_tokens[key.id as usize] = None;
            state.running_since[key.id as usize] = None;
            self.publish(&state, key.id);
        }
    }

    /// Readiness reached: INITIALIZING -> RUNNING, unless a stop came first.
    pub(super) fn mark_running(&self, key: InstanceKey) {
        let mut state = self.lock();
        if state.table.mark_running(key) {
            state.running_since[key.id as usize] = Some(std::time::Instant::now());
            tracing::info!(instance = key.id, "instance running");
            self.publish(&state, key.id);
        }
    }

    /// The picture of a streamed instance (built-in, X11) while it runs.
    pub(super) fn set_pipeline(&self, key: InstanceKey, pipeline: Option<Arc<Pipeline>>) {
        self.lock().pipelines[key.id as usize] = pipeline;
    }

    pub(super) fn config(&self) -> &InstanceConfig {
        &self.config
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
