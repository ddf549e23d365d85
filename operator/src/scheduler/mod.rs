//! Picking a rendering server for a session. Sessions that need a server at the same moment are
//! served in one round: one SERVER_STATUS fan-out to every server (bounded by a short timeout;
//! the silent are skipped), then each session in turn gets a slot by [`placement`], with
//! [`reservations`] keeping in-flight STARTs counted. So 500 sessions created at once cost a
//! few fan-outs, not 500.

pub mod placement;
pub mod reservations;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::core::{Selector, SelectorExt};
use openspace_protocol::{Answer, Owner, Request, SlotStatus};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub use placement::Placement;
use placement::{choose, Candidate};
use reservations::Reservations;

use crate::agents::Links;
use crate::servers::{Directory, Server};

/// Acknowledged reservations older than this are surely in every later answer.
const RESERVATION_MEMORY: Duration = Duration::from_secs(60);

/// What a session should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// START on this server (a slot is reserved until [`Scheduler::acked`] or
    /// [`Scheduler::release`]).
    Place(Server),
    /// The server already runs an instance for this session (an earlier START whose answer was
    /// never recorded): take it over instead of starting another.
    Adopt { server: Server, id: u32 },
    /// Servers match but none has a free slot (`answered` of `matching` replied).
    Full { matching: usize, answered: usize },
    /// No server matches the session's selector.
    NoServers,
}

struct Ask {
    session: String,
    selector: Option<Selector>,
    /// For a pool's warm instance: only servers that know warm instances qualify.
    warm: bool,
    reply: oneshot::Sender<Decision>,
}

/// One server's SERVER_STATUS, as far as scheduling cares.
#[derive(Debug, Clone)]
pub struct Reply {
    pub free: u32,
    /// Sessions on busy slots (owner -> slot id), when the server reports them (agents do).
    pub sessions: Option<HashMap<String, u32>>,
    /// Warm instances among the busy slots, when the server knows them (a seed-only server
    /// does not: pools never place there).
    pub warm: Option<u32>,
}

impl Reply {
    pub fn from_answer(answer: &Answer) -> Option<Self> {
        if !answer.is_ok() {
            return None;
        }
        let free = answer.total?.saturating_sub(answer.running?);
        let sessions = answer.slots.as_ref().map(|slots| {
            let mut owners = HashMap::new();
            for slot in slots.iter().filter(|s| s.status != SlotStatus::Idle) {
                // Only sessions are adopted; every busy slot is taken whoever owns it.
                let owner = slot.session.as_deref().map(Owner::parse);
                if let Some(Owner::Session(uid)) = owner {
                    // The first slot listed for an owner wins, should it hold several.
                    owners.entry(uid).or_insert(slot.id);
                }
            }
            owners
        });
        Some(Self {
            free,
            sessions,
            warm: answer.warm,
        })
    }
}

#[derive(Clone)]
pub struct Scheduler {
    asks: mpsc::UnboundedSender<Ask>,
    book: Arc<Mutex<Reservations>>,
}

impl Scheduler {
    pub fn start(
        directory: Arc<Directory>,
        links: Arc<Links>,
        placement: Placement,
        timeout: Duration,
    ) -> Self {
        let (asks, rx) = mpsc::unbounded_channel();
        let book = Arc::new(Mutex::new(Reservations::default()));
        tokio::spawn(rounds(
            rx,
            directory,
            links,
            placement,
            timeout,
            book.clone(),
        ));
        Self { asks, book }
    }

    pub async fn ask(&self, session: &str, selector: Option<Selector>) -> Decision {
        self.ask_for(session, selector, false).await
    }

    /// A slot for a pool's warm instance, reserved under `key` (unique per START); only servers
    /// that know warm instances qualify.
    pub async fn ask_warm(&self, key: &str, selector: Option<Selector>) -> Decision {
        self.ask_for(key, selector, true).await
    }

