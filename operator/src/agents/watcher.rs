//! One WATCH subscription per agent: keeps the [`Fleet`] current and wakes the sessions whose
//! slots change, so readiness is seen within a round trip instead of a polling interval. Servers
//! that do not know WATCH (the seed's supervisor) are left to STATUS polling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openspace_protocol::{CommandClient, Owner, SlotWatch};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::links::Links;
use super::slots::Fleet;
use crate::servers::{Directory, Server};

/// Why a reconcile should run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// This session's slot changed.
    Session(String),
    /// A slot became free or a server appeared: sessions waiting for capacity should retry.
    Capacity,
    /// The server became unreachable or left: its sessions should look.
    Server(String),
    /// A warm instance of this pool (by UID) changed.
    Pool(String),
}

const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Follows the directory: starts a watcher per agent server (connecting with `token`, within
/// `timeout`), stops those that left.
pub async fn run(
    directory: Arc<Directory>,
    fleet: Arc<Fleet>,
    links: Arc<Links>,
    wake: UnboundedSender<Wake>,
    token: Option<String>,
    timeout: Duration,
    stop: CancellationToken,
) {
    let mut changes = directory.subscribe();
    let mut running: HashMap<String, (String, CancellationToken)> = HashMap::new();
    loop {
        let servers: Vec<Server> = directory
            .servers()
            .into_iter()
            .filter(|s| !s.external)
            .collect();
        running.retain(|name, (url, task)| {
            let keep = servers.iter().any(|s| &s.name == name && &s.url == url);
            if !keep {
                task.cancel();
                links.forget(url);
                fleet.remove(name);
                // Sessions on it now find it missing from the directory (and wait, then fail).
                let _ = wake.send(Wake::Server(name.clone()));
            }
            keep
        });
        for server in servers {
            if running.contains_key(&server.name) {
                continue;
            }
            let task = stop.child_token();
            running.insert(server.name.clone(), (server.url.clone(), task.clone()));
            let watcher = Watcher {
                server,
                fleet: fleet.clone(),
                token: token.clone(),
                timeout,
                wake: wake.clone(),
            };
            tokio::spawn(async move {
                tokio::select! {
                    () = task.cancelled() => {}
                    () = watcher.run() => {}
                }
            });
            let _ = wake.send(Wake::Capacity);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

struct Watcher {
    server: Server,
    fleet: Arc<Fleet>,
    token: Option<String>,
    timeout: Duration,
    wake: UnboundedSender<Wake>,
}

impl Watcher {
    async fn run(self) {
        let name = self.server.name.clone();
        let mut retry = RETRY_MIN;
        loop {
            match self.subscribe().await {
                Ok(Some(watch)) => {
                    retry = RETRY_MIN;
                    self.follow(watch).await;
                    tracing::info!(server = %name, "WATCH connection lost");
                }
                Ok(None) => {
                    tracing::info!(server = %name, "no WATCH on this server: STATUS polling");
                    return;
                }
                Err(e) => tracing::debug!(server = %name, "WATCH: {e}"),
            }
            self.fleet.mark_unreachable(&name, Instant::now());
            let _ = self.wake.send(Wake::Server(name.clone()));
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    async fn subscribe(&self) -> Result<Option<SlotWatch>, openspace_protocol::ClientError> {
        let client =
            CommandClient::connect(&self.server.url, self.token.as_deref(), self.timeout).await?;
        Ok(client.watch().await?.ok())
    }

    /// Applies pushes until the connection ends. The snapshot (one push per slot) comes first;
    /// the server is live once it is complete.
    async fn follow(&self, mut watch: SlotWatch) {
        let name = &self.server.name;
        let total = watch.total.unwrap_or(0);
        let mut seen = 0u32;
        self.fleet.with(name, |s| {
            s.live = false;
            s.slots.clear();
        });
        if total == 0 {
            self.go_live();
        }
        while let Ok(push) = watch.next().await {
            let Ok(id) = u32::try_from(push.id) else {
                continue;
            };
            let changes = self
                .fleet
                .with(name, |s| s.apply(id, &push, Instant::now()));
            if seen < total {
                seen += 1;
                if seen == total {
                    self.go_live();
                }
            }
            for owner in changes.owners {
                let wake = match owner {
                    Owner::Session(uid) => Wake::Session(uid),
                    Owner::Pool(uid) => Wake::Pool(uid),
                    // Instances started by hand have no reconcile.
                    Owner::Other(_) => continue,
                };
                let _ = self.wake.send(wake);
            }
            if changes.freed {
                let _ = self.wake.send(Wake::Capacity);
            }
        }
    }

    fn go_live(&self) {
        let name = &self.server.name;
        self.fleet.with(name, |s| {
            s.live = true;
            s.unreachable_since = None;
        });
        let _ = self.wake.send(Wake::Server(name.clone()));
        let _ = self.wake.send(Wake::Capacity);
    }
}
