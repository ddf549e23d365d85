//! Signaling conformance with raw WebSocket clients against the real agent: the original
//! server's REGISTER / SESSION / SDP / ICE behaviour, the agent's own instance peers, tokens,
//! and bad input.

use crate::support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{Agent, Scratch, TIMEOUT};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(agent: &Agent, path: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{}{path}", agent.signaling_addr))
        .await
        .expect("the signaling port accepts")
        .0
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("sent");
}

/// The next text frame, or None when nothing arrives within `within`.
async fn next_text_within(ws: &mut Ws, within: Duration) -> Option<String> {
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.as_str().to_owned()),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("the connection ended: {other:?}"),
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    next_text_within(ws, TIMEOUT)
        .await
        .expect("a message in time")
}

async fn register(agent: &Agent, id: i64) -> Ws {
    let mut ws = connect(agent, "/").await;
    send(&mut ws, json!({"type": "REGISTER", "caller_id": id})).await;
    assert_eq!(next_text(&mut ws).await, "REGISTER");
    ws
}

/// The reason in an error of the original's form: one line `ERROR: <reason>`.
fn error_of(text: &str) -> String {
    text.strip_prefix("ERROR: ")
        .filter(|reason| !reason.contains('\n'))
        .unwrap_or_else(|| panic!("expected an ERROR line, got {text:?}"))
        .to_owned()
}

/// The reason in a JSON error `{"type":"ERROR","content":...}` (clients that asked for them).
fn json_error_of(text: &str) -> String {
    let v: Value = serde_json::from_str(text)
        .unwrap_or_else(|_| panic!("expected a JSON error, got {text:?}"));
    assert_eq!(v["type"], "ERROR", "{text}");
    v["content"].as_str().unwrap_or_default().to_owned()
}

fn command_agent() -> Agent {
    Agent::start(&["--capacity", "2", "--instance-command", "sleep 1000"])
}

