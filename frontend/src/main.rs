//! `openspace-frontend`: see the crate docs (src/lib.rs) and README.md.

use clap::Parser;
use openspace_frontend::config::Config;
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
    if config.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let client = kube::Client::try_default().await?;
    let sessions = Sessions::start(client, config.clone());
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen_addr = %listener.local_addr()?, namespace = %config.namespace(), "frontend listening");
    let app = router(AppState {
        sessions,
        secure_cookie: config.secure_cookie,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    Ok(())
}
