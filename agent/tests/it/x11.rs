//! x11 instances with real programs: an X server per slot (Xvfb, and Xorg with the dummy driver)
//! with its own cookie, xterm on it, window readiness, RESOLUTION through RandR, and crashes of
//! the program or of the X server reported and cleaned up. Each test runs on both servers.
//! (Frames, typing and clicking in a browser: e2e/browser/tests/x11.test.mjs.)

use crate::support;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use openspace_agent::command::{CommandClient, Request, SlotStatus, StartRequest};
use openspace_agent::x11::auth::{display_in_use, lock_path, socket_path};
use support::{call, process_exists, read_pid, status, wait_failed, wait_status, Agent, Scratch};

/// X servers and xterm take longer than the shell programs of the other tests.
const X_TIMEOUT: Duration = Duration::from_secs(20);

/// Display numbers no other test (or test run) uses: 2 per agent, from a per-process range.
fn display_base() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let base = 400 + (std::process::id() % 200) * 20 + NEXT.fetch_add(2, Ordering::Relaxed);
        if !display_in_use(base) && !display_in_use(base + 1) {
            return base;
        }
    }
}

/// `--x11-server` values; Xorg with `--x11-driver dummy` (Mesa on the CPU), as on a node
/// without a GPU.
const XVFB: &str = "xvfb";
const XORG: &str = "xorg";

fn x11_agent(server: &str, base: u32, command: &str) -> Agent {
    Agent::start(&[
        "--capacity",
        "2",
        "--instance-kind",
        "x11",
        "--instance-command",
        command,
        "--x11-display-base",
        &base.to_string(),
        "--x11-server",
        server,
        "--x11-driver",
        "dummy",
        "--stop-grace",
        "2s",
    ])
}

/// One `#[tokio::test]` per X server for a test written as `async fn name(server: &str)`.
macro_rules! on_each_server {
    ($test:ident: $xvfb:ident, $xorg:ident) => {
        #[tokio::test]
        async fn $xvfb() {
            $test(XVFB).await
        }
        #[tokio::test]
        async fn $xorg() {
            $test(XORG).await
        }
    };
}

