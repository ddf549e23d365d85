//! The routes: the start page, the viewer page (the agent's own, embedded), the visitor's
//! session (POST starts, DELETE ends, `/session/events` pushes its view), and `/signaling`, the
//! relay to the session's agent. Every answer is about the caller's own session only.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use openspace_crds::{Phase, Resolution};
use openspace_viewer::asset;
use serde::Deserialize;
use serde_json::json;

use crate::relay::{self, MAX_SIGNALING_BYTES};
use crate::sessions::{SessionError, Sessions};
use crate::view::{view, visitors_session};
use crate::visitor::Visitor;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");

#[derive(Clone)]
pub struct AppState {
    pub sessions: Arc<Sessions>,
    pub secure_cookie: bool,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/session", axum::routing::post(start).delete(end))
        .route("/session/events", get(events))
        .route("/signaling", get(signaling))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
        // The agent's viewer page, whose /signaling this server relays.
        .merge(openspace_viewer::routes())
}

fn visitor(headers: &HeaderMap) -> Option<Visitor> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Visitor::from_cookie_header)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn no_visitor() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "no-visitor",
        "cookies are needed: reload the page".into(),
    )
}

fn not_ready() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "The sessions are not known yet; try again in a moment.".into(),
    )
}

/// The start page; a first visit gets its visitor cookie here.
async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    if visitor(&headers).is_none() {
        if let Ok(value) = HeaderValue::from_str(&Visitor::new().set_cookie(state.secure_cookie)) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
struct StartRequest {
    width: Option<u32>,
    height: Option<u32>,
}

/// The page's window size, within the CRD's bounds and even (video is 4:2:0).
fn resolution(request: &StartRequest) -> Resolution {
    let clamp =
        |v: Option<u32>, default: u32, max: u32| (v.unwrap_or(default).clamp(320, max)) & !1;
    Resolution {
        width: clamp(request.width, 1280, 3840),
        height: clamp(request.height, 720, 2160),
    }
}

async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<StartRequest>>,
) -> Response {
    let Some(visitor) = visitor(&headers) else {
        return no_visitor();
    };
    let request = body.map(|Json(r)| r).unwrap_or(StartRequest {
        width: None,
        height: None,
    });
    match state
        .sessions
        .start_for(&visitor.label(), resolution(&request))
        .await
    {
        Ok(_) => (StatusCode::ACCEPTED, Json(json!({ "error": "none" }))).into_response(),
        Err(SessionError::Full(n)) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "full",
            format!("All {n} sessions are in use. Please try again in a few minutes."),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "creating a session failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The session could not be created; try again.".into(),
            )
        }
    }
}

async fn end(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(visitor) = visitor(&headers) else {
        return no_visitor();
    };
    match state.sessions.end_for(&visitor.label()).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "ending a session failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The session could not be ended; try again.".into(),
            )
        }
    }
}

/// Server-sent events: the visitor's view, now and after every change of it.
async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(visitor) = visitor(&headers) else {
        return no_visitor();
    };
    let label = visitor.label();
    let sessions = Arc::clone(&state.sessions);
    if !sessions.ready().await {
        return not_ready();
    }
    let changes = tokio_stream::wrappers::WatchStream::new(sessions.changes());
    let mut last = None;
    let stream =
        changes.filter_map(move |_| {
            let current = view(&sessions.all(), &label);
            let fresh = last.as_ref() != Some(&current);
            last = Some(current.clone());
            std::future::ready(fresh.then(|| {
                Ok::<_, Infallible>(Event::default().json_data(&current).unwrap_or_default())
            }))
        });
    sse(stream)
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The viewer's signaling, relayed to the agent of the visitor's running session.
async fn signaling(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(visitor) = visitor(&headers) else {
        return no_visitor();
    };
    let sessions = state.sessions.all();
    let target = visitors_session(&sessions, &visitor.label())
        .and_then(|s| s.status.as_ref())
        .filter(|s| s.phase == Some(Phase::Running))
        .and_then(|s| s.url.as_deref())
        .and_then(relay::target);
    match target {
        Some(target) => ws
            .max_message_size(MAX_SIGNALING_BYTES)
            .on_upgrade(move |socket| relay::relay(socket, target)),
        None => error(
            StatusCode::NOT_FOUND,
            "not-running",
            "You have no running session.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_become_even_resolutions_within_bounds() {
        let r = |w, h| {
            resolution(&StartRequest {
                width: w,
                height: h,
            })
        };
        assert_eq!(
            r(Some(1001), Some(601)),
            Resolution {
                width: 1000,
                height: 600
            }
        );
        assert_eq!(
            r(Some(10), Some(100_000)),
            Resolution {
                width: 320,
                height: 2160
            }
        );
        assert_eq!(
            r(None, None),
            Resolution {
                width: 1280,
                height: 720
            }
        );
    }
}