    async fn ask_for(&self, session: &str, selector: Option<Selector>, warm: bool) -> Decision {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            session: session.to_owned(),
            selector,
            warm,
            reply,
        };
        if self.asks.send(ask).is_err() {
            return Decision::NoServers;
        }
        answer.await.unwrap_or(Decision::NoServers)
    }

    pub fn acked(&self, server: &str, session: &str) {
        self.book().acked(server, session, Instant::now());
    }

    pub fn release(&self, server: &str, session: &str) {
        self.book().release(server, session);
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Reservations> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn rounds(
    mut rx: mpsc::UnboundedReceiver<Ask>,
    directory: Arc<Directory>,
    links: Arc<Links>,
    placement: Placement,
    timeout: Duration,
    book: Arc<Mutex<Reservations>>,
) {
    while let Some(first) = rx.recv().await {
        let mut asks = vec![first];
        while let Ok(more) = rx.try_recv() {
            asks.push(more);
        }
        let servers = directory.servers();
        let asked_at = Instant::now();
        let replies = futures::future::join_all(servers.iter().map(|server| {
            let links = &links;
            async move {
                let call = links.call(server, &Request::ServerStatus);
                match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(answer)) => Reply::from_answer(&answer),
                    Ok(Err(e)) => {
                        tracing::debug!("scheduling: {e}");
                        None
                    }
                    Err(_) => None,
                }
            }
        }))
        .await;
        // For warm asks, a server that does not know warm instances counts as silent.
        let warm_replies: Vec<Option<Reply>> = replies
            .iter()
            .map(|r| r.clone().filter(|r| r.warm.is_some()))
            .collect();
        let mut book = book.lock().unwrap_or_else(|p| p.into_inner());
        book.forget_older_than(Instant::now(), RESERVATION_MEMORY);
        for ask in asks {
            let decision = decide(
                &ask.session,
                ask.selector.as_ref(),
                &servers,
                if ask.warm { &warm_replies } else { &replies },
                &mut book,
                placement,
                asked_at,
            );
            let _ = ask.reply.send(decision);
        }
    }
}

