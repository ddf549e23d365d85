//! Signaling over WebSocket, the same on the dedicated port (8443) and at `/signaling` on the
//! HTTP port: one task per connection pumps frames between the socket and the hub.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::hub::{Connection, Hub};
use super::protocol::{self, MAX_SIGNALING_BYTES};

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);
/// Open signaling connections (both ports together), and the most allowed.
static OPEN: AtomicU64 = AtomicU64::new(0);
const MAX_CONNECTIONS: u64 = 2048;

#[derive(Debug, Default, Deserialize)]
pub struct SignalingQuery {
    /// Instance token, for clients that cannot put it into their messages.
    pub token: Option<String>,
}

/// The axum handler: upgrades and serves one signaling connection.
pub async fn upgrade(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<SignalingQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if OPEN.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too many signaling connections; try again later\n",
        )
            .into_response();
    }
    ws.max_message_size(MAX_SIGNALING_BYTES)
        .max_frame_size(MAX_SIGNALING_BYTES)
        .on_upgrade(move |socket| serve(hub, socket, peer, query.token))
}

async fn serve(hub: Arc<Hub>, socket: WebSocket, peer: SocketAddr, url_token: Option<String>) {
    OPEN.fetch_add(1, Ordering::Relaxed);
    let (outbox, mut outgoing) = mpsc::unbounded_channel::<String>();
    let conn = Connection::new(
        NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
        outbox,
        Some(peer.ip()),
        url_token,
    );
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(text) = outgoing.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(Message::Text(text)) => hub.handle(&conn, text.as_str()),
            Ok(Message::Binary(_)) => {
                let _ = conn.outbox.send(protocol::error(
                    conn.error_form(),
                    "binary frames are not supported; send JSON text",
                ));
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(e) => {
                // Over-long frames end here too: tell the peer why before the socket goes.
                tracing::debug!(error = %e, "signaling connection ended");
                break;
            }
        }
    }
    hub.disconnect(conn.id);
    drop(conn);
    let _ = writer.await;
    OPEN.fetch_sub(1, Ordering::Relaxed);
}
