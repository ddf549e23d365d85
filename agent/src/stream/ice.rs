//! ICE servers (STUN, TURN) as typed values, parsed once from the agent's flags.

use rtc::peer_connection::transport::RTCIceServer;
use serde::Serialize;

/// One ICE server as WebRTC's `RTCIceServer` describes it (W3C webrtc-pc §4.2.4): what the
/// agent's own peer uses and, serialized (`{"urls":[..],"username":..,"credential":..}`), what a
/// browser's `RTCPeerConnection` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credential: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceServerError {
    #[error("ICE server {0:?}: expected stun:, turn: or turns: (RFC 7064, RFC 7065)")]
    Scheme(String),
    #[error("ICE server {0:?} has no host")]
    NoHost(String),
}

impl IceServer {
    /// `stun:HOST:PORT`, `turn:HOST:PORT?transport=udp`, or with static credentials
    /// `turn:USER:PASS@HOST:PORT`. The host part follows the last `@` and the user name ends at
    /// the first `:`, so a password may hold both `@` and `:`.
    pub fn parse(text: &str) -> Result<Self, IceServerError> {
        let (scheme, rest) = text
            .split_once(':')
            .filter(|(scheme, _)| matches!(*scheme, "stun" | "stuns" | "turn" | "turns"))
            .ok_or_else(|| IceServerError::Scheme(text.to_owned()))?;
        let (auth, host) = match rest.rsplit_once('@') {
            Some((auth, host)) => (Some(auth), host),
            None => (None, rest),
        };
        if host.is_empty() || host.starts_with('?') {
            return Err(IceServerError::NoHost(text.to_owned()));
        }
        let (username, credential) = auth
            .map(|a| a.split_once(':').unwrap_or((a, "")))
            .unwrap_or_default();
        Ok(Self {
            urls: vec![format!("{scheme}:{host}")],
            username: username.to_owned(),
            credential: credential.to_owned(),
        })
    }

    /// webrtc-rs's form, for the agent's own peer connection.
    pub fn to_rtc(&self) -> RTCIceServer {
        RTCIceServer {
            urls: self.urls.clone(),
            username: self.username.clone(),
            credential: self.credential.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_carry_their_credentials_even_with_at_signs_and_colons() {
        let s = IceServer::parse("turn:alice:p@ss:w0rd@turn.example.org:3478").unwrap();
        assert_eq!(s.urls, ["turn:turn.example.org:3478"]);
        assert_eq!(
            (s.username.as_str(), s.credential.as_str()),
            ("alice", "p@ss:w0rd")
        );
        let s = IceServer::parse("stun:stun.example.org:3478").unwrap();
        assert_eq!(
            (s.urls[0].as_str(), s.username.as_str()),
            ("stun:stun.example.org:3478", "")
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"urls": ["stun:stun.example.org:3478"]})
        );
    }

    #[test]
    fn other_schemes_and_missing_hosts_are_refused() {
        assert!(matches!(
            IceServer::parse("http://example.org"),
            Err(IceServerError::Scheme(_))
        ));
        assert!(matches!(
            IceServer::parse("turn:user:pass@"),
            Err(IceServerError::NoHost(_))
        ));
    }
}
