//! Short-lived TURN credentials for each viewer, in the TURN REST scheme coturn implements
//! (`use-auth-secret`; draft-uberti-behave-turn-rest-00 §2.2): the relay and the agent share a
//! secret, and the agent hands each viewer the user name `<expiry>:<label>` (expiry in Unix
//! seconds) with the password base64(HMAC-SHA1(secret, user name)). The relay checks both
//! without asking anyone; the secret itself never leaves the agent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::ice::IceServer;

/// The relay's URLs and the secret shared with it.
#[derive(Clone)]
pub struct TurnRest {
    /// `turn:HOST:3478?transport=udp`, `turn:HOST:3478?transport=tcp`, `turns:HOST:443?...`.
    pub urls: Vec<String>,
    secret: Vec<u8>,
    /// How long a credential stays valid after it is issued.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRest")
            .field("urls", &self.urls)
            .field("secret", &"<hidden>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TurnRest {
    pub fn new(urls: Vec<String>, secret: Vec<u8>, ttl: Duration) -> Self {
        Self { urls, secret, ttl }
    }

    /// The relay as one ICE server with a credential for `label` (e.g. the session), valid
    /// from `now` for `ttl`. `label` is kept to letters, digits, `-` and `.` (the user name's
    /// `:` separates the expiry).
    pub fn credentials(&self, label: &str, now: SystemTime) -> IceServer {
        let expiry = now
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        let username = format!("{expiry}:{label}");
        IceServer {
            urls: self.urls.clone(),
            credential: password(&self.secret, &username),
            username,
        }
    }
}

/// base64(HMAC-SHA1(secret, username)): coturn's `use-auth-secret` password.
fn password(secret: &[u8], username: &str) -> String {
    // HMAC accepts keys of any length (RFC 2104 §2); new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_hmac_coturn_computes() {
        // python3: base64(hmac.new(b'north', b'1600003600:session-a', sha1).digest())
        let turn = TurnRest::new(
            vec!["turn:198.18.0.1:3478?transport=udp".into()],
            b"north".to_vec(),
            Duration::from_secs(3600),
        );
        let issued = turn.credentials("session-a", UNIX_EPOCH + Duration::from_secs(1_600_000_000));
        assert_eq!(issued.username, "1600003600:session-a");
        assert_eq!(issued.credential, "TW71Jy5YQl1OE8sMj9b9J0n86tQ=");
        assert_eq!(issued.urls, ["turn:198.18.0.1:3478?transport=udp"]);
    }

    #[test]
    fn labels_cannot_forge_the_expiry_and_the_secret_is_not_printed() {
        let turn = TurnRest::new(vec![], b"s3cret".to_vec(), Duration::from_secs(60));
        let issued = turn.credentials("9999999999:x y", UNIX_EPOCH);
        assert_eq!(issued.username, "60:9999999999-x-y");
        assert!(!format!("{turn:?}").contains("s3cret"));
    }
}
