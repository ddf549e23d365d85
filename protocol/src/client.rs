//! A small async client of the command protocol, for the operator, tools and tests.
//!
//! [`CommandClient`] keeps one connection for many requests; [`call_once`] does what the original
//! backend did (connect, one request, one answer, close) and so works with every server;
//! [`SlotWatch`] follows WATCH pushes on a connection of its own.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::command::{Answer, Request};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("the server refused the connection: HTTP {0}")]
    Refused(u16),
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] WsError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server sent something that is not an answer: {0}")]
    Decode(String),
    #[error("the server answered {got:?} to {sent}")]
    Mismatch {
        sent: &'static str,
        got: Option<String>,
    },
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One connection to a rendering server, for any number of requests.
pub struct CommandClient {
    ws: Ws,
    timeout: Duration,
}

impl CommandClient {
    /// Connects to `url` (`ws://HOST:PORT`), with a bearer token when the server needs one.
    /// `timeout` bounds the connection and every later call.
    pub async fn connect(
        url: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut request = url
            .into_client_request()
            .map_err(|e| ClientError::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| ClientError::InvalidUrl {
                    url: url.to_owned(),
                    reason: "the token is not a valid header value".into(),
                })?;
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        let connect = tokio_tungstenite::connect_async(request);
        let (ws, _) = match tokio::time::timeout(timeout, connect).await {
            Err(_) => return Err(ClientError::Timeout(timeout)),
            Ok(Err(WsError::Http(response))) => {
                return Err(ClientError::Refused(response.status().as_u16()))
            }
            Ok(result) => result?,
        };
        if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
            let _ = stream.set_nodelay(true);
        }
        Ok(Self { ws, timeout })
    }

    /// Sends one request and waits for its answer.
    pub async fn call(&mut self, request: &Request) -> Result<Answer, ClientError> {
        self.send(request).await?;
        let answer = self.next_answer().await?;
        match answer.command.as_deref() {
            Some(c) if c == request.command() => Ok(answer),
            // An answer without `command` is the original's reply to something it could not read.
            None => Ok(answer),
            other => Err(ClientError::Mismatch {
                sent: request.command(),
                got: other.map(str::to_owned),
            }),
        }
    }

    /// Turns this connection into a WATCH subscription. The returned [`SlotWatch`] yields one
    /// STATUS per slot first, then one per change. Servers without WATCH answer with an error,
    /// returned here as `Ok(Err(answer))` so callers can fall back to polling.
    pub async fn watch(mut self) -> Result<Result<SlotWatch, Answer>, ClientError> {
        let answer = self.call(&Request::Watch).await?;
        if !answer.is_ok() {
            return Ok(Err(answer));
        }
        Ok(Ok(SlotWatch {
            ws: self.ws,
            total: answer.total,
        }))
    }

    async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let text =
            serde_json::to_string(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        match tokio::time::timeout(self.timeout, self.ws.send(Message::text(text))).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    async fn next_answer(&mut self) -> Result<Answer, ClientError> {
        match tokio::time::timeout(self.timeout, read_answer(&mut self.ws)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// STATUS pushes of a WATCH subscription.
pub struct SlotWatch {
    ws: Ws,
    /// The server's capacity, from WATCH's answer.
    pub total: Option<u32>,
}

impl SlotWatch {
    /// The next STATUS push; an error when the connection is gone.
    pub async fn next(&mut self) -> Result<Answer, ClientError> {
        read_answer(&mut self.ws).await
    }
}

/// Connect, one request, one answer, close: how the original backend talked, so this works with
/// servers that read only one message per connection.
pub async fn call_once(
    url: &str,
    token: Option<&str>,
    request: &Request,
    timeout: Duration,
) -> Result<Answer, ClientError> {
    let mut client = CommandClient::connect(url, token, timeout).await?;
    let answer = client.call(request).await;
    client.close().await;
    answer
}

async fn read_answer(ws: &mut Ws) -> Result<Answer, ClientError> {
    loop {
        match ws.next().await {
            None | Some(Err(WsError::ConnectionClosed)) => return Err(ClientError::Closed),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| ClientError::Decode(format!("{e}: {}", text.as_str())));
            }
            Some(Ok(Message::Close(_))) => return Err(ClientError::Closed),
            Some(Ok(_)) => continue,
        }
    }
}
