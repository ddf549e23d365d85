//! Warm-pool benchmark on the local control plane: created -> Running with a warm pool against
//! without, when the instance program takes 15 s to become ready (as OpenSpace loading a profile):
//! `e2e/pools/slow-instance.sh 15 {api_port}` with `--ready tcp`, on two real agents registered as
//! Pods on loopback, and the real operator binary. Prints a table:
//! - warm, one session at a time (20): each claims one of the pool's 20 warm instances;
//! - warm, 20 sessions created at once on a pool of 20;
//! - cold, 20 sessions at once without a pool; cold, one at a time (5).
//!
//! Times are taken client-side from the create call's return to the first watch event showing
//! Running (the apiserver's creationTimestamp has only 1 s resolution). Run it as BENCHMARKS.md
//! says (inside `e2e/control-plane/control-plane.sh run`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::watcher;
use openspace_crds::{OpenSpaceSession, Phase, Start};
use serde_json::json;
use support::pools::port_block;
use support::{operator, Agent, Cluster};

const READY_AFTER_S: u32 = 15;
const CAPACITY: u16 = 40;

#[derive(Default, Clone, Copy)]
struct Times {
    created: Option<Instant>,
    running: Option<Instant>,
    start: Option<Start>,
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
            let o: OpenSpaceSession = match event {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                _ => continue,
            };
            let name = o.metadata.name.clone().unwrap_or_default();
            let status = o.status.clone().unwrap_or_default();
            let mut book = book.lock().unwrap();
            let times = book.entry(name).or_default();
            if status.phase == Some(Phase::Running) && times.running.is_none() {
                times.running = Some(now);
                times.start = status.start;
            }
        }
    });
}

async fn create_all(cluster: &Cluster, book: &Book, names: &[String], spec: serde_json::Value) {
    futures::stream::iter(names.iter())
        .for_each_concurrent(64, |name| {
            let spec = spec.clone();
            async move {
                cluster.create(name, spec).await;
                let now = Instant::now();
                let mut book = book.lock().unwrap();
                let times = book.entry(name.clone()).or_default();
                times.created = Some(now);
                // The watch may have seen Running before the create call returned.
                if let Some(t) = &mut times.running {
                    *t = (*t).max(now);
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
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Created -> Running in ms, and how many started warm.
fn latencies(book: &Book, names: &[String]) -> (Vec<f64>, usize) {
    let book = book.lock().unwrap();
    let times: Vec<&Times> = names.iter().filter_map(|n| book.get(n)).collect();
    let warm = times
        .iter()
        .filter(|t| t.start == Some(Start::Warm))
        .count();
    let ms = times
        .iter()
        .filter_map(|t| Some(t.running?.saturating_duration_since(t.created?)))
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    (ms, warm)
}

fn row(label: &str, book: &Book, names: &[String]) {
    let (mut values, warm) = latencies(book, names);
    let p50 = percentile(&mut values, 0.5);
    let p99 = percentile(&mut values, 0.99);
    println!(
        "| {label:<46} | {:>3} | {warm:>4} | {p50:>9.1} | {p99:>9.1} |",
        values.len()
    );
}

async fn delete_all(cluster: &Cluster, names: &[String]) {
    for name in names {
        cluster.delete(name).await;
    }
    for name in names {
        cluster.wait_gone(name, Duration::from_secs(60)).await;
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

#[tokio::main]
async fn main() {
    let cluster = Cluster::new("bench-pools").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../e2e/pools/slow-instance.sh");
    let command = format!("{script} {READY_AFTER_S} {{api_port}}");
    let mut agents = Vec::new();
    for i in 0..2 {
        let base = port_block(CAPACITY).to_string();
        let agent = Agent::start(
            &format!("agent-{i}"),
            &[
                "--capacity",
                &CAPACITY.to_string(),
                "--ready",
                "tcp",
                "--api-base-port",
                &base,
                "--instance-command",
                &command,
                "--stop-grace",
                "2s",
            ],
        );
        cluster.register(&agent).await;
        agents.push(agent);
    }
    let _op = operator(&cluster, "op", &[], &[("RUST_LOG", "warn")]);
    let book = Book::default();
    spawn_observer(&cluster, book.clone());

    let filled = Instant::now();
    cluster.create_pool("warm", json!({"warm": 20})).await;
    cluster
        .wait_pool("warm", Duration::from_secs(120), "filled", |p| {
            p.status.as_ref().is_some_and(|s| s.ready == 20)
        })
        .await;
    println!(
        "pool of 20 filled in {:.1} s (instances ready {READY_AFTER_S} s after start)\n",
        filled.elapsed().as_secs_f64()
    );
    println!(
        "| created -> Running (ms)                        |   n | warm |       p50 |       p99 |"
    );
    println!(
        "|------------------------------------------------|-----|------|-----------|-----------|"
    );

    let one_by_one = names("warm-one", 20);
    for name in &one_by_one {
        let one = std::slice::from_ref(name);
        create_all(&cluster, &book, one, json!({"pool": "warm"})).await;
        wait_running(&book, one, Duration::from_secs(60)).await;
    }
    row("warm pool of 20, one session at a time", &book, &one_by_one);
    delete_all(&cluster, &one_by_one).await;
    cluster
        .wait_pool("warm", Duration::from_secs(120), "refilled", |p| {
            p.status.as_ref().is_some_and(|s| s.ready == 20)
        })
        .await;

    let burst = names("warm-burst", 20);
    create_all(&cluster, &book, &burst, json!({"pool": "warm"})).await;
    wait_running(&book, &burst, Duration::from_secs(120)).await;
    row("warm pool of 20, 20 sessions at once", &book, &burst);
    delete_all(&cluster, &burst).await;

    let cold_burst = names("cold-burst", 20);
    create_all(&cluster, &book, &cold_burst, json!({})).await;
    wait_running(&book, &cold_burst, Duration::from_secs(120)).await;
    row("no pool, 20 sessions at once", &book, &cold_burst);
    delete_all(&cluster, &cold_burst).await;

    let cold_one = names("cold-one", 5);
    for name in &cold_one {
        let one = std::slice::from_ref(name);
        create_all(&cluster, &book, one, json!({})).await;
        wait_running(&book, one, Duration::from_secs(60)).await;
    }
    row("no pool, one session at a time", &book, &cold_one);
    delete_all(&cluster, &cold_one).await;
}
