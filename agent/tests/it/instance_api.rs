//! The OpenSpace JSON API subset of built-in instances, on `/api/N` and on port 4682 + N.

use crate::support;

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

/// The python of the cached virtual environment with OpenSpace's Python client (PyPI
/// `openspace-api`, pinned in the script), created on first use.
fn python_api() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/python-api-venv.sh");
    let out = std::process::Command::new(script)
        .output()
        .expect("scripts/python-api-venv.sh runs");
    assert!(
        out.status.success(),
        "the openspace-api venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs agent/tests/python/api_client.py with `args`; returns what it printed (JSON).
async fn python_client(args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/api_client.py");
    let run = tokio::process::Command::new(python_api())
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the Python client finishes")
        .expect("python runs");
    assert!(
        out.status.success(),
        "the Python client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}

/// A built-in agent with its TCP API on a free port and tokens enforced; returns the agent, the
/// TCP port and instance 0's token (running).
async fn tcp_agent(dir: &Scratch) -> (Agent, u16, String) {
    std::fs::write(dir.path("token"), "command-secret").unwrap();
    let (ws, tcp) = (free_port(), free_port());
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--api-host",
        "127.0.0.1",
        "--api-base-port",
        &ws.to_string(),
        "--api-tcp-base-port",
        &tcp.to_string(),
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
    (agent, tcp, token)
}

#[tokio::test]
async fn openspaces_python_client_works_over_the_tcp_api() {
    let dir = Scratch::new("api-python");
    let (_agent, tcp, token) = tcp_agent(&dir).await;
    let seen = python_client(&["check", "127.0.0.1", &tcp.to_string(), &token]).await;
    assert_eq!(seen["deltaTime"], 960.0, "{seen}");
    assert_eq!(seen["fov_pushed"], 30.0, "{seen}");
    assert_eq!(seen["refused"]["status"], "incorrectKey", "{seen}");
    assert_eq!(seen["unauthorized_get"], "no answer", "{seen}");
}

type TcpLines = (
    tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
    tokio::net::tcp::OwnedWriteHalf,
);

async fn tcp_connect(port: u16) -> TcpLines {
    use tokio::io::AsyncBufReadExt;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, write) = stream.into_split();
    (tokio::io::BufReader::new(read).lines(), write)
}

async fn tcp_ask(conn: &mut TcpLines, message: Value) -> Value {
    use tokio::io::AsyncWriteExt;
    conn.1
        .write_all(format!("{message}\n").as_bytes())
        .await
        .unwrap();
    let line = tokio::time::timeout(TIMEOUT, conn.0.next_line())
        .await
        .expect("an answer")
        .unwrap()
        .expect("a line");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn the_tcp_api_ends_an_overlong_line_and_keeps_serving_others() {
    use tokio::io::AsyncWriteExt;
    let dir = Scratch::new("api-tcp-limits");
    let (_agent, tcp, token) = tcp_agent(&dir).await;
    let mut good = tcp_connect(tcp).await;
    let auth = json!({"topic": 0, "type": "authorize", "payload": {"password": token}});
    assert_eq!(
        tcp_ask(&mut good, auth).await["payload"]["status"],
        "authorized"
    );
    // A client that never reads, streaming time, and one that sends a line over the limit.
    let mut silent = tcp_connect(tcp).await;
    let open = json!({"topic": 0, "type": "authorize", "payload": {"password": token}});
    silent
        .1
        .write_all(format!("{open}\n").as_bytes())
        .await
        .unwrap();
    let time = json!({"topic": 1, "type": "time", "payload": {"event": "start_subscription"}});
    silent
        .1
        .write_all(format!("{time}\n").as_bytes())
        .await
        .unwrap();
    let mut big = tcp_connect(tcp).await;
    let _ = big.1.write_all(&vec![b'x'; 100 * 1024]).await;
    let error: Value = serde_json::from_str(
        &tokio::time::timeout(TIMEOUT, big.0.next_line())
            .await
            .expect("an answer")
            .unwrap()
            .expect("an error line"),
    )
    .unwrap();
    assert_eq!(error["status"], "error", "{error}");
    assert!(error["message"].as_str().unwrap().contains("longer than"));
    assert!(
        tokio::time::timeout(TIMEOUT, big.0.next_line())
            .await
            .expect("closed")
            .unwrap()
            .is_none(),
        "the connection ends"
    );
    let get = json!({"topic": 1, "type": "get", "payload": {"property": "RenderEngine.HorizFieldOfView"}});
    assert!(tcp_ask(&mut good, get).await["payload"]["Value"].is_number());
}

/// An API server like OpenSpace's TCP one: answers `echo:` + each line, on loopback.
const ECHO_TCP_API: &str = r#"
import socketserver, sys
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b"echo:" + line)
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"#;

#[tokio::test]
async fn the_tcp_api_of_a_program_is_relayed_after_the_token() {
    let dir = Scratch::new("api-tcp-relay");
    std::fs::write(dir.path("token"), "command-secret").unwrap();
    std::fs::write(dir.path("echo.py"), ECHO_TCP_API).unwrap();
    // The program serves its TCP API at {api_tcp_port}; with the program's TCP base equal to its
    // WebSocket API base, `--ready tcp` (which polls {api_port}) waits for that listener.
    let (program, tcp) = (free_port(), free_port());
    let command = format!("/usr/bin/python3 {} {{api_tcp_port}}", dir.str("echo.py"));
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--ready",
        "tcp",
        "--api-base-port",
        &program.to_string(),
        "--api-tcp-base-port",
        &tcp.to_string(),
        "--program-api-tcp-base-port",
        &program.to_string(),
        "--api-host",
        "127.0.0.1",
        "--token-file",
        &dir.str("token"),
        "--instance-command",
        &command,
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
    let mut conn = tcp_connect(tcp).await;
    let wrong = json!({"topic": 0, "type": "authorize", "payload": {"password": "wrong"}});
    assert_eq!(
        tcp_ask(&mut conn, wrong).await["payload"]["status"],
        "incorrectKey"
    );
    let auth = json!({"topic": 1, "type": "authorize", "payload": {"password": token}});
    assert_eq!(
        tcp_ask(&mut conn, auth).await["payload"]["status"],
        "authorized"
    );
    // Then bytes pass unchanged.
    use tokio::io::AsyncWriteExt;
    conn.1.write_all(b"{\"topic\":2}\n").await.unwrap();
    let line = tokio::time::timeout(TIMEOUT, conn.0.next_line())
        .await
        .expect("the program answers through the relay")
        .unwrap()
        .expect("a line");
    assert_eq!(line, "echo:{\"topic\":2}");
}
