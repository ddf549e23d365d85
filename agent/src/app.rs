//! Wires the parts together and runs them until a shutdown signal, then stops every instance.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::command::server::CommandServer;
use crate::config::Config;
use crate::instances::Supervisor;
use crate::metrics::Metrics;
use crate::signaling::Hub;
use crate::stream::ViewerDeps;
use crate::web::{self, WebState};

/// Viewers per instance, beyond which SESSION is refused.
const MAX_VIEWERS_PER_INSTANCE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr} for {what}: {source}")]
    Listen {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs the agent until `shutdown` resolves, then stops all instances gracefully and returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    let metrics = Metrics::new();
    let ready = Arc::new(AtomicBool::new(false));
    let stop_serving = CancellationToken::new();

    let command_listener = bind("command", config.command_listen).await?;
    let http_listener = bind("http", config.http_listen).await?;
    let signaling_listener = bind("signaling", config.signaling_listen).await?;
    let signaling_addr = signaling_listener
        .local_addr()
        .unwrap_or(config.signaling_listen);
    let require_tokens = config.command.token.is_some();
    let command_addr = command_listener
        .local_addr()
        .unwrap_or(config.command_listen);
    let http_addr = http_listener.local_addr().unwrap_or(config.http_listen);

    let capacity = config.instances.capacity;
    let api_host = config.instances.api_host;
    let supervisor = Supervisor::new(config.instances, metrics.clone());
    let server = Arc::new(CommandServer::new(
        Arc::clone(&supervisor),
        metrics.clone(),
        config.command,
    ));
    let command_task = tokio::spawn(server.serve(command_listener, stop_serving.clone()));

    let deps = Arc::new(ViewerDeps {
        supervisor: Arc::clone(&supervisor),
        webrtc: config.stream.webrtc,
        metrics: metrics.clone(),
        codec: config.stream.codec,
        encoders: config.stream.encoders,
        all_control: config.stream.all_viewers_control,
    });
    let hub = Hub::new(deps, require_tokens, MAX_VIEWERS_PER_INSTANCE);
    let router = web::router(
        WebState {
            metrics: metrics.clone(),
            ready: Arc::clone(&ready),
        },
        Arc::clone(&hub),
        crate::api::ApiState {
            supervisor: Arc::clone(&supervisor),
            require_tokens,
        },
    );
    let http_task = serve_http("HTTP", http_listener, router, stop_serving.clone());
    let tcp_api_tasks = serve_tcp_api(
        config.api_tcp,
        api_host,
        capacity,
        crate::api::ApiState {
            supervisor: Arc::clone(&supervisor),
            require_tokens,
        },
        stop_serving.clone(),
    )
    .await;
    let signaling_task = serve_http(
        "signaling",
        signaling_listener,
        web::signaling_router(hub),
        stop_serving.clone(),
    );

    ready.store(true, Ordering::Release);
    tracing::info!(%command_addr, %http_addr, %signaling_addr, capacity, "openspace-agent listening");

    shutdown.await;
    tracing::info!("shutting down: stopping every instance");
    ready.store(false, Ordering::Release);
    supervisor.shutdown().await;
    stop_serving.cancel();
    let _ = command_task.await;
    let _ = http_task.await;
    let _ = signaling_task.await;
    for task in tcp_api_tasks {
        let _ = task.await;
    }
    tracing::info!("all instances stopped; bye");
    Ok(())
}

fn serve_http(
    what: &'static str,
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "{what} server failed");
        }
    })
}

/// Each instance's TCP API port (`api::tcp`). A port that is taken leaves that instance without
/// a TCP API (logged), rather than the agent without a start: the port is an extra door.
async fn serve_tcp_api(
    config: crate::api::flags::ApiTcpConfig,
    host: std::net::IpAddr,
    capacity: u32,
    state: crate::api::ApiState,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for id in 0..capacity {
        let Some(port) = config.port(id) else {
            break;
        };
        let addr = std::net::SocketAddr::new(host, port);
        match TcpListener::bind(addr).await {
            Ok(listener) => {
                let api = crate::api::tcp::TcpApi {
                    id,
                    program_port: config.program_port(id),
                };
                tracing::info!(id, %addr, "TCP API listening");
                tasks.push(tokio::spawn(crate::api::tcp::serve(
                    listener,
                    api,
                    state.clone(),
                    stop.clone(),
                )));
            }
            Err(e) => {
                tracing::warn!(id, %addr, error = %e, "no TCP API for this instance: cannot listen")
            }
        }
    }
    tasks
}

async fn bind(what: &'static str, addr: std::net::SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Listen { what, addr, source })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers we can only wait for Ctrl-C the portable way.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
