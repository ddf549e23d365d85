//! The viewer's signaling, relayed to the agent that runs the visitor's session. The page asks
//! for instance 0 without a token; the relay puts the real instance id and token (from the
//! session's status URL) into its SESSION message and shows the agent's messages as coming from
//! 0, so ids, tokens and the agent's address stay on the server.

use axum::extract::ws::WebSocket;
use futures_util::SinkExt;
use openspace_viewer::relay::connect;
use serde_json::Value;

/// The id the page uses for "my session".
pub const PAGE_ID: i64 = 0;
/// Signaling messages are small (SDP is a few KiB); larger ones are refused.
pub const MAX_SIGNALING_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws://host:port/signaling` of the agent.
    pub signaling: String,
    pub id: i64,
    pub token: Option<String>,
}

/// Reads the agent's signaling address, the instance id and token from a session URL such as
/// `http://host:4690/frontend/#/streaming?id=3&token=abc` (https gives wss).
pub fn target(session_url: &str) -> Option<Target> {
    let url = url::Url::parse(session_url).ok()?;
    let scheme = match url.scheme() {
        "http" => "ws",
        "https" => "wss",
        _ => return None,
    };
    let fragment = url.fragment()?;
    let query = fragment.split_once('?')?.1;
    let (mut id, mut token) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "id" => id = value.parse::<i64>().ok(),
            "token" if !value.is_empty() => token = Some(value.into_owned()),
            _ => {}
        }
    }
    let host = url.host_str()?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Some(Target {
        signaling: format!("{scheme}://{authority}/signaling"),
        id: id?,
        token,
    })
}

/// Page -> agent: SESSION gets the real id and token; a token the page sent is dropped.
pub fn rewrite_up(text: &str, target: &Target) -> String {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    message.remove("token");
    if message.get("type").and_then(Value::as_str) == Some("SESSION") {
        message.insert("content".into(), target.id.into());
        if let Some(token) = &target.token {
            message.insert("token".into(), token.clone().into());
        }
    }
    Value::Object(message).to_string()
}

/// Agent -> page: messages from the instance appear to come from [`PAGE_ID`].
pub fn rewrite_down(text: &str, target: &Target) -> String {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    if message.get("caller_id").and_then(Value::as_i64) == Some(target.id) {
        message.insert("caller_id".into(), PAGE_ID.into());
    }
    Value::Object(message).to_string()
}

/// Connects to the agent's signaling and relays both ways until either side closes.
pub async fn relay(mut browser: WebSocket, target: Target) {
    let upstream = match connect(&target.signaling, MAX_SIGNALING_BYTES).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(error = %e, "the session's signaling does not answer");
            let _ = browser.close().await;
            return;
        }
    };
    openspace_viewer::relay::relay(
        browser,
        upstream,
        |text| rewrite_up(text, &target),
        |text| rewrite_down(text, &target),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Target {
        target("http://10.1.2.3:4690/frontend/#/streaming?id=3&token=s3cret").unwrap()
    }

    #[test]
    fn session_urls_name_the_agent_instance_and_token() {
        assert_eq!(
            t(),
            Target {
                signaling: "ws://10.1.2.3:4690/signaling".into(),
                id: 3,
                token: Some("s3cret".into())
            }
        );
        let tls = target("https://viewer.example.org/frontend/#/streaming?id=0&token=").unwrap();
        assert_eq!(
            (tls.signaling.as_str(), tls.token),
            ("wss://viewer.example.org/signaling", None)
        );
        for bad in [
            "",
            "ftp://x/#/streaming?id=1",
            "http://x/frontend/",
            "http://x/#/streaming?id=abc",
        ] {
            assert_eq!(target(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_page_never_sees_or_chooses_the_real_id_and_token() {
        let up = rewrite_up(
            r#"{"type":"SESSION","caller_id":77,"content":0,"token":"guess","codec":"H264"}"#,
            &t(),
        );
        let up: Value = serde_json::from_str(&up).unwrap();
        assert_eq!(
            (
                up["content"].as_i64(),
                up["token"].as_str(),
                up["codec"].as_str()
            ),
            (Some(3), Some("s3cret"), Some("H264"))
        );
        let other: Value = serde_json::from_str(&rewrite_up(
            r#"{"type":"ICE","caller_id":77,"token":"x","content":{}}"#,
            &t(),
        ))
        .unwrap();
        assert!(other.get("token").is_none());
        let down: Value = serde_json::from_str(&rewrite_down(
            r#"{"type":"SDP","caller_id":3,"content":{}}"#,
            &t(),
        ))
        .unwrap();
        assert_eq!(down["caller_id"].as_i64(), Some(0));
        assert_eq!(rewrite_down("SESSION_OK", &t()), "SESSION_OK");
        assert_eq!(rewrite_up("not json", &t()), "not json");
    }

    #[tokio::test]
    async fn wss_session_urls_are_reachable() {
        // A TCP server that hangs up at once: the attempt gets as far as the TLS handshake and
        // fails there, not for want of TLS support.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
        let error = connect(&format!("wss://{addr}/signaling"), 1024)
            .await
            .unwrap_err();
        assert!(!error.contains("TLS support not compiled in"), "{error}");
    }
}
