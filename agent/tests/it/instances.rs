//! Instance supervision with real child programs: placeholders, readiness, crashes, the start
//! timeout, graceful and forced stops, reaping, and the agent's own graceful shutdown.

use crate::support;

use std::time::{Duration, Instant};

use openspace_agent::command::{Request, SlotStatus, StartRequest};
use support::{
    call, free_port, process_exists, read_pid, status, wait_status, Agent, Scratch, TIMEOUT,
};

fn start() -> Request {
    Request::Start(StartRequest::default())
}

/// A shell instance: writes its pid to `pid.{id}` then runs `body`.
fn shell(dir: &Scratch, body: &str) -> String {
    format!("sh -c 'echo $$ > {}/pid.{{id}}; {body}'", dir.0.display())
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + TIMEOUT;
    while process_exists(pid) {
        assert!(Instant::now() < deadline, "process {pid} was never reaped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn placeholders_and_environment_reach_the_program() {
    let dir = Scratch::new("placeholders");
    let out = dir.str("args.{id}");
    let template = format!(
        "sh -c 'echo \"$0 $1 $2 $3 $4 $OPENSPACE_SESSION\" > {out}; exec sleep 1000' {{id}} {{api_port}} {{width}} {{height}} {{profile}}"
    );
    let agent = Agent::start(&[
        "--capacity",
        "2",
        "--api-base-port",
        "5000",
        "--instance-command",
        &template,
    ]);
    let mut client = agent.client().await;
    call(&mut client, start()).await;
    let second = Request::Start(StartRequest {
        session: Some("uid-9".into()),
        width: Some(1920),
        height: Some(1080),
        profile: Some("mars".into()),
        warm: false,
    });
    assert_eq!(call(&mut client, second).await.id, 1);
    let deadline = Instant::now() + TIMEOUT;
    let read = |f: &str| std::fs::read_to_string(dir.path(f)).unwrap_or_default();
    while !read("args.1").ends_with('\n') || !read("args.0").ends_with('\n') {
        assert!(
            Instant::now() < deadline,
            "the instances never wrote their arguments"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(read("args.0"), "0 5000 1280 720 default \n");
    assert_eq!(read("args.1"), "1 5001 1920 1080 mars uid-9\n");
}

#[tokio::test]
async fn instance_output_goes_to_the_agent_log_under_its_id() {
    let agent = Agent::start(&[
        "--instance-command",
        "sh -c 'echo hello-from-instance; echo oops >&2; exec sleep 1000'",
    ]);
    let mut client = agent.client().await;
    call(&mut client, start()).await;
    call(&mut client, start()).await;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let logs = agent.logs();
        let found = |id: u32, stream: &str, text: &str| {
            logs.lines().any(|l| {
                l.contains(&format!("[instance {id}] {text}"))
                    && l.contains(&format!("stream=\"{stream}\""))
            })
        };
        if found(0, "stdout", "hello-from-instance")
            && found(1, "stdout", "hello-from-instance")
            && found(1, "stderr", "oops")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance output missing from the log:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn tcp_readiness_waits_for_the_api_port() {
    let base = free_port();
    let program = "python3 -c 'import socket,sys,time; time.sleep(0.6); s=socket.socket(); \
                   s.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(); time.sleep(1000)' {api_port}";
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--ready",
        "tcp",
        "--api-base-port",
        &base.to_string(),
        "--instance-command",
        program,
    ]);
    let mut client = agent.client().await;
    let started = Instant::now();
    call(&mut client, start()).await;
    assert_eq!(
        status(&mut client, 0).await.status,
        Some(SlotStatus::Initializing)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status(&mut client, 0).await.status,
        Some(SlotStatus::Initializing),
        "not ready before the port opens"
    );
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn tcp_readiness_refuses_a_port_someone_else_holds() {
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--ready",
        "tcp",
        "--api-base-port",
        &port.to_string(),
        "--instance-command",
        "sleep 1000",
    ]);
    let mut client = agent.client().await;
    call(&mut client, start()).await;
    let a = support::wait_failed(&mut client, 0).await;
    assert!(
        a.reason
            .as_deref()
            .is_some_and(|r| r.contains("already in use")),
        "{a:?}"
    );
}

#[tokio::test]
async fn a_crash_frees_the_slot_and_is_reported() {
    let dir = Scratch::new("crash");
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--instance-command",
        &shell(&dir, "sleep 0.3; exit 3"),
    ]);
    let mut client = agent.client().await;
    let a = call(
        &mut client,
        Request::Start(StartRequest {
            session: Some("uid-c".into()),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(a.id, 0);
    let pid = read_pid(&dir.path("pid.0")).await;
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    let a = wait_status(&mut client, 0, SlotStatus::Idle, TIMEOUT).await;
    assert_eq!(
        a.reason.as_deref(),
        Some("exited with status 3 while running")
    );
    assert_eq!(
        a.session.as_deref(),
        Some("uid-c"),
        "the failed instance's owner is named"
    );
    wait_gone(pid).await;
    let (_, metrics) = agent.http_get("/metrics");
    assert!(
        metrics.contains(r#"openspace_agent_instance_failures_total{kind="exit"} 1"#),
        "{metrics}"
    );
    // The slot is free again and the report is cleared by the next START.
    let a = call(&mut client, start()).await;
    assert_eq!((a.error.as_str(), a.id), ("none", 0));
    assert_eq!(status(&mut client, 0).await.reason, None);
}

#[tokio::test]
async fn a_program_that_cannot_start_is_reported() {
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--instance-command",
        "/nonexistent/openspace --id {id}",
    ]);
    let mut client = agent.client().await;
    assert!(call(&mut client, start()).await.is_ok());
    let a = support::wait_failed(&mut client, 0).await;
    assert!(
        a.reason
            .as_deref()
            .is_some_and(|r| r.contains("could not start")),
        "{a:?}"
    );
    let (_, metrics) = agent.http_get("/metrics");
    assert!(metrics.contains(r#"openspace_agent_instance_failures_total{kind="spawn_error"} 1"#));
}

#[tokio::test]
async fn the_start_timeout_kills_an_instance_that_never_gets_ready() {
    let dir = Scratch::new("timeout");
    let port = free_port();
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--ready",
        "tcp",
        "--api-base-port",
        &port.to_string(),
        "--start-timeout",
        "700ms",
        "--instance-command",
        &shell(&dir, "exec sleep 1000"),
    ]);
    let mut client = agent.client().await;
    call(&mut client, start()).await;
    let pid = read_pid(&dir.path("pid.0")).await;
    assert_eq!(
        status(&mut client, 0).await.status,
        Some(SlotStatus::Initializing)
    );
    let a = wait_status(&mut client, 0, SlotStatus::Idle, TIMEOUT).await;
    assert!(
        a.reason
            .as_deref()
            .is_some_and(|r| r.contains("start timeout")),
        "{a:?}"
    );
    assert!(
        !process_exists(pid),
        "the timed-out instance was killed and reaped"
    );
    let (_, metrics) = agent.http_get("/metrics");
    assert!(metrics.contains(r#"openspace_agent_instance_failures_total{kind="start_timeout"} 1"#));
}

#[tokio::test]
async fn stop_is_graceful_and_deinitializing_lasts_until_the_process_is_gone() {
    let dir = Scratch::new("graceful");
    // On SIGTERM it takes 400 ms to "save", writes a marker, then exits.
    let body = format!(
        "trap \"sleep 0.4; echo bye > {}/stopped; exit 0\" TERM; while true; do sleep 0.05; done",
        dir.0.display()
    );
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--stop-grace",
        "5s",
        "--instance-command",
        &shell(&dir, &body),
    ]);
    let mut client = agent.client().await;
    call(&mut client, start()).await;
    let pid = read_pid(&dir.path("pid.0")).await;
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    // STATUS says how long the instance has been RUNNING, on the agent's clock.
    let first = status(&mut client, 0)
        .await
        .running_ms
        .expect("running_ms while RUNNING");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = status(&mut client, 0).await.running_ms.unwrap();
    assert!(
        later >= first + 250,
        "running_ms grows with time: {first} -> {later}"
    );
    let stopped_at = Instant::now();
    assert!(call(&mut client, Request::Stop { id: 0 }).await.is_ok());
    let stopping = status(&mut client, 0).await;
    assert_eq!(stopping.status, Some(SlotStatus::Deinitializing));
    assert_eq!(
        stopping.running_ms, None,
        "only a RUNNING instance reports it"
    );
    let a = call(&mut client, Request::Stop { id: 0 }).await;
    assert!(a.is_ok(), "a second STOP while stopping is fine: {a:?}");
    wait_status(&mut client, 0, SlotStatus::Idle, TIMEOUT).await;
    assert!(
        stopped_at.elapsed() >= Duration::from_millis(350),
        "IDLE before the program finished"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path("stopped")).unwrap(),
        "bye\n",
        "the program saw SIGTERM"
    );
    assert!(!process_exists(pid));
    assert_eq!(
        status(&mut client, 0).await.reason,
        None,
        "a requested stop is no failure"
    );
}

#[tokio::test]
async fn a_program_that_ignores_sigterm_is_killed_after_the_grace_with_its_children() {
    let dir = Scratch::new("stubborn");
    let body = format!(
        "trap \"\" TERM; sleep 1000 & echo $! > {}/child; wait; wait",
        dir.0.display()
    );
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--stop-grace",
        "600ms",
        "--instance-command",
        &shell(&dir, &body),
    ]);
    let mut client = agent.client().await;
    call(&mut client, start()).await;
    let pid = read_pid(&dir.path("pid.0")).await;
    let child = read_pid(&dir.path("child")).await;
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    let stopped_at = Instant::now();
    call(&mut client, Request::Stop { id: 0 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status(&mut client, 0).await.status,
        Some(SlotStatus::Deinitializing)
    );
    assert!(process_exists(pid), "still inside the grace period");
    wait_status(&mut client, 0, SlotStatus::Idle, TIMEOUT).await;
    assert!(stopped_at.elapsed() >= Duration::from_millis(550));
    assert!(!process_exists(pid), "killed and reaped");
    wait_gone(child).await; // the whole process group got the signal
}

#[tokio::test]
async fn the_agent_stops_every_instance_gracefully_on_sigterm() {
    let dir = Scratch::new("shutdown");
    let body = format!(
        "trap \"echo bye > {}/stopped.$0; exit 0\" TERM; while true; do sleep 0.05; done",
        dir.0.display()
    );
    let template = format!(
        "sh -c 'echo $$ > {}/pid.$0; {body}' {{id}}",
        dir.0.display()
    );
    let mut agent = Agent::start(&["--capacity", "3", "--instance-command", &template]);
    let mut client = agent.client().await;
    for _ in 0..3 {
        call(&mut client, start()).await;
    }
    let mut pids = Vec::new();
    for id in 0..3 {
        wait_status(&mut client, id, SlotStatus::Running, TIMEOUT).await;
        pids.push(read_pid(&dir.path(&format!("pid.{id}"))).await);
    }
    drop(client);
    assert_eq!(agent.terminate(TIMEOUT), Some(0), "clean exit");
    for (id, pid) in pids.into_iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(dir.path(&format!("stopped.{id}"))).unwrap(),
            "bye\n"
        );
        assert!(!process_exists(pid));
    }
}
