//! The supervisor: the slot table behind a lock, one task per instance that runs its process
//! through INITIALIZING -> RUNNING -> gone, and a broadcast of every slot change for WATCH.
//!
//! Commands change the table synchronously (so answers are immediate and concurrent STARTs can
//! never share a slot); each instance task then acts on its own process and reports back.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::process::{describe_exit, CommandTemplate, InstanceProcess, Placeholders};
use super::readiness::ReadyCheck;
use super::slots::{
    InstanceKey, InstanceSpec, Resolution, SlotError, SlotTable, SlotView, Started, StopOutcome,
};
use crate::command::protocol::StartRequest;
use crate::metrics::{failure, Metrics};

/// How instances are run; fixed at start-up.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub capacity: u32,
    pub template: CommandTemplate,
    pub api_base_port: u16,
    pub ready: ReadyCheck,
    pub stop_grace: Duration,
    pub start_timeout: Duration,
    pub default_resolution: Resolution,
    pub default_profile: String,
}

impl InstanceConfig {
    /// 4682 + id by default; config validation guarantees it fits.
    pub fn api_port(&self, id: u32) -> u16 {
        self.api_base_port.saturating_add(id as u16)
    }
}

/// Slot changes buffered per WATCH subscriber before it counts as lagging (and is resynced).
const EVENT_BUFFER: usize = 1024;

pub struct Supervisor {
    config: InstanceConfig,
    metrics: Metrics,
    state: Mutex<State>,
    events: broadcast::Sender<SlotView>,
    tasks: TaskTracker,
}

struct State {
    table: SlotTable,
    /// Cancelled to stop the current instance of each slot.
    stop_tokens: Vec<Option<CancellationToken>>,
    shutting_down: bool,
}

