//! How each kind of instance is run, from start to gone, as seen by its slot's task:
//! built-in (an in-process renderer pipeline) or command (a child process); x11 instances are
//! in `x11_lifecycle.rs`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::process::{describe_exit, CommandTemplate, InstanceProcess, Placeholders};
use super::slots::{InstanceKey, InstanceSpec};
use super::supervisor::{InstanceConfig, InstanceKind, Supervisor};
use crate::media::builtin::BuiltinSource;
use crate::media::pipeline::{stream_dimension, Pipeline, MAX_HEIGHT, MAX_WIDTH};
use crate::metrics::failure;

/// How an instance ended.
pub(super) enum Ending {
    /// Stopped on request (STOP or agent shutdown).
    Stopped,
    /// Ended on its own; `kind` is a [`failure`] label.
    Failed { kind: &'static str, reason: String },
}

pub(super) async fn drive(
    supervisor: &Arc<Supervisor>,
    key: InstanceKey,
    spec: &InstanceSpec,
    stop: &CancellationToken,
) -> Ending {
    match &supervisor.config().kind {
        InstanceKind::Builtin => drive_builtin(supervisor, key, spec, stop).await,
        InstanceKind::Command(_) => drive_process(supervisor, key, spec, stop).await,
        InstanceKind::X11(_) => super::x11_lifecycle::drive(supervisor, key, spec, stop).await,
    }
}

/// How often a built-in instance's source thread is checked for having died (a panic).
const BUILTIN_HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

async fn drive_builtin(
    supervisor: &Arc<Supervisor>,
    key: InstanceKey,
    spec: &InstanceSpec,
    stop: &CancellationToken,
) -> Ending {
    let config = supervisor.config();
    let api_addr = std::net::SocketAddr::new(config.api_host, config.api_port(key.id));
    let api_listener = match tokio::net::TcpListener::bind(api_addr).await {
        Ok(listener) => listener,
        Err(e) => {
            return Ending::Failed {
                kind: failure::SPAWN_ERROR,
                reason: format!("cannot listen on the instance API port {api_addr}: {e}"),
            }
        }
    };
    let (w, h) = (
        stream_dimension(spec.resolution.width, MAX_WIDTH),
        stream_dimension(spec.resolution.height, MAX_HEIGHT),
    );
    // The first renderer of the process builds its textures (about 0.5 s): not on a runtime worker.
    let source = match tokio::task::spawn_blocking(move || BuiltinSource::new(w, h)).await {
        Ok(source) => source,
        Err(e) => {
            return Ending::Failed {
                kind: failure::RENDERER,
                reason: format!("the built-in renderer failed to start: {e}"),
            }
        }
    };
    let pipeline = Pipeline::start(
        Box::new(source),
        true,
        supervisor.config().pipeline.clone(),
        supervisor.metrics().clone(),
    );
    supervisor.set_pipeline(key, Some(Arc::clone(&pipeline)));
    let api = crate::api::socket::instance_router(
        crate::api::ApiState {
            supervisor: Arc::clone(supervisor),
            require_tokens: config.require_tokens,
        },
        key.id,
    );
    let api_stop = stop.child_token();
    let api_task = tokio::spawn({
        let api_stop = api_stop.clone();
        async move {
            let _ = axum::serve(api_listener, api)
                .with_graceful_shutdown(async move { api_stop.cancelled().await })
                .await;
        }
    });
    // The renderer is ready as soon as it exists; it draws frames whenever someone watches.
    supervisor.mark_running(key);
    let ending = loop {
        tokio::select! {
            _ = stop.cancelled() => break Ending::Stopped,
            _ = tokio::time::sleep(BUILTIN_HEALTH_INTERVAL) => {
                if !pipeline.is_running() {
                    break Ending::Failed { kind: failure::RENDERER, reason: "the built-in renderer stopped unexpectedly".to_owned() };
                }
            }
        }
    };
    supervisor.set_pipeline(key, None);
    api_stop.cancel();
    api_task.abort();
    // Joining the source thread blocks for at most one frame.
    let _ = tokio::task::spawn_blocking(move || pipeline.stop()).await;
    ending
}

async fn drive_process(
    supervisor: &Supervisor,
    key: InstanceKey,
    spec: &InstanceSpec,
    stop: &CancellationToken,
) -> Ending {
    let config = supervisor.config();
    let InstanceKind::Command(template) = &config.kind else {
        return Ending::Failed {
            kind: failure::SPAWN_ERROR,
            reason: "not a command instance".to_owned(),
        };
    };
    let id = key.id;
    let api_port = config.api_port(id);
    if let Err(ending) = api_port_free(config, api_port).await {
        return ending;
    }
    let size = (spec.resolution.width, spec.resolution.height);
    let (mut process, argv) = match spawn_program(
        template,
        id,
        api_port,
        config.program_api_tcp_port(id),
        spec,
        size,
        Vec::new(),
    ) {
        Ok(spawned) => spawned,
        Err(ending) => return ending,
    };
    tracing::info!(
        instance = id,
        pid = process.pid(),
        ?argv,
        "instance spawned"
    );

    tokio::select! {
        biased;
        _ = stop.cancelled() => return end(&mut process, config.stop_grace).await,
        status = process.wait() => return failed_exit(status, "during initialization"),
        _ = tokio::time::sleep(config.start_timeout) => {
            let _ = process.kill().await;
            return Ending::Failed {
                kind: failure::START_TIMEOUT,
                reason: format!(
                    "not ready within the start timeout ({})",
                    humantime::format_duration(config.start_timeout)
                ),
            };
        }
        _ = config.ready.wait(api_port) => {}
    }
    supervisor.mark_running(key);

    tokio::select! {
        biased;
        _ = stop.cancelled() => end(&mut process, config.stop_grace).await,
        status = process.wait() => failed_exit(status, "while running"),
    }
}

/// With `--ready tcp`, another program already on the API port would look like readiness.
pub(super) async fn api_port_free(config: &InstanceConfig, api_port: u16) -> Result<(), Ending> {
    if config.ready.port_taken(api_port).await {
        return Err(Ending::Failed {
            kind: failure::SPAWN_ERROR,
            reason: format!("API port {api_port} is already in use by another program"),
        });
    }
    Ok(())
}

/// Starts `--instance-command` for instance `id` at `width` x `height`, with the instance's
/// variables (id, API port, session) and `extra_env` added to the agent's environment.
/// Returns the process and the command line it was given.
pub(super) fn spawn_program(
    template: &CommandTemplate,
    id: u32,
    api_port: u16,
    api_tcp_port: Option<u16>,
    spec: &InstanceSpec,
    (width, height): (u32, u32),
    extra_env: Vec<(String, String)>,
) -> Result<(InstanceProcess, Vec<String>), Ending> {
    let argv = template.render(&Placeholders {
        id,
        api_port,
        api_tcp_port,
        width,
        height,
        profile: spec.profile.clone(),
    });
    let mut env = vec![
        ("OPENSPACE_INSTANCE_ID".to_owned(), id.to_string()),
        ("OPENSPACE_API_PORT".to_owned(), api_port.to_string()),
    ];
    if let Some(port) = api_tcp_port {
        env.push(("OPENSPACE_API_TCP_PORT".to_owned(), port.to_string()));
    }
    if let Some(session) = &spec.session {
        env.push(("OPENSPACE_SESSION".to_owned(), session.clone()));
    }
    env.extend(extra_env);
    match InstanceProcess::spawn(id, &argv, &env) {
        Ok(process) => Ok((process, argv)),
        Err(e) => Err(Ending::Failed {
            kind: failure::SPAWN_ERROR,
            reason: format!("could not start {:?}: {e}", argv[0]),
        }),
    }
}

pub(super) async fn end(process: &mut InstanceProcess, grace: std::time::Duration) -> Ending {
    match process.terminate(grace).await {
        Ok(status) => {
            tracing::debug!(pid = process.pid(), status = %describe_exit(&status), "instance reaped")
        }
        Err(e) => tracing::warn!(pid = process.pid(), error = %e, "waiting for instance failed"),
    }
    Ending::Stopped
}

pub(super) fn failed_exit(status: std::io::Result<std::process::ExitStatus>, when: &str) -> Ending {
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
