//! The signaling hub: who is registered, who is paired with whom, and which session requests
//! wait for their callee. It behaves like the original Node.js server for external peers, and
//! adds the agent's own peers: instance N that the agent streams (built-in renderer) is caller
//! id N, answered by a viewer session of `stream::viewer` instead of a socket.
//!
//! Id mapping (as the original): instance N is caller N; the original Web GUI registers as
//! 100 + N and is served by instance N without asking; our viewer page registers under a random
//! id and sends SESSION with content N.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtc::peer_connection::transport::RTCIceCandidateInit;
use serde_json::Value;
use tokio::sync::mpsc;

use super::protocol::{self, ErrorForm, PeerMessage, RelayKind, REGISTER_REPLY, SESSION_OK};
use crate::media::encoder::Codec;
use crate::stream::{FromBrowser, ToBrowser, ViewerDeps};

/// A connection's outbox: text frames to send.
pub type Outbox = mpsc::UnboundedSender<String>;

/// Queued session requests expire after this (the original kept them forever).
const QUEUE_TTL: Duration = Duration::from_secs(120);
/// Session requests one peer may have waiting at once.
const MAX_QUEUED_PER_PEER: usize = 16;
/// The original Web GUI's id for instance N.
const GUI_ID_OFFSET: i64 = 100;
/// The original Web GUI creates its answer only after this many remote candidates.
const MIN_GUI_CANDIDATES: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partner {
    External(i64),
    Instance(u32),
}

struct Peer {
    conn: u64,
    outbox: Outbox,
    errors: ErrorForm,
}

struct ViewerLink {
    generation: u64,
    inbound: mpsc::Sender<FromBrowser>,
}

#[derive(Default)]
struct State {
    peers: HashMap<i64, Peer>,
    partners: HashMap<i64, Partner>,
    /// (requester, callee, when)
    queued: Vec<(i64, i64, Instant)>,
    viewers: HashMap<i64, ViewerLink>,
    next_generation: u64,
}

/// What a connection knows about itself.
pub struct Connection {
    pub id: u64,
    pub outbox: Outbox,
    /// How this connection wants errors; JSON once its REGISTER asked for them.
    errors: std::sync::Mutex<ErrorForm>,
    pub peer_ip: Option<IpAddr>,
    /// A token from the URL (`?token=`), for clients that cannot add it to messages.
    pub url_token: Option<String>,
}

impl Connection {
    pub fn new(
        id: u64,
        outbox: Outbox,
        peer_ip: Option<IpAddr>,
        url_token: Option<String>,
    ) -> Self {
        Self {
            id,
            outbox,
            errors: std::sync::Mutex::new(ErrorForm::default()),
            peer_ip,
            url_token,
        }
    }

    pub fn error_form(&self) -> ErrorForm {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_error_form(&self, form: ErrorForm) {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner()) = form;
    }
}

pub struct Hub {
    state: Mutex<State>,
    deps: Arc<ViewerDeps>,
    /// Viewers must present the instance's token (the agent runs with --token-file).
    require_tokens: bool,
    max_viewers: usize,
}

