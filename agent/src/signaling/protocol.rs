//! The original signaling server's messages (see `shared/spec/protocols.md`): JSON objects
//! `{"type","caller_id","content"}` from peers; the server's own replies are plain text
//! (`REGISTER`, `SESSION_OK`).
//!
//! Errors, which the original server never sent, come in the form the peer reads: the original
//! browser client accepts plain text starting with `ERROR` and treats any other JSON as fatal,
//! so by default an error is the line `ERROR: <reason>`. A client that wants
//! `{"type":"ERROR","content":"<reason>"}` (our viewer page) says so with `"errors":"json"` in
//! its REGISTER; the choice holds for that connection.

use serde_json::{json, Value};

/// Largest signaling message accepted (an SDP is a few KiB).
pub const MAX_SIGNALING_BYTES: usize = 64 * 1024;

pub const REGISTER_REPLY: &str = "REGISTER";
pub const SESSION_OK: &str = "SESSION_OK";

#[derive(Debug, Clone, PartialEq)]
pub enum PeerMessage {
    /// `errors` (extension): `"json"` asks for JSON errors on this connection.
    Register {
        caller_id: i64,
        token: Option<String>,
        json_errors: bool,
    },
    /// `codec` (extension): the page's preferred video codec, "H264" or "VP8".
    Session {
        caller_id: i64,
        other: i64,
        token: Option<String>,
        codec: Option<String>,
    },
    /// SDP or ICE: relayed whole to the partner (or handled by the agent's own instance peer).
    Relay {
        kind: RelayKind,
        caller_id: i64,
        content: Value,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    Sdp,
    Ice,
}

/// An integer, or a string holding one (the original accepted both for SESSION's content).
fn integer(value: Option<&Value>, what: &str) -> Result<i64, String> {
    match value {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{what} must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("{what} must be an integer, got {s:?}")),
        Some(_) => Err(format!("{what} must be an integer")),
        None => Err(format!("missing {what}")),
    }
}

pub fn parse(text: &str) -> Result<PeerMessage, String> {
    if text.len() > MAX_SIGNALING_BYTES {
        return Err(format!("message over {MAX_SIGNALING_BYTES} bytes"));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(map) = &value else {
        return Err("expected a JSON object {\"type\",\"caller_id\",\"content\"}".to_owned());
    };
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or("missing \"type\"")?;
    let caller_id = integer(map.get("caller_id"), "caller_id")?;
    let token = map.get("token").and_then(Value::as_str).map(str::to_owned);
    match kind {
        "REGISTER" => Ok(PeerMessage::Register {
            caller_id,
            token,
            json_errors: map.get("errors").and_then(Value::as_str) == Some("json"),
        }),
        "SESSION" => Ok(PeerMessage::Session {
            caller_id,
            other: integer(map.get("content"), "content")?,
            token,
            codec: map.get("codec").and_then(Value::as_str).map(str::to_owned),
        }),
        "SDP" | "ICE" => {
            let content = map.get("content").cloned().ok_or("missing \"content\"")?;
            let kind = if kind == "SDP" {
                RelayKind::Sdp
            } else {
                RelayKind::Ice
            };
            Ok(PeerMessage::Relay {
                kind,
                caller_id,
                content,
            })
        }
        other => Err(format!(
            "unknown type {:?}: expected REGISTER, SESSION, SDP or ICE",
            other.chars().take(32).collect::<String>()
        )),
    }
}

/// How a connection wants its errors (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorForm {
    /// `ERROR: <reason>` on one line: what the original browser client reads.
    #[default]
    Text,
    /// `{"type":"ERROR","content":"<reason>"}`.
    Json,
}

/// An error message for a peer, in `form`.
pub fn error(form: ErrorForm, message: &str) -> String {
    match form {
        ErrorForm::Text => format!("ERROR: {}", message.replace(['\r', '\n'], " ")),
        ErrorForm::Json => json!({"type": "ERROR", "content": message}).to_string(),
    }
}

/// `{"type":"CONFIG","content":{"iceServers":[{"urls":[..],"username":..,"credential":..}]}}`
/// (extension): the ICE servers the browser's peer connection should use.
pub fn config(servers: &[crate::stream::ice::IceServer]) -> String {
    json!({"type": "CONFIG", "content": {"iceServers": servers}}).to_string()
}

