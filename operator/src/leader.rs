//! Leader election on a `coordination.k8s.io` Lease (kube-lease-manager), so several replicas can
//! run and exactly one reconciles.

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::LeaseConfig;

pub struct Leadership {
    pub is_leader: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

pub async fn join(client: Client, lease: &LeaseConfig) -> kube_lease_manager::Result<Leadership> {
    let seconds = lease.duration.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client, &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&lease.identity)
        .with_duration(seconds)
        // Renew a third of the way before expiry: room for a slow apiserver.
        .with_grace((seconds / 3).max(1))
        .build()
        .await?;
    let (is_leader, task) = manager.watch().await;
    Ok(Leadership { is_leader, task })
}

impl Leadership {
    /// Waits until this replica leads; `false` if the election ended first.
    pub async fn acquired(&mut self) -> bool {
        self.is_leader.wait_for(|leading| *leading).await.is_ok()
    }

    /// Resolves when leadership is lost.
    pub async fn lost(&mut self) {
        let _ = self.is_leader.wait_for(|leading| !*leading).await;
    }

    /// Hands the lease back at once, so a standby takes over without waiting for it to expire.
    pub async fn release(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(manager)) => {
                if let Err(e) = manager.release().await {
                    tracing::warn!("releasing the lease: {e}");
                }
            }
            Ok(Err(e)) => tracing::warn!("lease manager: {e}"),
            Err(e) => tracing::warn!("lease manager task: {e}"),
        }
    }
}
