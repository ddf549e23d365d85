//! Which server gets a new session: pure, given how many slots each candidate has free.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// The server with the most free slots (spreads load across GPUs).
    Spread,
    /// The fullest server that still has a free slot (keeps whole GPUs free).
    Packed,
}

/// A server that answered SERVER_STATUS, with reservations already subtracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub server: &'a str,
    pub free: u32,
}

/// The index of the chosen candidate, or `None` when nobody has a free slot. Ties go to the
/// server whose name sorts first, so the choice is reproducible.
pub fn choose(placement: Placement, candidates: &[Candidate<'_>]) -> Option<usize> {
    let fitting = candidates.iter().enumerate().filter(|(_, c)| c.free > 0);
    match placement {
        Placement::Spread => fitting
            .min_by(|(_, a), (_, b)| b.free.cmp(&a.free).then(a.server.cmp(b.server)))
            .map(|(i, _)| i),
        Placement::Packed => fitting
            .min_by(|(_, a), (_, b)| a.free.cmp(&b.free).then(a.server.cmp(b.server)))
            .map(|(i, _)| i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(server: &str, free: u32) -> Candidate<'_> {
        Candidate { server, free }
    }

    #[test]
    fn spread_takes_the_most_free_and_packed_the_least_free_that_fits() {
        let all = [c("a", 1), c("b", 3), c("c", 0), c("d", 2)];
        assert_eq!(choose(Placement::Spread, &all), Some(1));
        assert_eq!(choose(Placement::Packed, &all), Some(0));
    }

    #[test]
    fn ties_go_to_the_first_name_and_full_servers_are_never_chosen() {
        let tied = [c("b", 2), c("a", 2)];
        assert_eq!(choose(Placement::Spread, &tied), Some(1));
        assert_eq!(choose(Placement::Packed, &tied), Some(1));
        let full = [c("a", 0), c("b", 0)];
        assert_eq!(choose(Placement::Spread, &full), None);
        assert_eq!(choose(Placement::Packed, &[]), None);
    }
}