/// `{"type":"SDP","caller_id":FROM,"content":{"sdp":{"type":KIND,"sdp":SDP}}}`
pub fn sdp(from: i64, kind: &str, sdp: &str) -> String {
    json!({"type": "SDP", "caller_id": from, "content": {"sdp": {"type": kind, "sdp": sdp}}})
        .to_string()
}

/// `{"type":"ICE","caller_id":FROM,"content":{"ice":{"candidate","sdpMLineIndex","sdpMid"}}}`
pub fn ice(from: i64, candidate: &str, mline: Option<u16>, mid: Option<&str>) -> String {
    json!({"type": "ICE", "caller_id": from,
           "content": {"ice": {"candidate": candidate, "sdpMLineIndex": mline.unwrap_or(0), "sdpMid": mid}}})
    .to_string()
}

/// The SDP text and type inside an SDP message's content.
pub fn sdp_of(content: &Value) -> Option<(&str, &str)> {
    let sdp = content.get("sdp")?;
    Some((sdp.get("type")?.as_str()?, sdp.get("sdp")?.as_str()?))
}

/// The candidate inside an ICE message's content: (candidate, sdpMLineIndex, sdpMid).
pub fn ice_of(content: &Value) -> Option<(String, Option<u16>, Option<String>)> {
    let ice = content.get("ice")?;
    let candidate = match ice.get("candidate") {
        Some(Value::String(c)) => c.clone(),
        Some(Value::Null) | None => String::new(),
        Some(_) => return None,
    };
    let mline = ice
        .get("sdpMLineIndex")
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok());
    let mid = ice.get("sdpMid").and_then(Value::as_str).map(str::to_owned);
    Some((candidate, mline, mid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"REGISTER","caller_id":100}"#),
            Ok(PeerMessage::Register {
                caller_id: 100,
                token: None,
                json_errors: false,
            })
        );
        assert_eq!(
            parse(r#"{"type":"SESSION","caller_id":0,"content":"100"}"#),
            Ok(PeerMessage::Session {
                caller_id: 0,
                other: 100,
                token: None,
                codec: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"SESSION","caller_id":7,"content":0,"token":"t"}"#),
            Ok(PeerMessage::Session {
                caller_id: 7,
                other: 0,
                token: Some("t".into()),
                codec: None
            })
        );
        let m = parse(r#"{"type":"ICE","caller_id":0,"content":{"ice":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMLineIndex":0}}}"#).unwrap();
        let PeerMessage::Relay {
            kind: RelayKind::Ice,
            content,
            ..
        } = m
        else {
            panic!()
        };
        assert_eq!(ice_of(&content).unwrap().1, Some(0));
        let m = parse(&sdp(0, "offer", "v=0")).unwrap();
        let PeerMessage::Relay {
            kind: RelayKind::Sdp,
            content,
            caller_id,
        } = m
        else {
            panic!()
        };
        assert_eq!((caller_id, sdp_of(&content)), (0, Some(("offer", "v=0"))));
    }

    #[test]
    fn garbage_gets_an_explanation() {
        for bad in [
            "",
            "nope",
            "[]",
            r#"{"type":"REGISTER"}"#,
            r#"{"type":"REGISTER","caller_id":"x"}"#,
            r#"{"type":"HELLO","caller_id":1}"#,
            r#"{"type":"SESSION","caller_id":1}"#,
            r#"{"type":"SDP","caller_id":1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&"x".repeat(MAX_SIGNALING_BYTES + 1)).is_err());
        assert_eq!(error(ErrorForm::Text, "bad\nthing"), "ERROR: bad thing");
        let json: Value = serde_json::from_str(&error(ErrorForm::Json, "bad")).unwrap();
        assert_eq!(json, json!({"type": "ERROR", "content": "bad"}));
        assert_eq!(
            parse(r#"{"type":"REGISTER","caller_id":5,"errors":"json"}"#),
            Ok(PeerMessage::Register {
                caller_id: 5,
                token: None,
                json_errors: true,
            })
        );
    }
}
