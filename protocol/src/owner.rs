//! Who owns an instance: the one place where the `session` string of START, STATUS and
//! SERVER_STATUS's `slots` is encoded and decoded. The agent treats it as opaque; the operator
//! matches on [`Owner`] (orphan sweep, scheduling, cleanup) instead of guessing from its shape.
//!
//! Wire forms (backward compatible: a bare UID is a session owner, as it always was):
//! - `0b6f3c1e-6a2b-4a55-9f1e-0123456789ab`: an `OpenSpaceSession`'s UID;
//! - `pool:0b6f3c1e-6a2b-4a55-9f1e-0123456789ab`: an `OpenSpacePool`'s UID (warm instances);
//! - anything else (`openspace-cmd start --session me`, a hand-made owner): [`Owner::Other`].

use std::fmt;

/// The prefix that marks a pool owner.
pub const POOL_PREFIX: &str = "pool:";

/// The owner of an instance, decoded from the wire's `session` string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// An `OpenSpaceSession`, by its UID.
    Session(String),
    /// An `OpenSpacePool`, by its UID: a warm instance no session has claimed yet.
    Pool(String),
    /// Something the operator did not start (kept as sent; never swept or counted as ours).
    Other(String),
}

impl Owner {
    /// Decodes the wire form. Never fails: what is neither a UID nor `pool:UID` is `Other`.
    pub fn parse(wire: &str) -> Self {
        if looks_like_uid(wire) {
            return Self::Session(wire.to_owned());
        }
        match wire.strip_prefix(POOL_PREFIX) {
            Some(uid) if looks_like_uid(uid) => Self::Pool(uid.to_owned()),
            _ => Self::Other(wire.to_owned()),
        }
    }

    /// The pool owner of the pool with this UID.
    pub fn pool(uid: &str) -> Self {
        Self::Pool(uid.to_owned())
    }

    /// The wire form, which [`Owner::parse`] reads back as the same owner.
    pub fn encode(&self) -> String {
        self.to_string()
    }

    /// The session UID, when a session owns the instance.
    pub fn session(&self) -> Option<&str> {
        match self {
            Self::Session(uid) => Some(uid),
            _ => None,
        }
    }

    /// The pool UID, when a pool owns the (warm) instance.
    pub fn pool_uid(&self) -> Option<&str> {
        match self {
            Self::Pool(uid) => Some(uid),
            _ => None,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session(uid) => f.write_str(uid),
            Self::Pool(uid) => write!(f, "{POOL_PREFIX}{uid}"),
            Self::Other(wire) => f.write_str(wire),
        }
    }
}

/// A Kubernetes UID: 36 characters, 8-4-4-4-12 hex digits.
pub fn looks_like_uid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";

    #[test]
    fn a_bare_uid_is_a_session_as_before() {
        assert_eq!(Owner::parse(UID), Owner::Session(UID.into()));
        assert_eq!(Owner::parse(UID).session(), Some(UID));
    }

    #[test]
    fn pool_owners_round_trip_and_everything_else_is_other() {
        let pool = Owner::pool(UID);
        assert_eq!(pool.encode(), format!("pool:{UID}"));
        assert_eq!(Owner::parse(&pool.encode()), pool);
        assert_eq!(pool.pool_uid(), Some(UID));
        assert_eq!(pool.session(), None);
        for other in [
            "my-demo",
            "pool:",
            "pool:demo",
            "0b6f3c1e-6a2b-4a55-9f1e-0123456789az",
        ] {
            let owner = Owner::parse(other);
            assert_eq!(owner, Owner::Other(other.into()), "{other}");
            assert_eq!(owner.encode(), other);
        }
    }
}
