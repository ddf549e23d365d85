//! A browser's WebSocket relayed to an upstream one: the agent's `/api/N` to the instance
//! program's API, the frontend's `/signaling` to the session's agent. Text can be rewritten on
//! the way (the frontend puts the real instance id and token in); binary passes as is.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Upstream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type UpstreamSocket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `url` (`ws://`, or `wss://` with the `tls` feature), refusing messages over `max_bytes`.
pub async fn connect(url: &str, max_bytes: usize) -> Result<UpstreamSocket, String> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_bytes))
        .max_frame_size(Some(max_bytes));
    tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

/// Relays both ways until either side closes; `up` and `down` rewrite text messages going
/// upstream and back to the browser.
pub async fn relay(
    browser: WebSocket,
    upstream: UpstreamSocket,
    up: impl Fn(&str) -> String,
    down: impl Fn(&str) -> String,
) {
    let (mut to_browser, mut from_browser) = browser.split();
    let (mut to_upstream, mut from_upstream) = upstream.split();
    loop {
        tokio::select! {
            message = from_browser.next() => {
                let Some(Ok(message)) = message else { break };
                let forwarded = match message {
                    Message::Text(text) => Upstream::text(up(text.as_str())),
                    Message::Binary(data) => Upstream::binary(data),
                    Message::Close(_) => break,
                    // axum answers pings itself.
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if to_upstream.send(forwarded).await.is_err() {
                    break;
                }
            }
            message = from_upstream.next() => {
                let Some(Ok(message)) = message else { break };
                let forwarded = match message {
                    Upstream::Text(text) => Message::Text(down(text.as_str()).into()),
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
    let _ = to_upstream.send(Upstream::Close(None)).await;
    let _ = to_browser
        .send(Message::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: "".into(),
        })))
        .await;
}
