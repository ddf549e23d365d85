//! Command API benchmarks against the real agent binary on loopback; prints a table.
//!
//! `cargo bench -p openspace-agent --bench command_api`
//!
//! 1. SERVER_STATUS round trip on one persistent connection (p50/p99/p99.9).
//! 2. SERVER_STATUS throughput with 100 concurrent clients, one connection each.
//! 3. START -> RUNNING with `--ready tcp` for a program that opens its port at once: the agent's
//!    overhead is the time from the program's listen() to the client seeing RUNNING (WATCH push).
//!
//! The bench binary doubles as that program: `command_api --fake-instance PORT FILE` binds PORT,
//! writes the wall-clock time of its listen() to FILE and waits to be killed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openspace_agent::command::{CommandClient, Request, SlotStatus, StartRequest};

// The integration tests' launcher of the real binary (ephemeral ports, logs kept, SIGTERM on drop).
#[path = "../tests/support/mod.rs"]
mod support;
use support::Agent;

const TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fake-instance") {
        fake_instance(&args[2], &args[3]);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

fn fake_instance(port: &str, file: &str) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().expect("port")))
        .expect("bind the API port");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    std::fs::write(file, now.to_string()).expect("write the timestamp");
    // Accept (and drop) the readiness probes until we are killed.
    for stream in listener.incoming() {
        drop(stream);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn run() {
    println!("| benchmark | result |");
    println!("|---|---|");
    round_trip().await;
    throughput().await;
    start_to_running().await;
}

async fn round_trip() {
    let agent = Agent::start(&["--instance-command", "sleep 1000"]);
    let mut client = CommandClient::connect(&agent.url(), None, TIMEOUT)
        .await
        .expect("connect");
    for _ in 0..2_000 {
        client.call(&Request::ServerStatus).await.expect("answer");
    }
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        let a = client.call(&Request::ServerStatus).await.expect("answer");
        samples.push(t.elapsed());
        assert!(a.is_ok());
    }
    samples.sort();
    println!(
        "| SERVER_STATUS round trip, 1 persistent connection, n=20000 | p50 {} / p99 {} / p99.9 {} |",
        micros(percentile(&samples, 0.5)),
        micros(percentile(&samples, 0.99)),
        micros(percentile(&samples, 0.999))
    );
}

async fn throughput() {
    let agent = Agent::start(&["--instance-command", "sleep 1000"]);
    const CLIENTS: usize = 100;
    let run_for = Duration::from_secs(5);
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(
            CommandClient::connect(&agent.url(), None, TIMEOUT)
                .await
                .expect("connect"),
        );
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                while start.elapsed() < run_for {
                    let a = client.call(&Request::ServerStatus).await.expect("answer");
                    assert!(a.is_ok());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
    let elapsed = start.elapsed();
    let n = done.load(Ordering::Relaxed);
    println!(
        "| SERVER_STATUS throughput, {CLIENTS} concurrent clients, {:.1} s | {:.0} commands/s ({n} answers) |",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}

async fn start_to_running() {
    let dir = std::env::temp_dir().join(format!("openspace-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let stamp = dir.join("listen");
    let exe = std::env::current_exe().expect("own path");
    let base = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let template = format!(
        "{} --fake-instance {{api_port}} {}",
        exe.display(),
        stamp.display()
    );
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--ready",
        "tcp",
        "--api-base-port",
        &base.to_string(),
        "--stop-grace",
        "1s",
        "--instance-command",
        &template,
    ]);
    let mut client = CommandClient::connect(&agent.url(), None, TIMEOUT)
        .await
        .expect("connect");
    let watcher = CommandClient::connect(&agent.url(), None, TIMEOUT)
        .await
        .expect("connect");
    let mut watch = watcher.watch().await.expect("answer").expect("WATCH");
    watch.next().await.expect("initial slot state");

    let mut overhead = Vec::new();
    let mut total = Vec::new();
    let mut spawn_to_listen = Vec::new();
    for _ in 0..50 {
        let _ = std::fs::remove_file(&stamp);
        let sent_wall = SystemTime::now();
        let sent = Instant::now();
        let a = client
            .call(&Request::Start(StartRequest::default()))
            .await
            .expect("answer");
        assert!(a.is_ok(), "{a:?}");
        loop {
            let push = watch.next().await.expect("push");
            if push.status == Some(SlotStatus::Running) {
                break;
            }
        }
        let running = Instant::now();
        let running_wall = SystemTime::now();
        let listened: u128 = std::fs::read_to_string(&stamp)
            .expect("stamp")
            .parse()
            .expect("ns");
        let listened = UNIX_EPOCH + Duration::from_nanos(listened as u64);
        overhead.push(running_wall.duration_since(listened).unwrap_or_default());
        spawn_to_listen.push(listened.duration_since(sent_wall).unwrap_or_default());
        total.push(running - sent);
        client.call(&Request::Stop { id: 0 }).await.expect("answer");
        loop {
            let push = watch.next().await.expect("push");
            if push.status == Some(SlotStatus::Idle) {
                break;
            }
        }
    }
    for v in [&mut overhead, &mut total, &mut spawn_to_listen] {
        v.sort();
    }
    println!(
        "| START -> RUNNING, --ready tcp, agent overhead (listen() -> RUNNING push seen), n=50 | p50 {} / p99 {} |",
        millis(percentile(&overhead, 0.5)),
        millis(percentile(&overhead, 0.99))
    );
    println!(
        "| START -> RUNNING, program's own start (START sent -> listen()), n=50 | p50 {} / p99 {} |",
        millis(percentile(&spawn_to_listen, 0.5)),
        millis(percentile(&spawn_to_listen, 0.99))
    );
    println!(
        "| START -> RUNNING, total as the client sees it, n=50 | p50 {} / p99 {} |",
        millis(percentile(&total, 0.5)),
        millis(percentile(&total, 0.99))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
