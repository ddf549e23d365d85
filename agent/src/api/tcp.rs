//! The TCP API of each instance, as OpenSpace serves it on port 4681 for its Python client
//! (`openspace-api` on PyPI): newline-delimited JSON, the same topics as the WebSocket. Instance
//! N listens on `--api-tcp-base-port` + N for the agent's lifetime.
//!
//! - Built-in instances: served here (`api::connection`). With tokens enforced, nothing but
//!   `authorize` (`{"password": <the instance's viewer token>}`) is answered until it succeeds
//!   (as OpenSpace's `connection.cpp` does for clients that are not on its allow list); three
//!   wrong passwords close the connection.
//! - Command and x11 instances whose program serves its own TCP API on loopback at
//!   `--program-api-tcp-base-port` + N: the agent checks the token the same way (answering that
//!   `authorize` itself), then relays bytes both ways unchanged, as `/api/{id}` relays the
//!   WebSocket (`api::proxy`).
//!
//! Lines over [`MAX_LINE_BYTES`] end the connection with an error; each connection is its own
//! task, so a slow or vanished client holds up no one else.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;

use super::connection::{self, SEND_TIMEOUT};
use super::topics::{self, Access, ApiSession};
use super::ApiState;
use crate::command::SlotStatus;

/// The longest line a client may send (the Python client's are a few hundred bytes).
pub const MAX_LINE_BYTES: usize = super::socket::MAX_API_BYTES;
/// Connections per instance port at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 32;
/// A relayed client must authorize within this.
const AUTHORIZE_TIMEOUT: Duration = Duration::from_secs(30);

type Lines = FramedRead<tokio::net::tcp::OwnedReadHalf, LinesCodec>;
type Writer = FramedWrite<tokio::net::tcp::OwnedWriteHalf, LinesCodec>;

/// Where instance `id`'s TCP API relays to, if its program serves one.
#[derive(Debug, Clone, Copy)]
pub struct TcpApi {
    pub id: u32,
    /// The program's own TCP API port on loopback (command and x11 instances).
    pub program_port: Option<u16>,
}

/// Accepts connections on `listener` until `stop`.
pub async fn serve(listener: TcpListener, api: TcpApi, state: ApiState, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(id = api.id, error = %e, "TCP API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (state, stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = connection_task(stream, api, state) => {}
            }
            drop(permit);
        });
    }
}

fn why(e: LinesCodecError) -> String {
    match e {
        LinesCodecError::MaxLineLengthExceeded => {
            format!("a line is longer than {MAX_LINE_BYTES} bytes")
        }
        LinesCodecError::Io(e) => format!("cannot read the line: {e}"),
    }
}

async fn connection_task(stream: TcpStream, api: TcpApi, state: ApiState) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
    let mut writer = FramedWrite::new(write, LinesCodec::new());
    let supervisor = Arc::clone(&state.supervisor);
    let id = api.id;
    let access = || {
        if state.require_tokens {
            let supervisor = Arc::clone(&supervisor);
            Access::Password(Box::new(move |p| supervisor.token_matches(id, p)))
        } else {
            Access::Open
        }
    };
    if supervisor.renders_itself() {
        let Some(pipeline) = supervisor.pipeline(id) else {
            return refuse(
                &mut writer,
                &format!("instance {id} is not running here"),
                404,
            )
            .await;
        };
        let incoming = lines.map(|line| line.map_err(why));
        connection::serve(
            incoming,
            writer,
            ApiSession::new(access()),
            supervisor,
            id,
            pipeline,
        )
        .await;
        return;
    }
    let Some(port) = api.program_port else {
        let message = format!(
            "instance {id}'s program has no TCP API here (the agent's --program-api-tcp-base-port is unset)"
        );
        return refuse(&mut writer, &message, 404).await;
    };
    let running = supervisor
        .view(id)
        .is_ok_and(|v| v.status == SlotStatus::Running);
    if !running {
        return refuse(
            &mut writer,
            &format!("instance {id} is not running here"),
            404,
        )
        .await;
    }
    relay(lines, writer, ApiSession::new(access()), port, id).await;
}

/// One error line the clients can read, then close.
async fn refuse(writer: &mut Writer, message: &str, code: u16) {
    let line = topics::error(None, message, code, serde_json::json!({}));
    let _ = tokio::time::timeout(SEND_TIMEOUT, writer.send(line)).await;
}

/// Answers `authorize` until it succeeds (passing lines without a topic, such as the
/// handshake, on to the program afterwards), then relays bytes both ways unchanged.
async fn relay(mut lines: Lines, mut writer: Writer, mut gate: ApiSession, port: u16, id: u32) {
    let mut early = Vec::new();
    while !gate.is_authorized() {
        let line = match tokio::time::timeout(AUTHORIZE_TIMEOUT, lines.next()).await {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(e))) => return refuse(&mut writer, &why(e), 400).await,
            Ok(None) | Err(_) => return,
        };
        let outcome = gate.authorize_only(&line);
        if outcome.replies.is_empty() && !line.contains("\"topic\"") {
            early.push(line);
        }
        for reply in outcome.replies {
            if !matches!(
                tokio::time::timeout(SEND_TIMEOUT, writer.send(reply)).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
        if outcome.close {
            return;
        }
    }
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut program = match tokio::time::timeout(SEND_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(program)) => program,
        Ok(Err(e)) => {
            let message = format!("instance {id}'s TCP API ({upstream}) does not answer: {e}");
            return refuse(&mut writer, &message, 502).await;
        }
        Err(_) => {
            let message = format!("instance {id}'s TCP API ({upstream}) does not answer");
            return refuse(&mut writer, &message, 502).await;
        }
    };
    let parts = lines.into_parts();
    let mut head: Vec<u8> = early.join("\n").into_bytes();
    if !head.is_empty() {
        head.push(b'\n');
    }
    head.extend_from_slice(&parts.read_buf);
    let Ok(mut client) = parts.io.reunite(writer.into_inner()) else {
        return;
    };
    use tokio::io::AsyncWriteExt;
    if program.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut program).await;
}
