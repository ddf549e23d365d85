//! How each kind of instance is run, from start to gone, as seen by its slot's task: one file
//! per kind (`builtin.rs`: an in-process renderer pipeline; `command.rs`: a child process;
//! `x11.rs`: a program on a display of its own, captured), each given its own settings, and
//! what they share here (how an instance ended, spawning the program, exit classification).

mod builtin;
mod command;
mod x11;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::kinds::{InstanceConfig, InstanceKind};
use super::process::{describe_exit, CommandTemplate, InstanceProcess, Placeholders};
use super::slots::{InstanceKey, InstanceSpec};
use super::supervisor::Supervisor;
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
        InstanceKind::Builtin => builtin::drive(supervisor, key, spec, stop).await,
        InstanceKind::Command(template) => {
            command::drive(supervisor, key, spec, stop, template).await
        }
        InstanceKind::X11(x11) => x11::drive(supervisor, key, spec, stop, x11).await,
    }
}

/// With `--ready tcp`, another program already on the API port would look like readiness.
async fn api_port_free(config: &InstanceConfig, api_port: u16) -> Result<(), Ending> {
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
fn spawn_program(
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

async fn end(process: &mut InstanceProcess, grace: std::time::Duration) -> Ending {
    match process.terminate(grace).await {
        Ok(status) => {
            tracing::debug!(pid = process.pid(), status = %describe_exit(&status), "instance reaped")
        }
        Err(e) => tracing::warn!(pid = process.pid(), error = %e, "waiting for instance failed"),
    }
    Ending::Stopped
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
