//! `/api/{id}` for instances whose program serves the API itself (command and x11 instances, e.g.
//! the real OpenSpace on 4682 + id): the browser's WebSocket is relayed to the program's, so the
//! viewer page, signaling and the API stay on one origin (one TLS Ingress) and the per-instance
//! ports need not be reachable from outside.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Upstream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type UpstreamSocket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the program's API WebSocket on loopback.
pub async fn connect(port: u16, max_bytes: usize) -> Result<UpstreamSocket, String> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_bytes))
        .max_frame_size(Some(max_bytes));
    let url = format!("ws://127.0.0.1:{port}/");
    tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

/// Relays messages both ways until either side closes.
pub async fn relay(browser: WebSocket, program: UpstreamSocket) {
    let (mut to_browser, mut from_browser) = browser.split();
    let (mut to_program, mut from_program) = program.split();
    loop {
        tokio::select! {
            message = from_browser.next() => {
                let Some(Ok(message)) = message else { break };
                let forwarded = match message {
                    Message::Text(text) => Upstream::text(text.as_str()),
                    Message::Binary(data) => Upstream::binary(data),
                    Message::Close(_) => break,
                    // axum answers pings itself.
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if to_program.send(forwarded).await.is_err() {
                    break;
                }
            }
            message = from_program.next() => {
                let Some(Ok(message)) = message else { break };
                let forwarded = match message {
                    Upstream::Text(text) => Message::Text(text.as_str().into()),
                    Upstream::Binary(data) => Message::Binary(data),
                    Upstream::Close(_) => break,
                    Upstream::Ping(_) | Upstream::Pong(_) | Upstream::Frame(_) => continue,
                };
                if to_browser.send(forwarded).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_program.send(Upstream::Close(None)).await;
    let _ = to_browser
        .send(Message::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: "".into(),
        })))
        .await;
}
