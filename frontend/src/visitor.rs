//! Visitors are told apart by a random id in an HttpOnly, SameSite=Strict cookie. The cluster
//! only sees a hash of it (a label on the visitor's sessions), so reading sessions does not give
//! anyone a cookie to impersonate a visitor with.

use sha2::{Digest, Sha256};

pub const COOKIE: &str = "openspace_visitor";
/// The label on each session naming its visitor (by hash).
pub const LABEL: &str = "openspace.io/visitor";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor(String);

impl Visitor {
    pub fn new() -> Self {
        let bytes: [u8; 16] = rand::random();
        Self(hex(&bytes))
    }

    /// The visitor named by a `Cookie` header, if it carries a well-formed id.
    pub fn from_cookie_header(header: &str) -> Option<Self> {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value.trim())
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|v| Self(v.to_ascii_lowercase()))
    }

    /// The `Set-Cookie` value that gives a browser this id.
    pub fn set_cookie(&self, secure: bool) -> String {
        let secure = if secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.0
        )
    }

    /// The label value for this visitor's sessions (32 hex characters of SHA-256).
    pub fn label(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex(&digest[..16])
    }
}

impl Default for Visitor {
    fn default() -> Self {
        Self::new()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_round_trips_and_only_its_hash_is_a_label() {
        let visitor = Visitor::new();
        let cookie = visitor.set_cookie(true);
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.ends_with("; Secure")
        );
        let value = cookie.split(';').next().unwrap();
        let header = format!("theme=dark; {value}; other=1");
        assert_eq!(Visitor::from_cookie_header(&header), Some(visitor.clone()));
        let label = visitor.label();
        assert_eq!(label.len(), 32);
        assert_ne!(label, visitor.0);
        assert_ne!(Visitor::new().label(), label);
    }

    #[test]
    fn malformed_cookies_name_nobody() {
        for header in [
            "",
            "openspace_visitor=",
            "openspace_visitor=xyz",
            "openspace_visitor=../../etc",
            &format!("{COOKIE}={}", "g".repeat(32)),
        ] {
            assert_eq!(Visitor::from_cookie_header(header), None, "{header:?}");
        }
    }
}