/// The display's size as xdpyinfo reports it, with the given Xauthority file (None: none).
fn dimensions(display: u32, xauthority: Option<&str>) -> Option<(u32, u32)> {
    let mut command = Command::new("xdpyinfo");
    command.env("DISPLAY", format!(":{display}"));
    match xauthority {
        Some(file) => command.env("XAUTHORITY", file),
        None => command.env("XAUTHORITY", "/nonexistent"),
    };
    let output = command.output().expect("xdpyinfo runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("dimensions:"))?;
    let size = line.split_whitespace().nth(1)?;
    let (w, h) = size.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The pid in an X server's lock file.
fn server_pid(display: u32) -> i32 {
    let text = std::fs::read_to_string(lock_path(display)).expect("lock file");
    text.trim().parse().expect("a pid")
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + X_TIMEOUT;
    while process_exists(pid) {
        assert!(Instant::now() < deadline, "process {pid} was never reaped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn start(width: u32, height: u32) -> Request {
    Request::Start(StartRequest {
        width: Some(width),
        height: Some(height),
        session: Some("uid-x11".into()),
        ..Default::default()
    })
}

on_each_server!(a_program_runs_on_its_own_display_which_follows_resolution: xvfb_a_program_runs_on_its_own_display_which_follows_resolution, xorg_a_program_runs_on_its_own_display_which_follows_resolution);

async fn a_program_runs_on_its_own_display_which_follows_resolution(server: &str) {
    let dir = Scratch::new("x11-display");
    let base = display_base();
    // Writes what it was given, then shows its first window a moment later.
    let program = format!(
        "sh -c 'echo \"$DISPLAY $XAUTHORITY\" > {dir}/env.{{id}}; echo $$ > {dir}/pid.{{id}}; sleep 0.5; exec xterm -geometry 40x10'",
        dir = dir.0.display()
    );
    let agent = x11_agent(server, base, &program);
    let mut client = agent.client().await;
    let started = Instant::now();
    let answer = call(&mut client, start(800, 600)).await;
    assert_eq!((answer.error.as_str(), answer.id), ("none", 0));
    let pid = read_pid(&dir.path("pid.0")).await;
    // Not RUNNING while no window is mapped, RUNNING once xterm's is.
    assert_eq!(
        status(&mut client, 0).await.status,
        Some(SlotStatus::Initializing)
    );
    wait_status(&mut client, 0, SlotStatus::Running, X_TIMEOUT).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "ready before any window was mapped"
    );

    let env = std::fs::read_to_string(dir.path("env.0")).expect("env file");
    let (display, xauthority) = env.trim().split_once(' ').expect("DISPLAY XAUTHORITY");
    assert_eq!(display, format!(":{base}"));
    assert_eq!(dimensions(base, Some(xauthority)), Some((800, 600)));
    assert_eq!(
        dimensions(base, None),
        None,
        "the display refuses clients without its cookie"
    );

    let answer = call(
        &mut client,
        Request::Resolution {
            id: 0,
            width: 640,
            height: 480,
        },
    )
    .await;
    assert_eq!(answer.error, "none");
    let deadline = Instant::now() + X_TIMEOUT;
    while dimensions(base, Some(xauthority)) != Some((640, 480)) {
        assert!(
            Instant::now() < deadline,
            "RESOLUTION never reached the X screen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let server = server_pid(base);
    let answer = call(&mut client, Request::Stop { id: 0 }).await;
    assert_eq!(answer.error, "none");
    wait_status(&mut client, 0, SlotStatus::Idle, X_TIMEOUT).await;
    wait_gone(pid).await;
    wait_gone(server).await;
    assert!(
        !std::path::Path::new(xauthority).exists(),
        "the cookie file is removed"
    );
    assert_eq!(
        server_files(base),
        Vec::<String>::new(),
        "Xorg's files are removed"
    );
}

/// What an agent's Xorg for display `:n` left in the temporary folder (config, its folder, log).
fn server_files(display: u32) -> Vec<String> {
    let prefix = format!("openspace-xorg-{display}.");
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// An agent on `server` with instance 0 RUNNING `program` at 640x360, and the pid the program
/// wrote to `pid.0` in `dir`.
async fn running_instance(
    server: &str,
    base: u32,
    program: &str,
    dir: &Scratch,
) -> (Agent, CommandClient, i32) {
    let agent = x11_agent(server, base, program);
    let mut client = agent.client().await;
    assert_eq!(call(&mut client, start(640, 360)).await.error, "none");
    wait_status(&mut client, 0, SlotStatus::Running, X_TIMEOUT).await;
    let pid = read_pid(&dir.path("pid.0")).await;
    (agent, client, pid)
}

on_each_server!(killing_the_program_is_a_crash_and_frees_the_slot: xvfb_killing_the_program_is_a_crash, xorg_killing_the_program_is_a_crash);

async fn killing_the_program_is_a_crash_and_frees_the_slot(server: &str) {
    let dir = Scratch::new("x11-program");
    let base = display_base();
    let program = format!(
        "sh -c 'echo $$ > {}/pid.{{id}}; exec xterm'",
        dir.0.display()
    );
    let (agent, mut client, pid) = running_instance(server, base, &program, &dir).await;
    let x_server = server_pid(base);
    support::signal(pid, nix::sys::signal::Signal::SIGKILL);
    let answer = wait_failed(&mut client, 0).await;
    assert_eq!(
        answer.reason.as_deref(),
        Some("killed by signal 9 (SIGKILL) while running")
    );
    wait_gone(x_server).await;
    let (_, metrics) = agent.http_get("/metrics");
    assert!(
        metrics.contains(r#"openspace_agent_instance_failures_total{kind="signal"} 1"#),
        "{metrics}"
    );
    // The slot (and its display number) can be used again.
    assert_eq!(call(&mut client, start(640, 360)).await.error, "none");
    wait_status(&mut client, 0, SlotStatus::Running, X_TIMEOUT).await;
}

on_each_server!(killing_the_x_server_is_a_crash_and_frees_the_slot: xvfb_killing_the_x_server_is_a_crash, xorg_killing_the_x_server_is_a_crash);

async fn killing_the_x_server_is_a_crash_and_frees_the_slot(server: &str) {
    let dir = Scratch::new("x11-server");
    let base = display_base();
    // The shell outlives its xterm, so it is the X server's end that is reported.
    let program = format!(
        "sh -c 'echo $$ > {}/pid.{{id}}; xterm & sleep 600'",
        dir.0.display()
    );
    let (agent, mut client, pid) = running_instance(server, base, &program, &dir).await;
    support::signal(server_pid(base), nix::sys::signal::Signal::SIGKILL);
    let answer = wait_failed(&mut client, 0).await;
    let reason = answer.reason.unwrap_or_default();
    assert!(
        reason.starts_with("the X server killed by signal 9"),
        "{reason}"
    );
    wait_gone(pid).await;
    let (_, metrics) = agent.http_get("/metrics");
    assert!(
        metrics.contains(r#"openspace_agent_instance_failures_total{kind="display"} 1"#),
        "{metrics}"
    );
    // What the killed server left is cleaned up with the slot, not at its next start.
    assert!(!lock_path(base).exists() && !socket_path(base).exists());
    assert_eq!(server_files(base), Vec::<String>::new());
    // The killed server's lock and socket do not keep its display number: the slot starts again.
    assert_eq!(call(&mut client, start(640, 360)).await.error, "none");
    wait_status(&mut client, 0, SlotStatus::Running, X_TIMEOUT).await;
}

#[tokio::test]
async fn a_display_that_is_taken_fails_the_start_with_a_reason() {
    let base = display_base();
    let mut squatter = Command::new("Xvfb")
        .args([format!(":{base}").as_str(), "-nolisten", "tcp"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let deadline = Instant::now() + X_TIMEOUT;
    while !socket_path(base).exists() {
        assert!(
            Instant::now() < deadline,
            "the squatting Xvfb never listened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let agent = x11_agent(XVFB, base, "xterm");
    let mut client = agent.client().await;
    assert_eq!(call(&mut client, start(640, 360)).await.error, "none");
    let answer = wait_failed(&mut client, 0).await;
    assert_eq!(
        answer.reason.as_deref(),
        Some(format!("display :{base} is already in use (another X server?)").as_str())
    );
    // SIGTERM, so that it removes its lock and socket.
    support::signal(squatter.id() as i32, nix::sys::signal::Signal::SIGTERM);
    let _ = squatter.wait();
}
