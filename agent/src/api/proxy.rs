//! `/api/{id}` for instances whose program serves the API itself (command and x11 instances, e.g.
//! the real OpenSpace on 4682 + id): the browser's WebSocket is relayed to the program's, so the
//! viewer page, signaling and the API stay on one origin (one TLS Ingress) and the per-instance
//! ports need not be reachable from outside.

use axum::extract::ws::WebSocket;
use openspace_viewer::relay::{self, UpstreamSocket};

/// Opens the program's API WebSocket on loopback.
pub async fn connect(port: u16, max_bytes: usize) -> Result<UpstreamSocket, String> {
    relay::connect(&format!("ws://127.0.0.1:{port}/"), max_bytes).await
}

/// Relays messages both ways, unchanged, until either side closes.
pub async fn relay(browser: WebSocket, program: UpstreamSocket) {
    relay::relay(browser, program, str::to_owned, str::to_owned).await;
}
