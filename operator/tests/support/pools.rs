//! Warm-pool helpers for the tests: creating and waiting for `OpenSpacePool`s, and API port
//! blocks for agents whose instances are ready by `--ready tcp`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kube::api::PostParams;
use openspace_crds::OpenSpacePool;
use serde_json::json;

use super::Cluster;

impl Cluster {
    pub async fn create_pool(&self, name: &str, spec: serde_json::Value) -> OpenSpacePool {
        let pool: OpenSpacePool = serde_json::from_value(json!({
            "apiVersion": "openspace.io/v1alpha1",
            "kind": "OpenSpacePool",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap();
        self.pools
            .create(&PostParams::default(), &pool)
            .await
            .unwrap_or_else(|e| panic!("create pool {name}: {e}"))
    }

    /// Polls until `check` holds for the pool, panicking with its last state after `within`.
    pub async fn wait_pool(
        &self,
        name: &str,
        within: Duration,
        what: &str,
        check: impl Fn(&OpenSpacePool) -> bool,
    ) -> OpenSpacePool {
        let deadline = Instant::now() + within;
        loop {
            let pool = self.pools.get_opt(name).await.expect("get pool");
            if let Some(pool) = &pool {
                if check(pool) {
                    return pool.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "pool {name} not {what} within {within:?}; last seen: {:#?}",
                    pool.map(|p| p.status)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A block of `n` API ports of its own (`--api-base-port`), so agents with `--ready tcp` on one
/// machine never share a port: below Linux's ephemeral range (32768-60999), where the kernel
/// hands out the client ports of every connection on the machine, and each port of the block
/// free when it is chosen (a port someone listens on would make `--ready tcp` answer at once).
pub fn port_block(n: u16) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let block = NEXT.fetch_add(1, Ordering::Relaxed) as u16;
        let base = 20_000 + (std::process::id() % 50) as u16 * 200 + (block * n) % 10_000;
        let free =
            (base..base + n).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free && base + n < 32_768 {
            return base;
        }
    }
}
