//! Protocol conformance: the real agent binary, real WebSocket clients on loopback.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use openspace_agent::command::{
    call_once, ClientError, CommandClient, Request, SlotStatus, StartRequest,
};
use serde_json::{json, Value};
use support::{call, status, wait_status, Agent, Scratch, TIMEOUT};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Raw =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw(agent: &Agent) -> Raw {
    tokio_tungstenite::connect_async(agent.url())
        .await
        .expect("connects")
        .0
}

async fn next_json(ws: &mut Raw) -> Value {
    loop {
        let frame = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("an answer in time")
            .expect("the connection stays open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("answers are JSON");
        }
    }
}

async fn exchange(ws: &mut Raw, text: &str) -> Value {
    ws.send(Message::text(text)).await.expect("sent");
    next_json(ws).await
}

/// One message per connection, as the original backend talked.
async fn once(agent: &Agent, text: &str) -> Value {
    let mut ws = raw(agent).await;
    let answer = exchange(&mut ws, text).await;
    let _ = ws.close(None).await;
    answer
}

fn sleeper(capacity: &str) -> Agent {
    Agent::start(&[
        "--capacity",
        capacity,
        "--instance-command",
        "sleep 1000",
        "--stop-grace",
        "2s",
    ])
}

#[tokio::test]
async fn seed_commands_answer_exactly_as_the_seed_says() {
    let agent = sleeper("2");

    let a = once(&agent, r#"{"command":"SERVER_STATUS"}"#).await;
    assert_eq!(
        (
            &a["command"],
            &a["error"],
            &a["id"],
            &a["running"],
            &a["total"]
        ),
        (
            &json!("SERVER_STATUS"),
            &json!("none"),
            &json!(0),
            &json!(0),
            &json!(2)
        )
    );

    for id in 0..2 {
        let mut started = once(&agent, r#"{"command":"START"}"#).await;
        // The seed's fields exactly, plus the instance's access token (an extension).
        let token = started
            .as_object_mut()
            .unwrap()
            .remove("token")
            .expect("a token");
        assert!(token
            .as_str()
            .is_some_and(|t| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit())));
        assert_eq!(started, json!({"command":"START","error":"none","id":id}));
    }
    let full = once(&agent, r#"{"command":"START"}"#).await;
    assert_eq!(
        (&full["command"], &full["error"], &full["id"]),
        (&json!("START"), &json!("no available slots"), &json!(-1))
    );

    let mut client = agent.client().await;
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    let a = once(&agent, r#"{"command":"STATUS","id":1}"#).await;
    assert_eq!(
        (&a["command"], &a["error"], &a["id"]),
        (&json!("STATUS"), &json!("none"), &json!(1))
    );
    assert!(
        matches!(a["status"].as_str(), Some("INITIALIZING" | "RUNNING")),
        "{a}"
    );

    let a = once(&agent, r#"{"command":"SERVER_STATUS"}"#).await;
    assert_eq!((&a["running"], &a["total"]), (&json!(2), &json!(2)));

    let a = once(
        &agent,
        r#"{"command":"RESOLUTION","id":0,"width":1920,"height":1080}"#,
    )
    .await;
    assert_eq!(
        a,
        json!({"command":"RESOLUTION","error":"none","id":0,"width":1920,"height":1080})
    );
    let s = status(&mut client, 0).await;
    assert_eq!((s.width, s.height), (Some(1920), Some(1080)));

    assert_eq!(
        once(&agent, r#"{"command":"STOP","id":0}"#).await,
        json!({"command":"STOP","error":"none","id":0})
    );
    wait_status(&mut client, 0, SlotStatus::Idle, TIMEOUT).await;
    let a = once(&agent, r#"{"command":"STOP","id":0}"#).await;
    assert_eq!((&a["error"], &a["id"]), (&json!("not running"), &json!(0)));
    let a = once(
        &agent,
        r#"{"command":"RESOLUTION","id":0,"width":640,"height":480}"#,
    )
    .await;
    assert_eq!((&a["error"], &a["id"]), (&json!("not running"), &json!(0)));

    // The lowest free id is reused.
    assert_eq!(once(&agent, r#"{"command":"START"}"#).await["id"], json!(0));
}

#[tokio::test]
async fn ids_out_of_range_are_invalid_and_echoed() {
    let agent = sleeper("3");
    for command in ["STOP", "STATUS", "RESOLUTION"] {
        let a = once(
            &agent,
            &format!(r#"{{"command":"{command}","id":3,"width":640,"height":480}}"#),
        )
        .await;
        assert_eq!(
            (&a["command"], &a["error"], &a["id"]),
            (&json!(command), &json!("invalid id"), &json!(3)),
            "{a}"
        );
    }
    let a = once(&agent, r#"{"command":"STATUS","id":7}"#).await;
    assert_eq!(a["status"], json!("INVALID"));
}

#[tokio::test]
async fn many_messages_on_one_connection_are_answered_in_order() {
    let agent = sleeper("3");
    let mut ws = raw(&agent).await;
    for id in 0..50 {
        ws.feed(Message::text(format!(
            r#"{{"command":"STATUS","id":{}}}"#,
            id % 3
        )))
        .await
        .unwrap();
    }
    ws.flush().await.unwrap();
    for id in 0..50 {
        let a = next_json(&mut ws).await;
        assert_eq!(
            (&a["command"], &a["id"], &a["status"]),
            (&json!("STATUS"), &json!(id % 3), &json!("IDLE"))
        );
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_connection_keeps_serving() {
    let agent = sleeper("3");
    let mut ws = raw(&agent).await;
    let big_id = r#"{"command":"STATUS","id":123456789012345678901234567890}"#;
    let cases: &[(&str, &str, Value, Value)] = &[
        (
            "this is not json",
            "json decode error",
            Value::Null,
            json!(-1),
        ),
        ("[1,2,3]", "invalid message", Value::Null, json!(-1)),
        ("\"START\"", "invalid message", Value::Null, json!(-1)),
        (r#"{"id":1}"#, "missing command", Value::Null, json!(-1)),
        (
            r#"{"command":42}"#,
            "invalid message",
            Value::Null,
            json!(-1),
        ),
        (
            r#"{"command":"REBOOT"}"#,
            "invalid message received: REBOOT",
            json!("REBOOT"),
            json!(-1),
        ),
        (
            r#"{"command":"start"}"#,
            "invalid message received: start",
            json!("start"),
            json!(-1),
        ),
        (
            r#"{"command":"STOP"}"#,
            "missing id",
            json!("STOP"),
            json!(-1),
        ),
        (
            r#"{"command":"STATUS"}"#,
            "missing id",
            json!("STATUS"),
            json!(-1),
        ),
        (
            r#"{"command":"STOP","id":-1}"#,
            "invalid id",
            json!("STOP"),
            json!(-1),
        ),
        (
            r#"{"command":"STATUS","id":-2}"#,
            "invalid id",
            json!("STATUS"),
            json!(-2),
        ),
        (
            r#"{"command":"STATUS","id":"0"}"#,
            "invalid id",
            json!("STATUS"),
            json!(-1),
        ),
        (
            r#"{"command":"STATUS","id":0.5}"#,
            "invalid id",
            json!("STATUS"),
            json!(-1),
        ),
        (
            r#"{"command":"STATUS","id":null}"#,
            "invalid id",
            json!("STATUS"),
            json!(-1),
        ),
        (big_id, "invalid id", json!("STATUS"), json!(-1)),
        (
            r#"{"command":"RESOLUTION","id":0,"width":15,"height":720}"#,
            "invalid resolution",
            json!("RESOLUTION"),
            json!(0),
        ),
        (
            r#"{"command":"RESOLUTION","id":0,"width":7681,"height":720}"#,
            "invalid resolution",
            json!("RESOLUTION"),
            json!(0),
        ),
        (
            r#"{"command":"RESOLUTION","id":0,"width":1280,"height":4321}"#,
            "invalid resolution",
            json!("RESOLUTION"),
            json!(0),
        ),
        (
            r#"{"command":"RESOLUTION","id":0,"width":"1280","height":720}"#,
            "invalid resolution",
            json!("RESOLUTION"),
            json!(0),
        ),
        (
            r#"{"command":"RESOLUTION","id":0,"width":1280}"#,
            "invalid resolution",
            json!("RESOLUTION"),
            json!(0),
        ),
        (
            r#"{"command":"START","width":1280}"#,
            "invalid resolution",
            json!("START"),
            json!(-1),
        ),
        (
            r#"{"command":"START","width":1,"height":1}"#,
            "invalid resolution",
            json!("START"),
            json!(-1),
        ),
        (
            r#"{"command":"START","profile":"../etc"}"#,
            "invalid profile",
            json!("START"),
            json!(-1),
        ),
        (
            r#"{"command":"START","session":["x"]}"#,
            "invalid session",
            json!("START"),
            json!(-1),
        ),
    ];
    for (input, error, command, id) in cases {
        let a = exchange(&mut ws, input).await;
        assert_eq!(&a["error"], &json!(error), "input {input}: {a}");
        assert_eq!(&a["command"], command, "input {input}: {a}");
        assert_eq!(&a["id"], id, "input {input}: {a}");
        assert!(
            a["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "input {input} has no detail: {a}"
        );
    }

    ws.send(Message::binary(vec![0u8, 1, 2, 3])).await.unwrap();
    let a = next_json(&mut ws).await;
    assert_eq!(a["error"], json!("invalid message"));
    assert!(a["detail"].as_str().unwrap().contains("binary"));

    // None of that started anything or broke the connection.
    let a = exchange(&mut ws, r#"{"command":"SERVER_STATUS"}"#).await;
    assert_eq!((&a["error"], &a["running"]), (&json!("none"), &json!(0)));
}

#[tokio::test]
async fn a_message_over_64_kib_closes_with_1009_and_others_are_unaffected() {
    let agent = sleeper("3");
    let mut bystander = raw(&agent).await;
    let mut ws = raw(&agent).await;
    let huge = format!(
        r#"{{"command":"START","session":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let _ = ws.send(Message::text(huge)).await;
    let close = loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        close.expect("a close frame with a code").code,
        CloseCode::Size
    );
    let a = exchange(&mut bystander, r#"{"command":"SERVER_STATUS"}"#).await;
    assert_eq!((&a["error"], &a["running"]), (&json!("none"), &json!(0)));
}

#[tokio::test]
async fn silent_clients_are_timed_out() {
    let agent = Agent::start(&[
        "--instance-command",
        "sleep 1000",
        "--command-idle-timeout",
        "500ms",
    ]);

    // A WebSocket client that never sends a message.
    let mut ws = raw(&agent).await;
    let started = std::time::Instant::now();
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "closed too early: {:?}",
        started.elapsed()
    );

    // A TCP client that never even finishes the handshake.
    use tokio::io::AsyncReadExt;
    let mut tcp = tokio::net::TcpStream::connect(agent.command_addr)
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closes a silent TCP connection");

    // A client that keeps talking is not cut off by the idle timer.
    let mut client = agent.client().await;
    for _ in 0..6 {
        assert!(call(&mut client, Request::ServerStatus).await.is_ok());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn hundreds_of_simultaneous_connections_are_all_served() {
    let agent = sleeper("3");
    let mut clients = Vec::new();
    for _ in 0..300 {
        clients.push(agent.client().await);
    }
    let answers =
        futures_util::future::join_all(clients.iter_mut().map(|c| c.call(&Request::ServerStatus)))
            .await;
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.as_ref().is_ok_and(|a| a.is_ok() && a.total == Some(3)))
            .count(),
        300
    );
    let (_, metrics) = agent.http_get("/metrics");
    assert!(
        metrics.contains("openspace_agent_command_connections 300"),
        "{metrics}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_503() {
    let agent = Agent::start(&[
        "--instance-command",
        "sleep 1000",
        "--max-command-connections",
        "2",
    ]);
    let mut a = agent.client().await;
    let _b = agent.client().await;
    let refused = CommandClient::connect(&agent.url(), None, TIMEOUT).await;
    assert!(
        matches!(refused, Err(ClientError::Refused(503))),
        "{:?}",
        refused.err()
    );
    assert!(call(&mut a, Request::ServerStatus).await.is_ok());
    drop(a);
    // The freed place is taken again.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while CommandClient::connect(&agent.url(), None, TIMEOUT)
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the freed connection place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_token_is_required_when_configured() {
    let dir = Scratch::new("token");
    std::fs::write(dir.path("token"), "s3cret-token\n").unwrap();
    let agent = Agent::start(&[
        "--instance-command",
        "sleep 1000",
        "--token-file",
        &dir.str("token"),
    ]);
    let url = agent.url();
    for token in [None, Some("wrong"), Some("s3cret-token-but-longer")] {
        let refused = CommandClient::connect(&url, token, TIMEOUT).await;
        assert!(
            matches!(refused, Err(ClientError::Refused(401))),
            "{token:?}: {:?}",
            refused.err()
        );
    }
    let a = call_once(&url, Some("s3cret-token"), &Request::ServerStatus, TIMEOUT)
        .await
        .unwrap();
    assert!(a.is_ok());
}

#[tokio::test]
async fn parallel_starts_never_share_an_id_and_exactly_capacity_succeed() {
    let agent = sleeper("5");
    let url = agent.url();
    let starts = (0..40).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            call_once(
                &url,
                None,
                &Request::Start(StartRequest::default()),
                TIMEOUT,
            )
            .await
        })
    });
    let answers: Vec<_> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("answer"))
        .collect();
    let ids: Vec<i64> = answers.iter().filter(|a| a.is_ok()).map(|a| a.id).collect();
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        (0..5).collect::<BTreeSet<_>>(),
        "{ids:?}"
    );
    assert_eq!(ids.len(), 5);
    assert!(answers
        .iter()
        .filter(|a| !a.is_ok())
        .all(|a| a.error == "no available slots" && a.id == -1));
}

#[tokio::test]
async fn start_extensions_and_session_ownership() {
    let agent = sleeper("3");
    let mut client = agent.client().await;
    let start = Request::Start(StartRequest {
        session: Some("uid-a".into()),
        width: Some(800),
        height: Some(600),
        profile: Some("mars".into()),
        warm: false,
    });
    let first = call(&mut client, start.clone()).await;
    let again = call(&mut client, start).await;
    assert_eq!(
        (first.id, again.id, again.is_ok()),
        (0, 0, true),
        "one live instance per session"
    );
    let s = wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    assert_eq!(
        (
            s.session.as_deref(),
            s.width,
            s.height,
            s.profile.as_deref()
        ),
        (Some("uid-a"), Some(800), Some(600), Some("mars"))
    );
    let b = call(
        &mut client,
        Request::Start(StartRequest {
            session: Some("uid-b".into()),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(b.id, 1);
    let s = call(&mut client, Request::ServerStatus).await;
    let slots = s.slots.expect("slots extension");
    assert_eq!(slots.len(), 3);
    assert_eq!(slots[0].session.as_deref(), Some("uid-a"));
    assert_eq!(slots[1].session.as_deref(), Some("uid-b"));
    assert_eq!(slots[2].status, SlotStatus::Idle);
    // Default resolution for a START without one.
    assert_eq!(
        (
            status(&mut client, 1).await.width,
            status(&mut client, 1).await.height
        ),
        (Some(1280), Some(720))
    );
}

#[tokio::test]
async fn watch_pushes_every_slot_change() {
    let agent = sleeper("2");
    let watcher = agent.client().await;
    let mut watch = watcher
        .watch()
        .await
        .expect("answered")
        .expect("WATCH is supported");
    assert_eq!(watch.total, Some(2));
    for id in 0..2 {
        let a = watch.next().await.unwrap();
        assert_eq!(
            (a.command.as_deref(), a.id, a.status),
            (Some("STATUS"), id, Some(SlotStatus::Idle))
        );
    }
    let mut client = agent.client().await;
    assert!(call(&mut client, Request::Start(StartRequest::default()))
        .await
        .is_ok());
    let mut seen = Vec::new();
    while seen.last() != Some(&SlotStatus::Running) {
        let a = tokio::time::timeout(TIMEOUT, watch.next())
            .await
            .expect("a push")
            .unwrap();
        assert_eq!(a.id, 0);
        seen.push(a.status.unwrap());
    }
    assert_eq!(seen, [SlotStatus::Initializing, SlotStatus::Running]);
    assert!(call(&mut client, Request::Stop { id: 0 }).await.is_ok());
    let mut seen = Vec::new();
    while seen.last() != Some(&SlotStatus::Idle) {
        let a = tokio::time::timeout(TIMEOUT, watch.next())
            .await
            .expect("a push")
            .unwrap();
        seen.push(a.status.unwrap());
    }
    assert_eq!(seen, [SlotStatus::Deinitializing, SlotStatus::Idle]);
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let agent = sleeper("2");
    assert_eq!(agent.http_get("/healthz").0, 200);
    assert_eq!(agent.http_get("/readyz").0, 200);
    let mut client = agent.client().await;
    assert!(call(&mut client, Request::Start(StartRequest::default()))
        .await
        .is_ok());
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    let (code, metrics) = agent.http_get("/metrics");
    assert_eq!(code, 200);
    for line in [
        r#"openspace_agent_slots{state="RUNNING"} 1"#,
        r#"openspace_agent_slots{state="IDLE"} 1"#,
        "openspace_agent_instance_starts_total 1",
        r#"openspace_agent_command_duration_seconds_count{command="START"} 1"#,
        "openspace_agent_command_connections 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn resolution_and_status_answer_the_size_applied_not_the_one_asked() {
    let api_port = support::free_port().to_string();
    let agent = Agent::start(&["--capacity", "1", "--api-base-port", &api_port]);
    let mut client = agent.client().await;
    // An odd size is streamed one pixel smaller (4:2:0); START says so too.
    let started = once(&agent, r#"{"command":"START","width":641,"height":361}"#).await;
    assert_eq!(started["error"], json!("none"));
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    let s = status(&mut client, 0).await;
    assert_eq!((s.width, s.height), (Some(640), Some(360)));
    // Past the encoder's largest picture (3840x2160): clamped, and answered as such.
    let a = once(
        &agent,
        r#"{"command":"RESOLUTION","id":0,"width":7001,"height":4320}"#,
    )
    .await;
    assert_eq!(
        a,
        json!({"command":"RESOLUTION","error":"none","id":0,"width":3840,"height":2160})
    );
    let s = status(&mut client, 0).await;
    assert_eq!((s.width, s.height), (Some(3840), Some(2160)));
}
