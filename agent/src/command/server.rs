//! The command WebSocket server: one task per connection, any number of messages per connection
//! (one, as the original backend sent, or many), WATCH subscriptions, and every kind of bad input
//! answered without disturbing anyone else.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::handler::{handle, status_answer, watch_answer};
use super::protocol::{self, errors, Answer, MAX_MESSAGE_BYTES};
use crate::auth::BearerToken;
use crate::instances::{SlotView, Supervisor};
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct CommandServerConfig {
    /// When set, the upgrade must carry `Authorization: Bearer <token>`.
    pub token: Option<BearerToken>,
    /// A connection that sends nothing for this long is closed (WATCH peers: no pong).
    pub idle_timeout: Duration,
    /// Connections beyond this are refused with 503 during the handshake.
    pub max_connections: usize,
}

pub struct CommandServer {
    supervisor: Arc<Supervisor>,
    metrics: Metrics,
    config: CommandServerConfig,
    permits: Arc<Semaphore>,
}

type Ws = WebSocketStream<TcpStream>;

impl CommandServer {
    pub fn new(supervisor: Arc<Supervisor>, metrics: Metrics, config: CommandServerConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.max_connections));
        Self {
            supervisor,
            metrics,
            config,
            permits,
        }
    }

    /// Accepts connections until `shutdown` is cancelled.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let this = Arc::clone(&self);
                        tokio::spawn(async move { this.connection(stream).await });
                    }
                    Err(e) => {
                        // Typically EMFILE: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accepting a command connection failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
    }

    async fn connection(self: Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok();
        let admitted = permit.is_some();
        let token = self.config.token.clone();
        // The error type is tungstenite's `Callback` contract, not ours to shrink.
        #[allow(clippy::result_large_err)]
        let check = move |request: &Request, response: Response| {
            if !admitted {
                return Err(refusal(
                    503,
                    "too many command connections; try again later",
                ));
            }
            if let Some(token) = &token {
                let header = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes());
                if !token.accepts(header) {
                    return Err(refusal(401, "missing or wrong bearer token"));
                }
            }
            Ok(response)
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let handshake =
            tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config));
        let ws = match tokio::time::timeout(self.config.idle_timeout, handshake).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "command handshake refused or failed");
                return;
            }
            Err(_) => {
                tracing::debug!("command handshake timed out");
                return;
            }
        };
        self.metrics.command_connections.inc();
        self.converse(ws).await;
        self.metrics.command_connections.dec();
        drop(permit);
    }

    /// Reads requests and writes answers (and WATCH pushes) until the peer goes away.
    async fn converse(&self, mut ws: Ws) {
        let idle = self.config.idle_timeout;
        let mut deadline = Instant::now() + idle;
        let mut watching: Option<broadcast::Receiver<SlotView>> = None;
        let mut keepalive = tokio::time::interval_at(Instant::now() + idle / 2, idle / 2);
        loop {
            let outgoing: Vec<Message> = tokio::select! {
                incoming = tokio::time::timeout_at(deadline, ws.next()) => {
                    let frame = match incoming {
                        Err(_) => {
                            close(&mut ws, CloseCode::Away, "idle timeout").await;
                            return;
                        }
                        Ok(None) => return,
                        Ok(Some(Err(WsError::Capacity(e)))) => {
                            tracing::debug!(error = %e, "command message too big");
                            let reason = format!("message too big (limit {MAX_MESSAGE_BYTES} bytes)");
                            close(&mut ws, CloseCode::Size, &reason).await;
                            return;
                        }
                        Ok(Some(Err(e))) => {
                            tracing::debug!(error = %e, "command connection failed");
                            return;
                        }
                        Ok(Some(Ok(frame))) => frame,
                    };
                    deadline = Instant::now() + idle;
                    match frame {
                        Message::Text(text) => self.on_text(text.as_str(), &mut watching),
                        Message::Binary(_) => vec![text_of(&Answer {
                            error: errors::INVALID_MESSAGE.to_owned(),
                            detail: Some("binary frames are not supported; send JSON text".into()),
                            ..Answer::default()
                        })],
                        Message::Close(_) => return,
                        // tungstenite answers pings itself.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Vec::new(),
                    }
                }
                event = next_event(&mut watching) => match event {
                    Ok(view) => vec![text_of(&status_answer(&view))],
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "WATCH subscriber lagged; resending every slot");
                        let (_, _, views) = self.supervisor.server_status();
                        views.iter().map(|v| text_of(&status_answer(v))).collect()
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        watching = None;
                        Vec::new()
                    }
                },
                _ = keepalive.tick(), if watching.is_some() => vec![Message::Ping(Default::default())],
            };
            for message in outgoing {
                if ws.feed(message).await.is_err() {
                    return;
                }
            }
            if ws.flush().await.is_err() {
                return;
            }
        }
    }

    /// Answers one text message. WATCH also subscribes this connection and sends every slot.
    fn on_text(
        &self,
        text: &str,
        watching: &mut Option<broadcast::Receiver<SlotView>>,
    ) -> Vec<Message> {
        let started = std::time::Instant::now();
        let (label, messages) = match protocol::Request::parse(text) {
            Ok(protocol::Request::Watch) => {
                let (views, receiver) = self.supervisor.watch();
                *watching = Some(receiver);
                let mut messages = vec![text_of(&watch_answer(&self.supervisor))];
                messages.extend(views.iter().map(|v| text_of(&status_answer(v))));
                ("WATCH", messages)
            }
            Ok(request) => {
                let label = request.command();
                let answer = handle(&self.supervisor, request);
                if matches!(label, "START" | "STOP" | "RESOLUTION") {
                    tracing::info!(command = label, id = answer.id, error = %answer.error, "command");
                }
                (label, vec![text_of(&answer)])
            }
            Err(e) => {
                tracing::debug!(error = %e, "bad command message");
                ("invalid", vec![text_of(&e.answer())])
            }
        };
        self.metrics
            .command_seconds
            .with_label_values(&[label])
            .observe(started.elapsed().as_secs_f64());
        messages
    }
}

async fn next_event(
    watching: &mut Option<broadcast::Receiver<SlotView>>,
) -> Result<SlotView, broadcast::error::RecvError> {
    match watching {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

fn text_of(answer: &Answer) -> Message {
    Message::text(answer.to_json())
}

async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The peer may already be gone; there is nothing more to do then.
    let _ = ws.close(Some(frame)).await;
}

fn refusal(status: u16, message: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(format!("{message}\n")));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
    if status == 401 {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}
