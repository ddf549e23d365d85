//! The API WebSocket of instances the agent renders, at `/api/{id}` on the HTTP port and on the
//! instance's own port (4682 + id) while it runs, as OpenSpace serves it. For command and x11
//! instances `/api/{id}` relays to the program's own API (proxy.rs). With tokens enforced, a
//! client must add `?token=` (the instance's token from START).

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;

use futures_util::{SinkExt, StreamExt};

use super::topics::{Access, ApiSession};
use crate::instances::Supervisor;

/// Larger API messages are refused (the GUI's are a few hundred bytes).
pub const MAX_API_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct ApiState {
    pub supervisor: Arc<Supervisor>,
    pub require_tokens: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// `/api/{id}` on the HTTP port.
pub async fn by_path(
    State(state): State<ApiState>,
    Path(id): Path<u32>,
    Query(query): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if !state.supervisor.renders_itself() {
        return relay(state, id, query.token, ws).await;
    }
    upgrade(state, id, query.token, ws)
}

/// `/api/{id}` of a program that serves its own API: checked like ours, then relayed.
async fn relay(state: ApiState, id: u32, token: Option<String>, ws: WebSocketUpgrade) -> Response {
    if let Some(refused) = refused(&state, id, token.as_deref()) {
        return refused;
    }
    let running = state
        .supervisor
        .view(id)
        .is_ok_and(|view| view.status == crate::command::SlotStatus::Running);
    if !running {
        return not_running(id);
    }
    let port = state.supervisor.api_port(id);
    match super::proxy::connect(port, MAX_API_BYTES).await {
        Ok(program) => ws
            .max_message_size(MAX_API_BYTES)
            .on_upgrade(move |socket| super::proxy::relay(socket, program)),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("instance {id}'s API (port {port}) does not answer: {e}\n"),
        )
            .into_response(),
    }
}

/// 403 unless the token opens instance `id` (when tokens are enforced).
fn refused(state: &ApiState, id: u32, token: Option<&str>) -> Option<Response> {
    let open =
        !state.require_tokens || token.is_some_and(|t| state.supervisor.token_matches(id, t));
    (!open).then(|| {
        (
            StatusCode::FORBIDDEN,
            "a valid token for this instance is required\n",
        )
            .into_response()
    })
}

fn not_running(id: u32) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("instance {id} is not running here\n"),
    )
        .into_response()
}

/// The instance's own port: every path upgrades.
pub fn instance_router(state: ApiState, id: u32) -> Router {
    Router::new()
        .fallback(
            move |State(state): State<ApiState>,
                  Query(query): Query<TokenQuery>,
                  ws: WebSocketUpgrade| async move { upgrade(state, id, query.token, ws) },
        )
        .with_state(state)
}

fn upgrade(state: ApiState, id: u32, token: Option<String>, ws: WebSocketUpgrade) -> Response {
    if let Some(refused) = refused(&state, id, token.as_deref()) {
        return refused;
    }
    if state.supervisor.pipeline(id).is_none() {
        return not_running(id);
    }
    ws.max_message_size(MAX_API_BYTES)
        .on_upgrade(move |socket| serve(socket, state.supervisor, id))
}

async fn serve(socket: WebSocket, supervisor: Arc<Supervisor>, id: u32) {
    let Some(pipeline) = supervisor.pipeline(id) else {
        return;
    };
    let (sink, stream) = socket.split();
    let incoming = stream
        .take_while(|frame| std::future::ready(!matches!(frame, Ok(Message::Close(_)) | Err(_))))
        .filter_map(|frame| {
            std::future::ready(match frame {
                Ok(Message::Text(text)) => Some(Ok(text.as_str().to_owned())),
                _ => None,
            })
        });
    let outgoing = sink
        .with(|text: String| std::future::ready(Ok::<_, axum::Error>(Message::Text(text.into()))));
    super::connection::serve(
        Box::pin(incoming),
        Box::pin(outgoing),
        ApiSession::new(Access::Open),
        supervisor,
        id,
        pipeline,
    )
    .await;
}