impl Hub {
    pub fn new(deps: Arc<ViewerDeps>, require_tokens: bool, max_viewers: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            deps,
            require_tokens,
            max_viewers,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one text frame from `conn`.
    pub fn handle(self: &Arc<Self>, conn: &Connection, text: &str) {
        let reply = |message: String| {
            let _ = conn
                .outbox
                .send(protocol::error(conn.error_form(), &message));
        };
        match protocol::parse(text) {
            Err(e) => reply(e),
            Ok(PeerMessage::Register {
                caller_id,
                token,
                json_errors,
            }) => {
                if json_errors {
                    conn.set_error_form(ErrorForm::Json);
                }
                if let Err(e) =
                    self.register(conn, caller_id, token.or_else(|| conn.url_token.clone()))
                {
                    reply(e);
                }
            }
            Ok(PeerMessage::Session {
                caller_id,
                other,
                token,
                codec,
            }) => {
                let token = token.or_else(|| conn.url_token.clone());
                let codec = codec
                    .as_deref()
                    .map(str::parse::<Codec>)
                    .transpose()
                    .map_err(|e| e.to_string());
                let result =
                    codec.and_then(|codec| self.session(conn, caller_id, other, token, codec));
                if let Err(e) = result {
                    reply(e);
                }
            }
            Ok(PeerMessage::Relay {
                kind,
                caller_id,
                content,
            }) => {
                if let Err(e) = self.relay(conn, kind, caller_id, &content, text) {
                    reply(e);
                }
            }
        }
    }

    /// The connection is gone: its registrations, queued requests and viewers go with it.
    pub fn disconnect(&self, conn: u64) {
        let mut state = self.lock();
        let ids: Vec<i64> = state
            .peers
            .iter()
            .filter(|(_, p)| p.conn == conn)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            state.peers.remove(&id);
            state.viewers.remove(&id); // dropping the inbound sender ends the viewer
            state.queued.retain(|(from, _, _)| *from != id);
            // Keep a pairing while the other side is still there (so a refresh re-forms it);
            // forget it once both sides are gone, and always for the agent's own instances.
            match state.partners.get(&id).copied() {
                Some(Partner::Instance(_)) => {
                    state.partners.remove(&id);
                }
                Some(Partner::External(other)) if !state.peers.contains_key(&other) => {
                    state.partners.remove(&id);
                    state.partners.remove(&other);
                }
                _ => {}
            }
        }
    }

    /// Whether the agent itself streams instance `id` (so caller id `id` is ours).
    fn streams(&self, id: i64) -> Option<u32> {
        let id = u32::try_from(id).ok()?;
        (id < self.deps.supervisor.capacity() && self.deps.supervisor.streams_itself())
            .then_some(id)
    }

