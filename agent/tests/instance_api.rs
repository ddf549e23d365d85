//! The OpenSpace JSON API subset of built-in instances, on `/api/N` and on port 4682 + N.

mod support;

use futures_util::{SinkExt, StreamExt};
use openspace_agent::command::{Request, SlotStatus};
use serde_json::{json, Value};
use support::{call, free_port, wait_status, Agent, Scratch, TIMEOUT};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ask(ws: &mut Ws, message: Value) -> Value {
    ws.send(Message::text(message.to_string())).await.unwrap();
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a reply")
            .expect("open")
            .unwrap()
        {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            _ => continue,
        }
    }
}

async fn gui_session(ws: &mut Ws) {
    let docs = ask(
        ws,
        json!({"topic": 0, "type": "documentation", "payload": {"type": "lua"}}),
    )
    .await;
    assert!(docs["payload"].is_array(), "{docs}");
    let connect = ask(
        ws,
        json!({"topic": 1, "type": "flightcontroller", "payload": {"type": "connect"}}),
    )
    .await;
    assert_eq!(connect["payload"]["type"], "connect", "{connect}");
    let error = ask(ws, json!({"topic": 2, "type": "teleport", "payload": {}})).await;
    assert_eq!(
        (error["status"].as_str(), error["code"].as_u64()),
        (Some("error"), Some(404))
    );
}

#[tokio::test]
async fn the_api_answers_on_the_http_path_and_on_the_instance_port() {
    let base = free_port();
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--api-base-port",
        &base.to_string(),
        "--api-host",
        "127.0.0.1",
    ]);
    let mut client = agent.client().await;
    call(&mut client, Request::Start(Default::default())).await;
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;

    let (mut by_path, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/0", agent.http_addr))
            .await
            .unwrap();
    gui_session(&mut by_path).await;
    let (mut by_port, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{base}"))
        .await
        .unwrap();
    gui_session(&mut by_port).await;

    // A stopped instance's port closes with it.
    call(&mut client, Request::Stop { id: 0 }).await;
    wait_status(&mut client, 0, SlotStatus::Idle, TIMEOUT).await;
    assert!(
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{base}"))
            .await
            .is_err()
    );
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/api/0", agent.http_addr))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_taken_api_port_fails_the_start_with_a_reason() {
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--api-base-port",
        &port.to_string(),
        "--api-host",
        "127.0.0.1",
    ]);
    let mut client = agent.client().await;
    call(&mut client, Request::Start(Default::default())).await;
    let answer = support::wait_failed(&mut client, 0).await;
    assert!(answer.reason.unwrap().contains("API port"));
}

#[tokio::test]
async fn the_api_needs_the_instance_token_when_tokens_are_enforced() {
    let dir = Scratch::new("api-token");
    std::fs::write(dir.path("token"), "command-secret").unwrap();
    let base = free_port();
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--api-base-port",
        &base.to_string(),
        "--token-file",
        &dir.str("token"),
    ]);
    let mut client = openspace_agent::command::CommandClient::connect(
        &agent.url(),
        Some("command-secret"),
        TIMEOUT,
    )
    .await
    .unwrap();
    let token = client
        .call(&Request::Start(Default::default()))
        .await
        .unwrap()
        .token
        .unwrap();
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    for url in [
        format!("ws://{}/api/0", agent.http_addr),
        format!("ws://127.0.0.1:{base}/"),
    ] {
        assert!(
            tokio_tungstenite::connect_async(url.clone()).await.is_err(),
            "{url} without a token"
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={token}"))
            .await
            .unwrap();
        gui_session(&mut ws).await;
    }
}

/// An API server like OpenSpace's on its port: a WebSocket that answers `echo:` + each message,
/// listening only after a second of "initialisation" (so the slot is INITIALIZING meanwhile).
const ECHO_API: &str = r#"
import asyncio, sys, websockets
async def echo(ws, *_):
    async for message in ws:
        await ws.send("echo:" + message)
async def main():
    await asyncio.sleep(1)
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()
asyncio.run(main())
"#;

#[tokio::test]
async fn api_of_a_program_is_relayed_on_the_http_path_with_its_token() {
    let dir = Scratch::new("api-relay");
    std::fs::write(dir.path("token"), "command-secret").unwrap();
    std::fs::write(dir.path("echo.py"), ECHO_API).unwrap();
    let base = free_port();
    let command = format!("/usr/bin/python3 {} {{api_port}}", dir.str("echo.py"));
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--api-base-port",
        &base.to_string(),
        "--token-file",
        &dir.str("token"),
        "--instance-command",
        &command,
        "--ready",
        "tcp",
    ]);
    let mut client = openspace_agent::command::CommandClient::connect(
        &agent.url(),
        Some("command-secret"),
        TIMEOUT,
    )
    .await
    .unwrap();
    let url = format!("ws://{}/api/0", agent.http_addr);
    let token = client
        .call(&Request::Start(Default::default()))
        .await
        .unwrap()
        .token
        .unwrap();
    // With the right token but before the program is RUNNING: no relay (404).
    match tokio_tungstenite::connect_async(format!("{url}?token={token}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!(
            "expected 404 while initializing, got {:?}",
            other.map(|_| ())
        ),
    }
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    assert!(
        tokio_tungstenite::connect_async(url.clone()).await.is_err(),
        "no relay without the token"
    );
    assert!(
        tokio_tungstenite::connect_async(format!("{url}?token=wrong"))
            .await
            .is_err(),
        "no relay with a wrong token"
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={token}"))
        .await
        .unwrap();
    for text in ["{\"topic\":1}", "second"] {
        ws.send(Message::text(text)).await.unwrap();
        let answer = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("the program answers through the relay")
            .expect("a message")
            .unwrap();
        assert_eq!(answer.into_text().unwrap().as_str(), format!("echo:{text}"));
    }
    // Stopping the instance ends the relayed connection.
    call(&mut client, Request::Stop { id: 0 }).await;
    let end = tokio::time::timeout(TIMEOUT, async {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the relay closes when the program goes");
}
