//! Operator scale benchmark on the local control plane (run by `make bench`, which wraps it in
//! `e2e/control-plane/control-plane.sh run`): real release agents with trivial instances
//! (`sleep`), registered as Pods on loopback, and the real operator binary.
//!
//! Prints a table:
//! - one session at a time: created -> Starting (START acknowledged and written) and
//!   created -> Running, p50/p99 over 30 sessions (the instance itself starts in ~2 ms);
//! - 500 sessions created at once on 50 agents: the same two latencies, p50/p99, and the wall;
//! - operator RSS with 1000 sessions Running.
//!
//! Times are taken client-side from the create call's return to the first watch event showing
//! the phase (the apiserver's creationTimestamp has only 1 s resolution).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::watcher;
use openspace_crds::{OpenSpaceSession, Phase};
use serde_json::json;
use support::{operator, Agent, Cluster};

#[derive(Default, Clone, Copy)]
struct Times {
    created: Option<Instant>,
    starting: Option<Instant>,
    running: Option<Instant>,
}

type Book = Arc<Mutex<HashMap<String, Times>>>;

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}

fn spawn_observer(cluster: &Cluster, book: Book) {
    let stream = watcher(cluster.sessions.clone(), watcher::Config::default());
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            let objects: Vec<OpenSpaceSession> = match event {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => vec![o],
                _ => continue,
            };
            let mut book = book.lock().unwrap();
            for o in objects {
                let name = o.metadata.name.clone().unwrap_or_default();
                let phase = o.status.as_ref().and_then(|s| s.phase);
                let times = book.entry(name).or_default();
                if matches!(phase, Some(Phase::Starting | Phase::Running))
                    && times.starting.is_none()
                {
                    times.starting = Some(now);
                }
                if phase == Some(Phase::Running) && times.running.is_none() {
                    times.running = Some(now);
                }
            }
        }
    });
}

async fn create_all(cluster: &Cluster, book: &Book, names: &[String]) {
    futures::stream::iter(names.iter())
        .for_each_concurrent(64, |name| async move {
            cluster.create(name, json!({})).await;
            let now = Instant::now();
            let mut book = book.lock().unwrap();
            let times = book.entry(name.clone()).or_default();
            times.created = Some(now);
            // The watch may have seen a phase before the create call returned.
            for t in [&mut times.starting, &mut times.running]
                .into_iter()
                .flatten()
            {
                if *t < now {
                    *t = now;
                }
            }
        })
        .await;
}

async fn wait_running(book: &Book, names: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let done = {
            let book = book.lock().unwrap();
            names
                .iter()
                .filter(|n| book.get(*n).is_some_and(|t| t.running.is_some()))
                .count()
        };
        if done == names.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done}/{} Running after {within:?}",
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn latencies(book: &Book, names: &[String]) -> (Vec<f64>, Vec<f64>) {
    let book = book.lock().unwrap();
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
    names
        .iter()
        .filter_map(|n| book.get(n))
        .filter_map(|t| Some((ms(t.created?, t.starting?), ms(t.created?, t.running?))))
        .unzip()
}

fn row(label: &str, values: &mut [f64]) {
    let p50 = percentile(values, 0.5);
    let p99 = percentile(values, 0.99);
    println!("| {label:<52} | {p50:>8.1} | {p99:>8.1} |");
}

/// CPU seconds (user + system) used so far by every process whose name starts with `prefix`.
fn cpu_seconds(prefix: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        total += (field(11) + field(12)) / ticks;
    }
    total
}

const PROCESSES: [&str; 5] = [
    "kube-apiserver",
    "etcd",
    "openspace-oper",
    "openspace-agen",
    "scale-",
];

fn rss_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() {
    println!("| measurement (ms)                                     |      p50 |      p99 |");
    println!("|------------------------------------------------------|----------|----------|");

    // One at a time.
    {
        let cluster = Cluster::new("bench-single").await;
        let agent = Agent::start(
            "agent-0",
            &["--capacity", "2", "--instance-command", "sleep 600"],
        );
        cluster.register(&agent).await;
        let _op = operator(&cluster, "op", &[], &[("RUST_LOG", "warn")]);
        let book = Book::default();
        spawn_observer(&cluster, book.clone());
        let mut names = Vec::new();
        for i in 0..30 {
            let name = format!("single-{i:02}");
            create_all(&cluster, &book, std::slice::from_ref(&name)).await;
            wait_running(&book, std::slice::from_ref(&name), Duration::from_secs(30)).await;
            cluster.delete(&name).await;
            cluster.wait_gone(&name, Duration::from_secs(30)).await;
            names.push(name);
        }
        let (mut starting, mut running) = latencies(&book, &names);
        row(
            "1 session: created -> Starting (START acked)",
            &mut starting,
        );
        row("1 session: created -> Running", &mut running);
    }

    // 500 at once on 50 agents, then 500 more for the RSS at 1000.
    let cluster = Cluster::new("bench-scale").await;
    let mut agents = Vec::new();
    for i in 0..50 {
        let agent = Agent::start(
            &format!("agent-{i:02}"),
            &["--capacity", "20", "--instance-command", "sleep 600"],
        );
        cluster.register(&agent).await;
        agents.push(agent);
    }
    let op = operator(&cluster, "op", &[], &[("RUST_LOG", "warn")]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let book = Book::default();
    spawn_observer(&cluster, book.clone());
    let first: Vec<String> = (0..500).map(|i| format!("burst-{i:03}")).collect();
    let cpu_before: Vec<f64> = PROCESSES.iter().map(|p| cpu_seconds(p)).collect();
    let wall = Instant::now();
    create_all(&cluster, &book, &first).await;
    wait_running(&book, &first, Duration::from_secs(300)).await;
    let wall = wall.elapsed();
    let cpu: Vec<String> = PROCESSES
        .iter()
        .zip(&cpu_before)
        .map(|(p, before)| format!("{p} {:.1}", cpu_seconds(p) - before))
        .collect();
    let (mut starting, mut running) = latencies(&book, &first);
    row(
        "500 at once on 50 agents: created -> Starting",
        &mut starting,
    );
    row("500 at once on 50 agents: created -> Running", &mut running);
    println!(
        "| 500 at once: first create -> all Running (wall)      | {:>8.1} |          |",
        wall.as_secs_f64() * 1e3
    );
    println!("\nCPU seconds during the 500 burst: {}\n", cpu.join(", "));
    let second: Vec<String> = (0..500).map(|i| format!("more-{i:03}")).collect();
    create_all(&cluster, &book, &second).await;
    wait_running(&book, &second, Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut total = 0;
    for agent in &agents {
        total += agent.running().await;
    }
    assert_eq!(total, 1000, "one instance per session");
    println!(
        "| operator RSS with 1000 sessions Running (MiB)        | {:>8.1} |          |",
        rss_mib(op.pid())
    );
}
