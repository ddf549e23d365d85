//! One API connection to a built-in instance, whatever carries it (WebSocket messages or TCP
//! lines): feeds each message to the pure [`ApiSession`], applies what it asks (camera input,
//! property writes shared with the instance's other connections), streams `time` every 50 ms
//! and `subscribe` updates, and stops the camera when the connection ends if this connection
//! set it moving. A client that does not read for [`SEND_TIMEOUT`] is dropped; it only ever
//! holds up its own task.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::instance::SharedScene;
use super::topics::ApiSession;
use crate::instances::Supervisor;
use crate::media::pipeline::Pipeline;

/// timetopic.cpp's `TimeUpdateInterval`.
const TICK: Duration = Duration::from_millis(50);
/// How often the connection checks that its instance still runs.
const ALIVE_CHECK: Duration = Duration::from_millis(250);
/// A reply not taken by the client within this ends the connection.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A message from the client, or why reading failed (the reply it gets before closing).
pub type Incoming = Result<String, String>;

/// Serves `session` until the client goes, the session asks to close, or the instance stops.
pub async fn serve<I, O>(
    mut incoming: I,
    mut outgoing: O,
    mut session: ApiSession,
    supervisor: Arc<Supervisor>,
    id: u32,
    pipeline: Arc<Pipeline>,
) where
    I: Stream<Item = Incoming> + Unpin,
    O: Sink<String> + Unpin,
{
    let shared: Arc<SharedScene> = supervisor.api_scenes().get(&supervisor, id, &pipeline);
    let mut changes = shared.changes();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut alive = tokio::time::interval(ALIVE_CHECK);
    loop {
        let replies = tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(text)) => {
                    let outcome = session.handle(&text, &shared.world(&supervisor, id));
                    for (uri, value) in &outcome.sets {
                        if let Some(event) = shared.set(uri, value) {
                            pipeline.input(event);
                        }
                    }
                    for event in outcome.input {
                        pipeline.input(event);
                    }
                    if outcome.close {
                        let _ = send_all(&mut outgoing, outcome.replies).await;
                        break;
                    }
                    outcome.replies
                }
                Some(Err(why)) => {
                    let reply = super::topics::error(None, &why, 400, serde_json::json!({}));
                    let _ = send_all(&mut outgoing, vec![reply]).await;
                    break;
                }
                None => break,
            },
            change = changes.recv() => match change {
                Ok(uri) => session.changed(uri, &shared.world(&supervisor, id)),
                Err(RecvError::Lagged(_)) => Vec::new(),
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick(), if session.wants_ticks() => {
                session.tick(&shared.world(&supervisor, id))
            }
            _ = alive.tick() => {
                let current = supervisor.pipeline(id);
                if !current.is_some_and(|p| Arc::ptr_eq(&p, &pipeline)) {
                    break;
                }
                Vec::new()
            }
        };
        if !send_all(&mut outgoing, replies).await {
            break;
        }
    }
    for event in session.on_close() {
        pipeline.input(event);
    }
    let _ = tokio::time::timeout(SEND_TIMEOUT, outgoing.close()).await;
}

/// Sends `replies` in order; false when the client is gone or does not read.
async fn send_all<O: Sink<String> + Unpin>(outgoing: &mut O, replies: Vec<String>) -> bool {
    for reply in replies {
        match tokio::time::timeout(SEND_TIMEOUT, outgoing.send(reply)).await {
            Ok(Ok(())) => {}
            _ => return false,
        }
    }
    true
}
