//! `openspace-frontend`: see the crate docs (src/lib.rs) and README.md.

use clap::Parser;
use openspace_frontend::config::{Config, LogFormat};
use openspace_frontend::http::{router, AppState};
use openspace_frontend::sessions::Sessions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let client = kube::Client::try_default().await?;
    let client_namespace = client.default_namespace().to_owned();
    let sessions = Sessions::start(client, config.clone());
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let namespace = config
        .namespace
        .clone()
        .unwrap_or_else(|| client_namespace.clone());
    tracing::info!(listen_addr = %listener.local_addr()?, %namespace, "frontend listening");
    let app = router(AppState {
        sessions,
        secure_cookie: config.secure_cookie,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        })
        .await?;
    Ok(())
}
