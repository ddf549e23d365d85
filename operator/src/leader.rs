//! Leader election on a `coordination.k8s.io` Lease (kube-lease-manager), so several replicas can
//! run and exactly one reconciles.
//!
//! The library renews the lease but, when renewals fail, only retries: it never says the lease
//! was lost. A leader cut off from the apiserver must not go on acting after a standby took
//! over, so [`Leadership::lost`] also fences itself: it reads the Lease every third of its
//! duration and gives up once it has not seen itself holding it for the duration minus that
//! third.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::LeaseConfig;

pub struct Leadership {
    is_leader: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    leases: Api<Lease>,
    config: LeaseConfig,
}

pub async fn join(client: Client, lease: &LeaseConfig) -> kube_lease_manager::Result<Leadership> {
    let seconds = lease.duration.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client.clone(), &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&lease.identity)
        .with_duration(seconds)
        // Renew a third of the way before expiry: room for a slow apiserver.
        .with_grace((seconds / 3).max(1))
        .build()
        .await?;
    let (is_leader, task) = manager.watch().await;
    Ok(Leadership {
        is_leader,
        task,
        leases: Api::namespaced(client, &lease.namespace),
        config: lease.clone(),
    })
}

impl Leadership {
    /// Waits until this replica leads; `false` if the election ended first.
    pub async fn acquired(&mut self) -> bool {
        self.is_leader.wait_for(|leading| *leading).await.is_ok()
    }

    /// Resolves when leadership is lost (or can no longer be confirmed).
    pub async fn lost(&mut self) {
        let fence = fence(&self.leases, &self.config);
        tokio::select! {
            _ = self.is_leader.wait_for(|leading| !*leading) => {}
            () = fence => {}
        }
    }

    /// Hands the lease back (dropping the channel makes the manager release it), so a standby
    /// can take it at its next try instead of after the expiry.
    pub async fn release(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("releasing the lease: {e}"),
            Err(e) => tracing::warn!("lease manager task: {e}"),
        }
    }
}

async fn fence(leases: &Api<Lease>, config: &LeaseConfig) {
    let every = config.duration / 3;
    let trust = config.duration - every;
    let mut confirmed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match leases.get(&config.name).await {
            Ok(lease) => match held_until(&lease, &config.identity) {
                Some(until) if until > Timestamp::now() => confirmed = Instant::now(),
                // Still ours on paper, but not renewed in time: not a confirmation.
                Some(_) => {}
                None => {
                    tracing::error!("the lease is held by someone else now");
                    return;
                }
            },
            Err(e) => tracing::warn!("cannot confirm the lease: {e}"),
        }
        if confirmed.elapsed() > trust {
            tracing::error!("could not confirm the lease for {trust:?}: stepping down");
            return;
        }
    }
}

/// When `identity`'s hold of the lease expires, if it holds it.
fn held_until(lease: &Lease, identity: &str) -> Option<Timestamp> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    renewed
        .checked_add(Duration::from_secs(seconds as u64))
        .ok()
}
