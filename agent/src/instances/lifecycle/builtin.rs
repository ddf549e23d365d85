//! A built-in instance: the software renderer as the picture source of a pipeline in this
//! process, with its instance API served here too.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Ending;
use crate::instances::slots::{InstanceKey, InstanceSpec};
use crate::instances::supervisor::Supervisor;
use crate::media::builtin::BuiltinSource;
use crate::media::pipeline::Pipeline;
use crate::metrics::failure;

/// How often a built-in instance's source thread is checked for having died (a panic).
const BUILTIN_HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) async fn drive(
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
    // Already what this kind streams (InstanceConfig::fit at START and RESOLUTION).
    let (w, h) = (spec.resolution.width, spec.resolution.height);
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
