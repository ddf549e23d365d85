//! Runs the real `openspace-agent` binary on loopback for tests, and small helpers around it.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openspace_agent::command::{Answer, CommandClient, Request, SlotStatus};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Agent {
    child: Option<Child>,
    pub command_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub signaling_addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    /// Starts the agent with ephemeral ports on 127.0.0.1 and the given extra flags.
    pub fn start(extra: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_openspace-agent"))
            .args([
                "--command-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--signaling-listen",
                "127.0.0.1:0",
                "--webrtc-address",
                "127.0.0.1",
            ])
            .args(extra)
            .env("RUST_LOG", "info,webrtc=warn,rtc=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let (Some(c), Some(h), Some(s)) = (
                    field(&line, "command_addr="),
                    field(&line, "http_addr="),
                    field(&line, "signaling_addr="),
                ) {
                    let _ = tx.send((c, h, s));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (command, http, signaling) = match rx.recv_timeout(TIMEOUT) {
            Ok(addrs) => addrs,
            Err(_) => panic!(
                "agent did not report its addresses; log:\n{}",
                logs.lock().unwrap().join("\n")
            ),
        };
        Agent {
            child: Some(child),
            command_addr: command.parse().expect("command_addr is an address"),
            http_addr: http.parse().expect("http_addr is an address"),
            signaling_addr: signaling.parse().expect("signaling_addr is an address"),
            logs,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.command_addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent is running").id()
    }

    pub async fn client(&self) -> CommandClient {
        CommandClient::connect(&self.url(), None, TIMEOUT)
            .await
            .expect("the command port accepts a client")
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// GET on the HTTP port, returning (status, body), with a plain HTTP/1.0 request.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.http_addr).expect("http port accepts");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// SIGTERM, then waits for the exit (SIGKILL after the timeout). Returns the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "agent did not exit within {within:?} of SIGTERM; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- agent log ----\n{}\n-------------------", self.logs());
        }
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(key)? + key.len();
    Some(line[start..].split_whitespace().next()?.to_owned())
}

pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

pub async fn call(client: &mut CommandClient, request: Request) -> Answer {
    client.call(&request).await.expect("the agent answers")
}

pub async fn status(client: &mut CommandClient, id: u32) -> Answer {
    call(client, Request::Status { id }).await
}

/// Polls STATUS until the slot is in `want`, or panics after `within`.
pub async fn wait_status(
    client: &mut CommandClient,
    id: u32,
    want: SlotStatus,
    within: Duration,
) -> Answer {
    let deadline = Instant::now() + within;
    loop {
        let answer = status(client, id).await;
        if answer.status == Some(want) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "slot {id} did not reach {want:?} within {within:?}; last answer {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls STATUS until the slot is IDLE with a failure `reason`; returns that answer.
pub async fn wait_failed(client: &mut CommandClient, id: u32) -> Answer {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let answer = status(client, id).await;
        if answer.status == Some(SlotStatus::Idle) && answer.reason.is_some() {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "slot {id} never failed; last answer {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether a process with this pid still exists (a zombie counts: it was not reaped).
pub fn process_exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits until `path` exists and holds a pid; returns it.
pub async fn read_pid(path: &std::path::Path) -> i32 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never held a pid",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A fresh scratch directory, removed on drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("openspace-agent-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }

    pub fn str(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on loopback (bound and released; tests use it right away).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
