//! A real kube-apiserver (from `e2e/control-plane/control-plane.sh run`, which exports
//! KUBECONFIG), real agent processes on their own loopback addresses registered as Pods the way
//! a kubelet would, and the real operator binary.
#![allow(dead_code)] // each test file uses its own subset

pub mod pools;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use openspace_crds::{OpenSpacePool, OpenSpaceSession, Phase};
use openspace_protocol::{Answer, CommandClient, Request};
use serde_json::json;

pub const WAIT: Duration = Duration::from_secs(30);

/// One test's corner of the shared control plane: its own namespace, agents and operators.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    pub sessions: Api<OpenSpaceSession>,
    pub pools: Api<OpenSpacePool>,
    pub pods: Api<Pod>,
}

impl Cluster {
    pub async fn new(test: &str) -> Cluster {
        if std::env::var_os("KUBECONFIG").is_none() {
            panic!(
                "these tests need a control plane: run them with `make unit` or \
                 `e2e/control-plane/control-plane.sh run DIR -- cargo test -p openspace-operator`"
            );
        }
        let client = Client::try_default()
            .await
            .expect("a client from KUBECONFIG");
        Cluster::with_client(test, client).await
    }

    /// The same on the apiserver `client` talks to (a test's private control plane).
    pub async fn with_client(test: &str, client: Client) -> Cluster {
        install_crd(&client).await;
        let namespace = format!("{test}-{}", std::process::id() % 100_000);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("creating namespace {namespace}: {e}"),
        }
        Cluster {
            sessions: Api::namespaced(client.clone(), &namespace),
            pools: Api::namespaced(client.clone(), &namespace),
            pods: Api::namespaced(client.clone(), &namespace),
            client,
            namespace,
        }
    }

    /// Creates the Pod of an agent and marks it Ready with its loopback IP, as a kubelet would.
    pub async fn register(&self, agent: &Agent) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": agent.name, "labels": {
                "app.kubernetes.io/name": "openspace",
                "app.kubernetes.io/component": "agent",
            }},
            "spec": {"containers": [{"name": "agent", "image": "openspace-agent:test", "ports": [
                {"name": "command", "containerPort": agent.command_port}
            ]}]}
        }))
        .unwrap();
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("create agent pod");
        let status = json!({"status": {
            "phase": "Running",
            "podIP": agent.ip,
            "podIPs": [{"ip": agent.ip}],
            "conditions": [{"type": "Ready", "status": "True"}]
        }});
        self.pods
            .patch_status(&agent.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("mark the agent pod ready");
    }

    pub async fn create(&self, name: &str, spec: serde_json::Value) -> OpenSpaceSession {
        let session: OpenSpaceSession = serde_json::from_value(json!({
            "apiVersion": "openspace.io/v1alpha1",
            "kind": "OpenSpaceSession",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap();
        self.sessions
            .create(&PostParams::default(), &session)
            .await
            .unwrap_or_else(|e| panic!("create session {name}: {e}"))
    }

    pub async fn get(&self, name: &str) -> Option<OpenSpaceSession> {
        self.sessions.get_opt(name).await.expect("get session")
    }

    /// Polls until `check` holds for the session, panicking with its last state after `within`.
    pub async fn wait_for(
        &self,
        name: &str,
        within: Duration,
        what: &str,
        check: impl Fn(&OpenSpaceSession) -> bool,
    ) -> OpenSpaceSession {
        let deadline = Instant::now() + within;
        loop {
            let session = self.get(name).await;
            if let Some(session) = &session {
                if check(session) {
                    return session.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "session {name} not {what} within {within:?}; last seen: {:#?}",
                    session.map(|s| s.status)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_phase(&self, name: &str, phase: Phase) -> OpenSpaceSession {
        self.wait_for(name, WAIT, &format!("{phase:?}"), |s| {
            phase_of(s) == Some(phase)
        })
        .await
    }

    pub async fn delete(&self, name: &str) {
        self.sessions
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete session");
    }

    pub async fn wait_gone(&self, name: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while let Some(session) = self.get(name).await {
            if Instant::now() > deadline {
                panic!(
                    "session {name} still exists after {within:?}: {:#?}",
                    session.metadata
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn phase_of(session: &OpenSpaceSession) -> Option<Phase> {
    session.status.as_ref().and_then(|s| s.phase)
}

async fn install_crd(client: &Client) {
    apply_crd(client, OpenSpaceSession::crd()).await;
    apply_crd(client, OpenSpacePool::crd()).await;
}

async fn apply_crd(client: &Client, crd: CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply the CRD");
    let deadline = Instant::now() + WAIT;
    loop {
        let established = crds
            .get(&name)
            .await
            .ok()
            .and_then(|c| c.status)
            .is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return;
        }
        assert!(Instant::now() < deadline, "the CRD was not established");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback address of its own per agent, so every agent can use the seed's fixed ports.
pub fn next_ip() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let block = std::process::id() % 200 + 20;
    format!("127.{block}.{}.{}", n / 250, n % 250 + 1)
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Output lines of a child process, kept for failure reports and address discovery.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn follow(
        &self,
        stream: impl std::io::Read + Send + 'static,
        found: Option<(&'static str, std::sync::mpsc::Sender<String>)>,
    ) {
        let sink = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Some((key, tx)) = &found {
                    if let Some(value) = field(&line, key) {
                        let _ = tx.send(value);
                    }
                }
                sink.0.lock().unwrap().push(line);
            }
        });
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(key)? + key.len();
    let value: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    (!value.is_empty()).then_some(value)
}

/// A process killed (and reaped) on drop, its log printed when the test failed.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    pub log: Log,
}

impl Process {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal);
    }

    /// Waits for the process to exit by itself; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit; log:\n{}",
                self.name,
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 10 s; always reaped.
    pub fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        // While the child is still held, so `pid()` is its id.
        self.signal(nix::sys::signal::Signal::SIGTERM);
        if let Some(mut child) = self.child.take() {
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

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}\n----", self.name, self.log.text());
        }
        self.stop();
    }
}

fn spawn(name: &str, mut command: Command, key: Option<&'static str>) -> (Process, Option<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let log = Log::default();
    let (tx, rx) = std::sync::mpsc::channel();
    log.follow(child.stdout.take().unwrap(), key.map(|k| (k, tx.clone())));
    log.follow(child.stderr.take().unwrap(), key.map(|k| (k, tx)));
    let process = Process {
        name: name.to_owned(),
        child: Some(child),
        log,
    };
    let found = key.map(|k| {
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{name} did not log {k}; log:\n{}", process.log.text()))
    });
    (process, found)
}

/// The real agent binary on a loopback address of its own.
pub struct Agent {
    pub name: String,
    pub ip: String,
    pub command_port: i32,
    pub process: Process,
}

impl Agent {
    /// `extra`: e.g. `["--capacity", "2", "--instance-command", "sleep 600"]`.
    pub fn start(name: &str, extra: &[&str]) -> Agent {
        let ip = next_ip();
        let binary = std::env::var_os("OPENSPACE_AGENT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("openspace-agent"));
        assert!(
            binary.exists(),
            "{} is missing: build it first (cargo build -p openspace-agent)",
            binary.display()
        );
        let mut command = Command::new(binary);
        command
            .args(["--command-listen", &format!("{ip}:0")])
            .args(["--http-listen", &format!("{ip}:4690")])
            .args(["--signaling-listen", &format!("{ip}:8443")])
            .args(["--api-host", &ip])
            .args(["--webrtc-address", &ip])
            .args(extra)
            .env("RUST_LOG", "info,webrtc=warn,rtc=warn");
        let (process, addr) = spawn(name, command, Some("command_addr="));
        let port = addr
            .and_then(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .expect("command_addr has a port");
        Agent {
            name: name.to_owned(),
            ip,
            command_port: port,
            process,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}:{}", self.ip, self.command_port)
    }

    pub async fn call(&self, request: &Request) -> Answer {
        let mut client = CommandClient::connect(&self.url(), None, WAIT)
            .await
            .expect("connect to the agent");
        let answer = client.call(request).await.expect("an answer");
        client.close().await;
        answer
    }

    pub async fn running(&self) -> u32 {
        self.call(&Request::ServerStatus).await.running.unwrap_or(0)
    }
}

/// The seed's supervisor (e2e/seed-supervisor), speaking only the original protocol.
pub struct SeedServer {
    pub url: String,
    pub process: Process,
}

impl SeedServer {
    pub fn start(extra: &[&str]) -> SeedServer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../e2e/seed-supervisor/seed_supervisor.py");
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import websockets"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("python3 with websockets (apt install python3-websockets)");
        let mut command = Command::new(python);
        command
            .arg(script)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra);
        let (process, addr) = spawn("seed-supervisor", command, Some("listening="));
        SeedServer {
            url: format!("ws://{}", addr.expect("listening=HOST:PORT")),
            process,
        }
    }

    pub async fn call(&self, request: &Request) -> Answer {
        openspace_protocol::call_once(&self.url, None, request, WAIT)
            .await
            .expect("the seed server answers")
    }
}

/// The real operator binary, watching only this test's namespace.
pub fn operator(cluster: &Cluster, name: &str, extra: &[&str], env: &[(&str, &str)]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_openspace-operator"));
    let namespace = cluster.namespace.as_str();
    // Short timings for tests; a flag in `extra` replaces its default here.
    let defaults = [
        ("--agent-namespace", namespace),
        ("--session-namespace", namespace),
        ("--lease-namespace", namespace),
        ("--identity", name),
        ("--metrics-listen", "127.0.0.1:0"),
        ("--lease-duration", "3s"),
        ("--status-interval", "1s"),
        ("--server-lost-after", "2s"),
        ("--stop-give-up", "5s"),
        ("--max-backoff", "5s"),
        ("--orphan-sweep", "1s"),
    ];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            command.args([flag, value]);
        }
    }
    command
        .args(extra)
        .env("RUST_LOG", "info,openspace_operator=debug,kube=warn");
    for (k, v) in env {
        command.env(k, v);
    }
    spawn(name, command, None).0
}

/// A plain HTTP/1.0 GET; the body.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
