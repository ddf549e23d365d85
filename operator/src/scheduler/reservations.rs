//! Slots promised to sessions whose START is in flight or not yet visible in the servers'
//! answers, so concurrent scheduling never hands one free slot to two sessions. Pure.
//!
//! A reservation stops counting once an answer can be known to include it: the answer lists
//! the session in `slots` (agents), or it was asked after the START was acknowledged (one
//! connection per server keeps requests in order; for the seed's one-shot connections the
//! server has answered START before the later request was even sent).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
struct Reservation {
    session: String,
    acked_at: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Reservations {
    by_server: HashMap<String, Vec<Reservation>>,
}

impl Reservations {
    pub fn reserve(&mut self, server: &str, session: &str) {
        let list = self.by_server.entry(server.to_owned()).or_default();
        list.retain(|r| r.session != session);
        list.push(Reservation {
            session: session.to_owned(),
            acked_at: None,
        });
    }

    /// START was acknowledged at `at`.
    pub fn acked(&mut self, server: &str, session: &str, at: Instant) {
        if let Some(r) = self
            .by_server
            .get_mut(server)
            .and_then(|l| l.iter_mut().find(|r| r.session == session))
        {
            r.acked_at = Some(at);
        }
    }

    /// START failed: the slot was never taken.
    pub fn release(&mut self, server: &str, session: &str) {
        if let Some(list) = self.by_server.get_mut(server) {
            list.retain(|r| r.session != session);
        }
    }

    /// How many of `server`'s reservations an answer asked at `asked_at` (listing `listed`
    /// sessions, owner -> slot id, when the server reports them) may not include yet.
    pub fn held(
        &self,
        server: &str,
        asked_at: Instant,
        listed: Option<&HashMap<String, u32>>,
    ) -> u32 {
        let Some(list) = self.by_server.get(server) else {
            return 0;
        };
        list.iter()
            .filter(|r| !listed.is_some_and(|l| l.contains_key(&r.session)))
            .filter(|r| r.acked_at.is_none_or(|acked| acked >= asked_at))
            .count() as u32
    }

    /// Drops acknowledged reservations older than `age`: every answer asked since includes them.
    pub fn forget_older_than(&mut self, now: Instant, age: Duration) {
        for list in self.by_server.values_mut() {
            list.retain(|r| {
                r.acked_at
                    .is_none_or(|acked| now.duration_since(acked) < age)
            });
        }
        self.by_server.retain(|_, l| !l.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_starts_count_until_an_answer_can_include_them() {
        let t0 = Instant::now();
        let mut book = Reservations::default();
        book.reserve("a", "s1");
        assert_eq!(book.held("a", t0, None), 1, "in flight");
        assert_eq!(book.held("b", t0, None), 0);
        let acked = t0 + Duration::from_millis(5);
        book.acked("a", "s1", acked);
        assert_eq!(
            book.held("a", t0, None),
            1,
            "asked before the ack: may miss it"
        );
        assert_eq!(
            book.held("a", acked + Duration::from_millis(1), None),
            0,
            "asked after"
        );
    }

    #[test]
    fn a_listed_session_no_longer_counts_and_a_release_frees_at_once() {
        let t0 = Instant::now();
        let mut book = Reservations::default();
        book.reserve("a", "s1");
        book.reserve("a", "s2");
        let listed: HashMap<String, u32> = [("s1".to_string(), 0)].into();
        assert_eq!(book.held("a", t0, Some(&listed)), 1);
        book.release("a", "s2");
        assert_eq!(book.held("a", t0, Some(&listed)), 0);
        book.reserve("a", "s3");
        book.reserve("a", "s3");
        assert_eq!(
            book.held("a", t0, None),
            2,
            "re-reserving replaces, never doubles"
        );
    }

    #[test]
    fn old_acknowledged_reservations_are_forgotten_but_in_flight_ones_kept() {
        let t0 = Instant::now();
        let mut book = Reservations::default();
        book.reserve("a", "done");
        book.acked("a", "done", t0);
        book.reserve("a", "flying");
        book.forget_older_than(t0 + Duration::from_secs(61), Duration::from_secs(60));
        assert_eq!(book.held("a", t0, None), 1);
        book.release("a", "flying");
        book.forget_older_than(t0, Duration::from_secs(60));
        assert!(book.by_server.is_empty());
    }
}
