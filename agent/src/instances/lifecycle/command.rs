//! A command instance: any program from `--instance-command` as a child process, which streams
//! by itself; ready when `--ready` says so.

use tokio_util::sync::CancellationToken;

use super::{api_port_free, end, failed_exit, spawn_program, Ending};
use crate::instances::process::CommandTemplate;
use crate::instances::slots::{InstanceKey, InstanceSpec};
use crate::instances::supervisor::Supervisor;
use crate::metrics::failure;

pub(super) async fn drive(
    supervisor: &Supervisor,
    key: InstanceKey,
    spec: &InstanceSpec,
    stop: &CancellationToken,
    template: &CommandTemplate,
) -> Ending {
    let config = supervisor.config();
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