/// How an instance's process ended.
enum Ending {
    /// Stopped on request (STOP or agent shutdown).
    Stopped,
    /// Ended on its own; `kind` is a [`failure`] label.
    Failed { kind: &'static str, reason: String },
}

impl Supervisor {
    pub fn new(config: InstanceConfig, metrics: Metrics) -> Arc<Self> {
        let capacity = config.capacity;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let supervisor = Arc::new(Self {
            config,
            metrics,
            state: Mutex::new(State {
                table: SlotTable::new(capacity),
                stop_tokens: vec![None; capacity as usize],
                shutting_down: false,
            }),
            events,
            tasks: TaskTracker::new(),
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

    /// START: takes the lowest idle slot and launches its instance. Returns the slot id and
    /// whether the session already held it (nothing new started).
    pub fn start(self: &Arc<Self>, request: StartRequest) -> Result<(u32, bool), SlotError> {
        let resolution = match (request.width, request.height) {
            (Some(width), Some(height)) => Resolution { width, height },
            _ => self.config.default_resolution,
        };
        let spec = InstanceSpec {
            session: request.session,
            resolution,
            profile: request
                .profile
                .unwrap_or_else(|| self.config.default_profile.clone()),
        };
        let mut state = self.lock();
        if state.shutting_down {
            return Err(SlotError::ShuttingDown);
        }
        let key = match state.table.start(spec.clone())? {
            Started::Existing(id) => return Ok((id, true)),
            Started::New(key) => key,
        };
        let token = CancellationToken::new();
        state.stop_tokens[key.id as usize] = Some(token.clone());
        self.publish(&state, key.id);
        self.metrics.starts.inc();
        drop(state);
        let this = Arc::clone(self);
        self.tasks
            .spawn(async move { this.run(key, spec, token).await });
        Ok((key.id, false))
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

    pub fn set_resolution(&self, id: u32, resolution: Resolution) -> Result<(), SlotError> {
        let mut state = self.lock();
        state.table.set_resolution(id, resolution)?;
        self.publish(&state, id);
        Ok(())
    }

    pub fn view(&self, id: u32) -> Result<SlotView, SlotError> {
        self.lock().table.view(id)
    }

    /// SERVER_STATUS: (busy slots, every slot).
    pub fn server_status(&self) -> (u32, Vec<SlotView>) {
        let state = self.lock();
        (state.table.busy(), state.table.views())
    }

    /// Every slot now, and every change from now on, with nothing missed in between.
    pub fn watch(&self) -> (Vec<SlotView>, broadcast::Receiver<SlotView>) {
        let state = self.lock();
        (state.table.views(), self.events.subscribe())
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
            let _ = self.events.send(view);
        }
        self.update_gauges(&state.table);
    }

    fn update_gauges(&self, table: &SlotTable) {
        self.metrics.set_slot_counts(|status| table.count(status));
    }

    /// One instance, from spawn to reaped.
    async fn run(self: Arc<Self>, key: InstanceKey, spec: InstanceSpec, stop: CancellationToken) {
        let ending = self.drive(key, &spec, &stop).await;
        let mut state = self.lock();
        let reason = match ending {
            Ending::Stopped => {
                self.metrics.stops.inc();
                tracing::info!(instance = key.id, "instance stopped");
                None
            }
            Ending::Failed { kind, reason } => {
                self.metrics.failures.with_label_values(&[kind]).inc();
                tracing::warn!(instance = key.id, session = ?spec.session, %reason, "instance failed");
                Some(reason)
            }
        };
        if state.table.exited(key, reason) {
            state.stop_tokens[key.id as usize] = None;
            self.publish(&state, key.id);
        }
    }

    async fn drive(
        &self,
        key: InstanceKey,
        spec: &InstanceSpec,
        stop: &CancellationToken,
    ) -> Ending {
        let id = key.id;
        let api_port = self.config.api_port(id);
        if self.config.ready.port_taken(api_port).await {
            return Ending::Failed {
                kind: failure::SPAWN_ERROR,
                reason: format!("API port {api_port} is already in use by another program"),
            };
        }
        let argv = self.config.template.render(&Placeholders {
            id,
            api_port,
            width: spec.resolution.width,
            height: spec.resolution.height,
            profile: spec.profile.clone(),
        });
        let mut env = vec![
            ("OPENSPACE_INSTANCE_ID".to_owned(), id.to_string()),
            ("OPENSPACE_API_PORT".to_owned(), api_port.to_string()),
        ];
        if let Some(session) = &spec.session {
            env.push(("OPENSPACE_SESSION".to_owned(), session.clone()));
        }
        let mut process = match InstanceProcess::spawn(id, &argv, &env) {
            Ok(p) => p,
            Err(e) => {
                return Ending::Failed {
                    kind: failure::SPAWN_ERROR,
                    reason: format!("could not start {:?}: {e}", argv[0]),
                }
            }
        };
        tracing::info!(
            instance = id,
            pid = process.pid(),
            ?argv,
            "instance spawned"
        );

        tokio::select! {
            biased;
            _ = stop.cancelled() => return self.end(&mut process).await,
            status = process.wait() => return failed_exit(status, "during initialization"),
            _ = tokio::time::sleep(self.config.start_timeout) => {
                let _ = process.kill().await;
                return Ending::Failed {
                    kind: failure::START_TIMEOUT,
                    reason: format!(
                        "not ready within the start timeout ({})",
                        humantime::format_duration(self.config.start_timeout)
                    ),
                };
            }
            _ = self.config.ready.wait(api_port) => {}
        }
        {
            let mut state = self.lock();
            if state.table.mark_running(key) {
                tracing::info!(instance = id, "instance running");
                self.publish(&state, id);
            }
        }

        tokio::select! {
            biased;
            _ = stop.cancelled() => self.end(&mut process).await,
            status = process.wait() => failed_exit(status, "while running"),
        }
    }

    async fn end(&self, process: &mut InstanceProcess) -> Ending {
        match process.terminate(self.config.stop_grace).await {
            Ok(status) => {
                tracing::debug!(pid = process.pid(), status = %describe_exit(&status), "instance reaped")
            }
            Err(e) => {
                tracing::warn!(pid = process.pid(), error = %e, "waiting for instance failed")
            }
        }
        Ending::Stopped
    }
}

fn failed_exit(status: std::io::Result<std::process::ExitStatus>, when: &str) -> Ending {
    match status {
        Ok(status) => Ending::Failed {
            kind: if status.code().is_some() {
                failure::EXIT
            } else {
                failure::SIGNAL
            },
            reason: format!("{} {when}", describe_exit(&status)),
        },
        Err(e) => Ending::Failed {
            kind: failure::EXIT,
            reason: format!("lost track of the process {when}: {e}"),
        },
    }
}