/// One session's decision in a round. Pure apart from the reservation it makes.
pub fn decide(
    session: &str,
    selector: Option<&Selector>,
    servers: &[Server],
    replies: &[Option<Reply>],
    book: &mut Reservations,
    placement: Placement,
    asked_at: Instant,
) -> Decision {
    for (server, reply) in servers.iter().zip(replies) {
        let owned = reply
            .as_ref()
            .and_then(|r| r.sessions.as_ref())
            .and_then(|s| s.get(session));
        if let Some(id) = owned {
            return Decision::Adopt {
                server: server.clone(),
                id: *id,
            };
        }
    }
    let matching: Vec<usize> = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| selector.is_none_or(|sel| sel.matches(&s.labels)))
        .map(|(i, _)| i)
        .collect();
    if matching.is_empty() {
        return Decision::NoServers;
    }
    let answered: Vec<(usize, &Reply)> = matching
        .iter()
        .filter_map(|&i| replies[i].as_ref().map(|r| (i, r)))
        .collect();
    let candidates: Vec<Candidate<'_>> = answered
        .iter()
        .map(|(i, reply)| {
            let server = &servers[*i];
            Candidate {
                server: &server.name,
                free: reply.free.saturating_sub(book.held(
                    &server.name,
                    asked_at,
                    reply.sessions.as_ref(),
                )),
            }
        })
        .collect();
    match choose(placement, &candidates) {
        Some(pick) => {
            let server = servers[answered[pick].0].clone();
            book.reserve(&server.name, session);
            Decision::Place(server)
        }
        None => Decision::Full {
            matching: matching.len(),
            answered: answered.len(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn server(name: &str, gpu: &str) -> Server {
        Server {
            name: name.into(),
            url: format!("ws://{name}:4699"),
            node: None,
            public_host: name.into(),
            labels: BTreeMap::from([("gpu".to_string(), gpu.to_string())]),
            external: false,
        }
    }

    fn reply(free: u32, sessions: &[(&str, u32)]) -> Option<Reply> {
        Some(Reply {
            free,
            sessions: Some(sessions.iter().map(|(s, i)| (s.to_string(), *i)).collect()),
            warm: Some(0),
        })
    }

    #[test]
    fn a_round_never_hands_out_more_slots_than_are_free() {
        let servers = [server("a", "x"), server("b", "x"), server("c", "x")];
        let replies = [reply(2, &[]), reply(1, &[]), None];
        let mut book = Reservations::default();
        let t = Instant::now();
        let mut placed = BTreeMap::<String, u32>::new();
        let mut full = 0;
        for n in 0..5 {
            match decide(
                &format!("s{n}"),
                None,
                &servers,
                &replies,
                &mut book,
                Placement::Spread,
                t,
            ) {
                Decision::Place(s) => *placed.entry(s.name).or_default() += 1,
                Decision::Full { matching, answered } => {
                    assert_eq!((matching, answered), (3, 2), "c did not answer");
                    full += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(placed, BTreeMap::from([("a".into(), 2), ("b".into(), 1)]));
        assert_eq!(full, 2);
    }

    #[test]
    fn a_session_already_on_a_server_is_adopted_not_started_again() {
        let servers = [server("a", "x"), server("b", "x")];
        let replies = [reply(3, &[]), reply(0, &[("uid-1", 2)])];
        let mut book = Reservations::default();
        let d = decide(
            "uid-1",
            None,
            &servers,
            &replies,
            &mut book,
            Placement::Spread,
            Instant::now(),
        );
        assert_eq!(
            d,
            Decision::Adopt {
                server: servers[1].clone(),
                id: 2
            }
        );
        assert_eq!(book.held("a", Instant::now(), None), 0, "nothing reserved");
    }

    #[test]
    fn the_selector_limits_the_candidates() {
        let servers = [server("a", "t4"), server("b", "a100")];
        let replies = [reply(5, &[]), reply(1, &[])];
        let mut book = Reservations::default();
        let t = Instant::now();
        let a100: Selector = [("gpu", "a100")].into_iter().collect();
        let d = decide(
            "s",
            Some(&a100),
            &servers,
            &replies,
            &mut book,
            Placement::Spread,
            t,
        );
        assert_eq!(d, Decision::Place(servers[1].clone()));
        let d = decide(
            "s2",
            Some(&a100),
            &servers,
            &replies,
            &mut book,
            Placement::Spread,
            t,
        );
        assert_eq!(
            d,
            Decision::Full {
                matching: 1,
                answered: 1
            }
        );
        let h100: Selector = [("gpu", "h100")].into_iter().collect();
        let d = decide(
            "s3",
            Some(&h100),
            &servers,
            &replies,
            &mut book,
            Placement::Spread,
            t,
        );
        assert_eq!(d, Decision::NoServers);
    }

    const UID: &str = "0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";

    #[test]
    fn server_status_answers_become_replies() {
        let answer = Answer {
            running: Some(1),
            total: Some(3),
            slots: Some(vec![
                openspace_protocol::SlotInfo {
                    id: 0,
                    status: SlotStatus::Running,
                    session: Some(UID.into()),
                },
                openspace_protocol::SlotInfo {
                    id: 1,
                    status: SlotStatus::Idle,
                    session: None,
                },
            ]),
            ..Answer::ok("SERVER_STATUS", 0)
        };
        let r = Reply::from_answer(&answer).unwrap();
        assert_eq!(
            (r.free, r.sessions),
            (2, Some(HashMap::from([(UID.to_string(), 0)])))
        );
        let seed = Answer {
            running: Some(3),
            total: Some(3),
            ..Answer::ok("SERVER_STATUS", 0)
        };
        let r = Reply::from_answer(&seed).unwrap();
        assert_eq!((r.free, r.sessions), (0, None));
        assert!(Reply::from_answer(&Answer::failed("SERVER_STATUS", 0, "x", "y")).is_none());
    }
}