    fn register(
        self: &Arc<Self>,
        conn: &Connection,
        id: i64,
        token: Option<String>,
    ) -> Result<(), String> {
        if self.streams(id).is_some() {
            return Err(format!(
                "forbidden: caller id {id} is instance {id}, which this agent streams itself"
            ));
        }
        let instance_id = u32::try_from(id)
            .ok()
            .filter(|i| *i < self.deps.supervisor.capacity());
        if instance_id.is_some()
            && self.require_tokens
            && !conn.peer_ip.is_some_and(|ip| ip.is_loopback())
        {
            return Err(format!(
                "forbidden: only programs on this host may register as instance {id}"
            ));
        }
        let mut state = self.lock();
        // One registration per connection: a new id replaces this connection's old one.
        let old: Vec<i64> = state
            .peers
            .iter()
            .filter(|(i, p)| p.conn == conn.id && **i != id)
            .map(|(i, _)| *i)
            .collect();
        for old in old {
            state.peers.remove(&old);
            state.viewers.remove(&old);
        }
        state.viewers.remove(&id);
        state.peers.insert(
            id,
            Peer {
                conn: conn.id,
                outbox: conn.outbox.clone(),
                errors: conn.error_form(),
            },
        );
        let _ = conn.outbox.send(REGISTER_REPLY.to_owned());

        let now = Instant::now();
        state
            .queued
            .retain(|(_, _, at)| now.duration_since(*at) < QUEUE_TTL);
        let waiting: Vec<i64> = state
            .queued
            .iter()
            .filter(|(_, to, _)| *to == id)
            .map(|(from, _, _)| *from)
            .collect();
        if !waiting.is_empty() {
            state.queued.retain(|(_, to, _)| *to != id);
            for from in waiting {
                state.partners.insert(from, Partner::External(id));
                state.partners.insert(id, Partner::External(from));
                if let Some(peer) = state.peers.get(&from) {
                    let _ = peer.outbox.send(SESSION_OK.to_owned());
                }
            }
            return Ok(());
        }
        match state.partners.get(&id).copied() {
            // A page refresh: tell the partner to negotiate again, as the original did.
            Some(Partner::External(partner)) => {
                if let Some(peer) = state.peers.get(&partner) {
                    let _ = peer.outbox.send(SESSION_OK.to_owned());
                }
                Ok(())
            }
            Some(Partner::Instance(n)) => {
                drop(state);
                self.start_viewer(id, n, token.as_deref(), None, None)
            }
            None => {
                // The original Web GUI for instance N registers as 100 + N and waits for its offer.
                let n = id - GUI_ID_OFFSET;
                match self.streams(n) {
                    Some(n) if self.deps.supervisor.pipeline(n).is_some() => {
                        drop(state);
                        self.start_viewer(id, n, token.as_deref(), None, None)
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    fn session(
        self: &Arc<Self>,
        conn: &Connection,
        from: i64,
        other: i64,
        token: Option<String>,
        codec: Option<Codec>,
    ) -> Result<(), String> {
        {
            let state = self.lock();
            if state.peers.get(&from).is_none_or(|p| p.conn != conn.id) {
                return Err(format!(
                    "register as {from} on this connection before asking for a session"
                ));
            }
        }
        if let Some(n) = self.streams(other) {
            return self.start_viewer(from, n, token.as_deref(), codec, Some(&conn.outbox));
        }
        let mut state = self.lock();
        if state.peers.contains_key(&other) {
            state.partners.insert(from, Partner::External(other));
            state.partners.insert(other, Partner::External(from));
            let _ = conn.outbox.send(SESSION_OK.to_owned());
        } else {
            state
                .queued
                .retain(|(f, t, _)| !(*f == from && *t == other));
            if state.queued.iter().filter(|(f, _, _)| *f == from).count() >= MAX_QUEUED_PER_PEER {
                return Err(format!(
                    "caller {from} already waits for {MAX_QUEUED_PER_PEER} peers"
                ));
            }
            state.queued.push((from, other, Instant::now()));
        }
        Ok(())
    }

    fn relay(
        &self,
        conn: &Connection,
        kind: RelayKind,
        from: i64,
        content: &Value,
        raw: &str,
    ) -> Result<(), String> {
        let state = self.lock();
        if state.peers.get(&from).is_none_or(|p| p.conn != conn.id) {
            return Err(format!("register as {from} on this connection first"));
        }
        match state.partners.get(&from) {
            None => Err(format!("caller {from} has no session partner yet")),
            Some(Partner::External(to)) => match state.peers.get(to) {
                Some(peer) => {
                    let _ = peer.outbox.send(raw.to_owned());
                    Ok(())
                }
                None => Err(format!("partner {to} is not connected")),
            },
            Some(Partner::Instance(n)) => {
                let link = state
                    .viewers
                    .get(&from)
                    .ok_or_else(|| format!("the stream of instance {n} has ended"))?;
                let message = match kind {
                    RelayKind::Sdp => match protocol::sdp_of(content) {
                        Some(("answer", sdp)) => FromBrowser::Answer(sdp.to_owned()),
                        Some((other, _)) => {
                            return Err(format!(
                                "instance {n} makes the offer; expected an answer, got {other:?}"
                            ))
                        }
                        None => {
                            return Err(
                                "SDP content must be {\"sdp\":{\"type\",\"sdp\"}}".to_owned()
                            )
                        }
                    },
                    RelayKind::Ice => match protocol::ice_of(content) {
                        Some((candidate, mline, mid)) => {
                            FromBrowser::Candidate(RTCIceCandidateInit {
                                candidate,
                                sdp_mid: mid,
                                sdp_mline_index: mline,
                                ..Default::default()
                            })
                        }
                        None => {
                            return Err(
                                "ICE content must be {\"ice\":{\"candidate\",...}}".to_owned()
                            )
                        }
                    },
                };
                link.inbound
                    .try_send(message)
                    .map_err(|_| "too many signaling messages at once".to_owned())
            }
        }
    }

    /// Pairs browser `viewer` with instance `n` and starts the agent's side of it. When the
    /// browser asked with SESSION, `session_ok` gets `SESSION_OK` once everything checks out
    /// (and so before the offer).
    fn start_viewer(
        self: &Arc<Self>,
        viewer: i64,
        n: u32,
        token: Option<&str>,
        codec: Option<Codec>,
        session_ok: Option<&Outbox>,
    ) -> Result<(), String> {
        let supervisor = &self.deps.supervisor;
        if supervisor.pipeline(n).is_none() {
            return Err(format!("instance {n} is not running"));
        }
        if self.require_tokens && !token.is_some_and(|t| supervisor.token_matches(n, t)) {
            return Err(format!(
                "forbidden: a valid token for instance {n} is required"
            ));
        }
        if self.deps.supervisor.roster().count(n) >= self.max_viewers {
            return Err(format!(
                "instance {n} already has {} viewers",
                self.max_viewers
            ));
        }
        if let Some(outbox) = session_ok {
            let _ = outbox.send(SESSION_OK.to_owned());
        }
        let (inbound_tx, inbound_rx) = mpsc::channel(64);
        let (outbound_tx, mut outbound_rx) = mpsc::unbounded_channel::<ToBrowser>();
        let generation = {
            let mut state = self.lock();
            state.next_generation += 1;
            let generation = state.next_generation;
            state.partners.insert(viewer, Partner::Instance(n));
            state.viewers.insert(
                viewer,
                ViewerLink {
                    generation,
                    inbound: inbound_tx,
                },
            );
            generation
        };
        // Agent -> browser: offers and candidates in the original's message shapes.
        let original_gui = viewer == i64::from(n) + GUI_ID_OFFSET;
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            let mut sent = Vec::new();
            while let Some(message) = outbound_rx.recv().await {
                let texts = match message {
                    // The original client takes any JSON it does not know for fatal.
                    ToBrowser::Config(servers) if !original_gui => vec![protocol::config(&servers)],
                    ToBrowser::Config(_) => Vec::new(),
                    ToBrowser::Offer(sdp) => vec![protocol::sdp(n.into(), "offer", &sdp)],
                    ToBrowser::Candidate(c) => {
                        let text = protocol::ice(
                            n.into(),
                            &c.candidate,
                            c.sdp_mline_index,
                            c.sdp_mid.as_deref(),
                        );
                        sent.push(text.clone());
                        vec![text]
                    }
                    // The original Web GUI answers only after 6 remote candidates: repeat ours
                    // (a repeated candidate changes nothing for ICE) until it has 6.
                    ToBrowser::CandidatesDone if original_gui && !sent.is_empty() => sent
                        .iter()
                        .cycle()
                        .take(MIN_GUI_CANDIDATES.saturating_sub(sent.len()))
                        .cloned()
                        .collect(),
                    ToBrowser::CandidatesDone => Vec::new(),
                };
                for text in texts {
                    if !hub.send_to(viewer, text) {
                        return;
                    }
                }
            }
        });
        let hub = Arc::clone(self);
        let deps = Arc::clone(&self.deps);
        tokio::spawn(async move {
            let result =
                crate::stream::viewer::run(deps, n, viewer as u64, codec, inbound_rx, outbound_tx)
                    .await;
            let mut state = hub.lock();
            let current = state
                .viewers
                .get(&viewer)
                .is_some_and(|l| l.generation == generation);
            if current {
                state.viewers.remove(&viewer);
                drop(state);
                let message = match result {
                    Ok(()) => format!("the stream of instance {n} ended"),
                    Err(e) => format!("the stream of instance {n} ended: {e}"),
                };
                hub.send_error_to(viewer, &message);
            }
        });
        Ok(())
    }

    /// Sends peer `id` an error in the form its connection asked for.
    fn send_error_to(&self, id: i64, message: &str) -> bool {
        self.lock()
            .peers
            .get(&id)
            .is_some_and(|p| p.outbox.send(protocol::error(p.errors, message)).is_ok())
    }

    fn send_to(&self, id: i64, text: String) -> bool {
        self.lock()
            .peers
            .get(&id)
            .is_some_and(|p| p.outbox.send(text).is_ok())
    }
}