#[tokio::test]
async fn a_session_request_waits_for_its_callee_and_sdp_and_ice_are_relayed_unchanged() {
    let agent = command_agent();
    let mut a = register(&agent, 200).await;
    send(
        &mut a,
        json!({"type": "SESSION", "caller_id": 200, "content": "201"}),
    )
    .await;
    assert_eq!(
        next_text_within(&mut a, Duration::from_millis(300)).await,
        None,
        "queued until 201 registers"
    );

    let mut b = register(&agent, 201).await;
    assert_eq!(next_text(&mut a).await, "SESSION_OK");

    let offer = json!({"type": "SDP", "caller_id": 200, "content": {"sdp": {"type": "offer", "sdp": "v=0\r\n"}}});
    send(&mut a, offer.clone()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&next_text(&mut b).await).unwrap(),
        offer
    );
    let ice = json!({"type": "ICE", "caller_id": 201, "content": {"ice": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMLineIndex": 0}}});
    send(&mut b, ice.clone()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&next_text(&mut a).await).unwrap(),
        ice
    );

    // A refresh: 201 comes back on a new connection and its partner is asked to negotiate again.
    drop(b);
    let _b = register(&agent, 201).await;
    assert_eq!(next_text(&mut a).await, "SESSION_OK");
}

#[tokio::test]
async fn a_session_with_a_registered_peer_forms_at_once_and_the_dedicated_port_and_path_agree() {
    let agent = command_agent();
    let mut c = register(&agent, 300).await;
    // The same protocol at /signaling on the HTTP port.
    let (mut d, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/signaling", agent.http_addr))
            .await
            .unwrap();
    send(&mut d, json!({"type": "REGISTER", "caller_id": 301})).await;
    assert_eq!(next_text(&mut d).await, "REGISTER");
    send(
        &mut c,
        json!({"type": "SESSION", "caller_id": 300, "content": 301}),
    )
    .await;
    assert_eq!(next_text(&mut c).await, "SESSION_OK");
    send(&mut d, json!({"type": "SDP", "caller_id": 301, "content": {"sdp": {"type": "answer", "sdp": "v=0"}}})).await;
    assert!(next_text(&mut c).await.contains("answer"));
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_connection_keeps_working() {
    let agent = command_agent();
    let mut ws = connect(&agent, "/").await;
    for bad in [
        "nope",
        "[1]",
        r#"{"type":"REGISTER"}"#,
        r#"{"type":"DANCE","caller_id":1}"#,
        r#"{"type":"SESSION","caller_id":1}"#,
    ] {
        ws.send(Message::text(bad)).await.unwrap();
        assert!(!error_of(&next_text(&mut ws).await).is_empty(), "{bad}");
    }
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert!(error_of(&next_text(&mut ws).await).contains("binary"));
    // SESSION and SDP before REGISTER are refused.
    send(
        &mut ws,
        json!({"type": "SESSION", "caller_id": 5, "content": 6}),
    )
    .await;
    assert!(error_of(&next_text(&mut ws).await).contains("register"));
    send(
        &mut ws,
        json!({"type": "SDP", "caller_id": 5, "content": {}}),
    )
    .await;
    assert!(error_of(&next_text(&mut ws).await).contains("register"));
    // Still serving.
    send(&mut ws, json!({"type": "REGISTER", "caller_id": 5})).await;
    assert_eq!(next_text(&mut ws).await, "REGISTER");
    // Waiting requests are bounded per peer.
    for other in 0..16 {
        send(
            &mut ws,
            json!({"type": "SESSION", "caller_id": 5, "content": 1000 + other}),
        )
        .await;
    }
    send(
        &mut ws,
        json!({"type": "SESSION", "caller_id": 5, "content": 2000}),
    )
    .await;
    assert!(error_of(&next_text(&mut ws).await).contains("already waits"));

    // An over-long message ends only that connection.
    let mut big = connect(&agent, "/").await;
    let _ = big.send(Message::text("x".repeat(200 * 1024))).await;
    let ended = loop {
        match tokio::time::timeout(TIMEOUT, big.next())
            .await
            .expect("ends in time")
        {
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break true,
            Some(Ok(_)) => continue,
        }
    };
    assert!(ended);
    send(&mut ws, json!({"type": "REGISTER", "caller_id": 6})).await;
    assert_eq!(next_text(&mut ws).await, "REGISTER");

    // A client that asks for JSON errors in its REGISTER gets them from then on.
    let mut json_client = connect(&agent, "/").await;
    send(
        &mut json_client,
        json!({"type": "REGISTER", "caller_id": 7, "errors": "json"}),
    )
    .await;
    assert_eq!(next_text(&mut json_client).await, "REGISTER");
    json_client.send(Message::text("nope")).await.unwrap();
    assert!(json_error_of(&next_text(&mut json_client).await).contains("not JSON"));
}

fn builtin_agent(extra: &[&str]) -> Agent {
    let api_port = support::free_port().to_string();
    let mut args = vec!["--capacity", "2", "--api-base-port", &api_port];
    args.extend_from_slice(extra);
    Agent::start(&args)
}

/// STARTs an instance and waits until it runs (the first renderer builds its textures).
async fn start_instance(agent: &Agent) -> Value {
    let mut client = agent.client().await;
    let answer = client
        .call(&openspace_agent::command::Request::Start(Default::default()))
        .await
        .unwrap();
    let id = u32::try_from(answer.id).expect("a slot");
    support::wait_status(
        &mut client,
        id,
        openspace_agent::command::SlotStatus::Running,
        TIMEOUT,
    )
    .await;
    serde_json::to_value(answer).unwrap()
}

/// Reads messages until an SDP offer from `from` arrives; returns its SDP text and the number
/// of ICE candidates seen on the way.
async fn expect_offer(ws: &mut Ws, from: i64) -> String {
    loop {
        let text = next_text(ws).await;
        if text == "SESSION_OK" {
            continue;
        }
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("unexpected {text:?}"));
        assert_ne!(v["type"], "ERROR", "{text}");
        if v["type"] == "SDP" {
            assert_eq!(v["caller_id"], from);
            assert_eq!(v["content"]["sdp"]["type"], "offer");
            return v["content"]["sdp"]["sdp"].as_str().unwrap().to_owned();
        }
    }
}

#[tokio::test]
async fn the_agent_is_the_peer_of_the_instances_it_streams() {
    let agent = builtin_agent(&[]);
    assert_eq!(start_instance(&agent).await["id"], 0);

    // Our page's way: any id, then SESSION with the instance id.
    let mut page = register(&agent, 1_234_567).await;
    send(
        &mut page,
        json!({"type": "SESSION", "caller_id": 1_234_567, "content": 0}),
    )
    .await;
    assert_eq!(next_text(&mut page).await, "SESSION_OK");
    let sdp = expect_offer(&mut page, 0).await;
    assert!(
        sdp.contains("m=video")
            && sdp.contains("H264/90000")
            && sdp.contains("packetization-mode=1"),
        "{sdp}"
    );
    assert!(
        sdp.contains("m=application"),
        "the input data channel is offered: {sdp}"
    );

    // The original Web GUI's way: register as 100 + N and wait for instance N's offer, and the
    // 6 candidates it waits for before answering.
    let mut gui = register(&agent, 100).await;
    expect_offer(&mut gui, 0).await;
    let mut candidates = 0;
    while candidates < 6 {
        let text = next_text(&mut gui).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (&v["type"], &v["caller_id"]),
            (&json!("ICE"), &json!(0)),
            "{text}"
        );
        assert!(v["content"]["ice"]["candidate"]
            .as_str()
            .unwrap()
            .starts_with("candidate:"));
        candidates += 1;
    }

    // Instance ids the agent streams cannot be taken over.
    let mut thief = connect(&agent, "/").await;
    send(&mut thief, json!({"type": "REGISTER", "caller_id": 0})).await;
    assert!(error_of(&next_text(&mut thief).await).starts_with("forbidden"));

    // Asking for an instance that is not running.
    send(
        &mut page,
        json!({"type": "SESSION", "caller_id": 1_234_567, "content": 1}),
    )
    .await;
    let reply = loop {
        let t = next_text(&mut page).await;
        if t.contains("ERROR") {
            break t;
        }
    };
    assert!(error_of(&reply).contains("not running"), "{reply}");
}

#[tokio::test]
async fn a_viewer_that_vanishes_mid_negotiation_leaks_no_peer_connection() {
    let agent = builtin_agent(&[]);
    start_instance(&agent).await;
    for round in 0..5 {
        let mut page = register(&agent, 9_000 + round).await;
        send(
            &mut page,
            json!({"type": "SESSION", "caller_id": 9_000 + round, "content": 0}),
        )
        .await;
        expect_offer(&mut page, 0).await;
        drop(page); // gone without answering
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (_, metrics) = agent.http_get("/metrics");
        if metrics.lines().any(|l| l == "openspace_agent_viewers 0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "viewers were not cleaned up:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the instance still serves a new viewer.
    let mut page = register(&agent, 9_999).await;
    send(
        &mut page,
        json!({"type": "SESSION", "caller_id": 9_999, "content": 0}),
    )
    .await;
    expect_offer(&mut page, 0).await;
}

#[tokio::test]
async fn instance_tokens_are_enforced_with_a_token_file() {
    let dir = Scratch::new("signaling-token");
    std::fs::write(dir.path("token"), "command-secret").unwrap();
    let agent = builtin_agent(&["--token-file", &dir.str("token")]);
    let mut client = openspace_agent::command::CommandClient::connect(
        &agent.url(),
        Some("command-secret"),
        TIMEOUT,
    )
    .await
    .unwrap();
    let started = client
        .call(&openspace_agent::command::Request::Start(Default::default()))
        .await
        .unwrap();
    let token = started.token.expect("START returns the instance token");
    support::wait_status(
        &mut client,
        0,
        openspace_agent::command::SlotStatus::Running,
        TIMEOUT,
    )
    .await;

    let mut page = register(&agent, 4_242).await;
    send(
        &mut page,
        json!({"type": "SESSION", "caller_id": 4_242, "content": 0}),
    )
    .await;
    assert!(error_of(&next_text(&mut page).await).starts_with("forbidden"));
    send(
        &mut page,
        json!({"type": "SESSION", "caller_id": 4_242, "content": 0, "token": "0".repeat(32)}),
    )
    .await;
    assert!(error_of(&next_text(&mut page).await).starts_with("forbidden"));
    send(
        &mut page,
        json!({"type": "SESSION", "caller_id": 4_242, "content": 0, "token": token}),
    )
    .await;
    assert_eq!(next_text(&mut page).await, "SESSION_OK");
    expect_offer(&mut page, 0).await;

    // The token in the URL works for clients that cannot add it to messages.
    let mut gui = connect(&agent, &format!("/?token={token}")).await;
    send(&mut gui, json!({"type": "REGISTER", "caller_id": 100})).await;
    assert_eq!(next_text(&mut gui).await, "REGISTER");
    expect_offer(&mut gui, 0).await;
}

/// The `profile-level-id`s of an offer's H.264 formats, in order.
fn h264_profiles(offer: &str) -> Vec<String> {
    offer
        .lines()
        .filter_map(|line| line.split("profile-level-id=").nth(1))
        .map(|rest| rest.chars().take(6).collect())
        .collect()
}

#[tokio::test]
async fn the_offer_names_the_h264_level_of_the_instances_size() {
    let agent = builtin_agent(&[]);
    start_instance(&agent).await;
    let offer_now = |id: i64| {
        let agent = &agent;
        async move {
            let mut page = register(agent, id).await;
            send(
                &mut page,
                json!({"type": "SESSION", "caller_id": id, "content": 0}),
            )
            .await;
            expect_offer(&mut page, 0).await
        }
    };
    // 1280x720 at 30 fps and 3 Mbit/s: level 3.1; constrained baseline, baseline and main.
    let offer = offer_now(2_000_001).await;
    assert_eq!(h264_profiles(&offer), ["42e01f", "42001f", "4d001f"]);
    assert!(offer.contains("VP8/90000"), "VP8 is offered too");
    // --playout-delay zero (the default) offers the playout-delay header extension.
    assert!(
        offer.contains("a=extmap:") && offer.contains("rtp-hdrext/playout-delay"),
        "{offer}"
    );

    let mut client = agent.client().await;
    let resized = support::call(
        &mut client,
        openspace_agent::command::Request::Resolution {
            id: 0,
            width: 3840,
            height: 2160,
        },
    )
    .await;
    assert_eq!(resized.error, "none");
    // 3840x2160 at 30 fps: level 5.1, what openh264 writes into its SPS at that size.
    let offer = offer_now(2_000_002).await;
    assert_eq!(h264_profiles(&offer), ["42e033", "420033", "4d0033"]);
}

#[tokio::test]
async fn playout_delay_browser_offers_no_playout_delay_extension() {
    let agent = builtin_agent(&["--playout-delay", "browser"]);
    start_instance(&agent).await;
    let mut page = register(&agent, 2_000_003).await;
    send(
        &mut page,
        json!({"type": "SESSION", "caller_id": 2_000_003, "content": 0}),
    )
    .await;
    let offer = expect_offer(&mut page, 0).await;
    assert!(!offer.contains("playout-delay"), "{offer}");
}
