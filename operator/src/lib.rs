//! The OpenSpace operator: reconciles `OpenSpaceSession`s onto rendering servers (agents).
//!
//! Data flow: [`servers`] finds the agents; [`agents`] talks to them and follows their slots with
//! WATCH; [`scheduler`] picks a server for new sessions; [`reconcile`] drives each session from
//! Pending to Running and back to a free slot; [`pools`] keeps warm instances that sessions
//! claim; [`orphans`] stops instances nobody owns.

pub mod agents;
pub mod config;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod orphans;
pub mod pools;
pub mod reconcile;
pub mod scheduler;
pub mod servers;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use openspace_crds::{OpenSpacePool, OpenSpaceSession, Phase};
use tokio_util::sync::CancellationToken;

use crate::agents::{Fleet, Links};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pools::Pools;
use crate::reconcile::Context;
use crate::scheduler::Scheduler;
use crate::servers::Directory;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs until `shutdown` resolves. With a Lease, it reconciles only while leading: a replica that
/// loses the lease (another holds it, or its renewals went unanswered for the renew deadline)
/// stops reconciling at once, stands by, and campaigns again in the same process.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.cancel();
    });
    let client = Client::try_default().await?;
    let metrics = Metrics::new();
    let listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: config.metrics_listen,
            source,
        })?;
    let local = listener.local_addr().ok();
    tracing::info!(
        "metrics_addr={}",
        local.map(|a| a.to_string()).unwrap_or_default()
    );
    tokio::spawn(http::serve(listener, metrics.clone(), stop.clone()));

    let Some(lease) = config.lease.clone() else {
        metrics.leader.set(1);
        control(client, config, metrics.clone(), stop).await;
        metrics.leader.set(0);
        return Ok(());
    };
    let mut leadership = leader::join(client.clone(), &lease);
    tracing::info!(identity = %lease.identity, lease = %lease.name, "waiting for the lease");
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = leadership.acquired() => {}
        }
        tracing::info!(identity = %lease.identity, "leading");
        metrics.leader.set(1);
        // One term: everything the controller starts ends with it.
        let term = stop.child_token();
        let controller = control(
            client.clone(),
            config.clone(),
            metrics.clone(),
            term.clone(),
        );
        tokio::select! {
            () = controller => {
                metrics.leader.set(0);
                break;
            }
            why = leadership.lost() => {
                // Fencing: the controller future is dropped here, mid-reconcile if need be, and
                // its tasks are cancelled, before anyone else can have taken over.
                term.cancel();
                metrics.leader.set(0);
                tracing::warn!(identity = %lease.identity, "stepped down: {why}; standing by to lead again");
            }
        }
    }
    leadership.release().await;
    Ok(())
}

/// The controller and everything it needs, until `stop`.
async fn control(client: Client, config: Config, metrics: Metrics, stop: CancellationToken) {
    let (directory, driver) = Directory::new(
        client.clone(),
        &config.agent_namespace,
        &config.agent_selector,
        &config.external_servers,
    );
    let until = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = driver => {}
            () = until.cancelled() => {}
        }
    });
    tokio::select! {
        () = directory.ready() => {}
        () = stop.cancelled() => return,
    }
    let fleet = Arc::new(Fleet::default());
    let links = Arc::new(Links::new(
        config.command_token.clone(),
        config.call_timeout,
        metrics.clone(),
    ));
    let scheduler = Scheduler::start(
        directory.clone(),
        links.clone(),
        config.placement,
        config.schedule_timeout,
    );
    let (wakes, woken) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(agents::watcher::run(
        directory.clone(),
        fleet.clone(),
        links.clone(),
        wakes.clone(),
        config.command_token.clone(),
        config.call_timeout,
        stop.child_token(),
    ));
    let pool_api: Api<OpenSpacePool> = match &config.session_namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let pool_controller = Controller::new(pool_api.clone(), watcher::Config::default());
    let pools = Arc::new(Pools::new(pool_controller.store()));
    let reporter = Reporter {
        controller: "openspace-operator".into(),
        instance: config.lease.as_ref().map(|l| l.identity.clone()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(Context::new(
        client.clone(),
        config,
        directory,
        links,
        fleet,
        scheduler,
        recorder,
        metrics.clone(),
        pools.clone(),
        wakes,
    ));
    let sessions: Api<OpenSpaceSession> = match &ctx.config.session_namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };
    let controller = Controller::new(sessions.clone(), watcher::Config::default().any_semantic());
    let store = controller.store();
    tokio::spawn(orphans::run(
        sessions,
        pool_api,
        ctx.clone(),
        ctx.config.orphan_sweep,
        stop.child_token(),
    ));
    tokio::spawn(count_phases(store, metrics, stop.child_token()));
    // Each wake goes to the sessions and the pools it concerns.
    let (session_wakes, session_woken) = tokio::sync::mpsc::unbounded_channel();
    let (pool_wakes, pool_woken) = tokio::sync::mpsc::unbounded_channel();
    let router = ctx.clone();
    tokio::spawn(async move {
        let mut woken = woken;
        while let Some(wake) = woken.recv().await {
            for session in router.woken(&wake) {
                let _ = session_wakes.send(session);
            }
            for pool in router.pools.woken(&wake) {
                let _ = pool_wakes.send(pool);
            }
        }
    });
    let sessions = controller
        .reconcile_on(receive(session_woken))
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let pools = pool_controller
        .reconcile_on(receive(pool_woken))
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(pools::reconcile, pools::error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    futures::future::join(sessions, pools).await;
}

/// The items of `rx` as a stream.
fn receive<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

/// Every phase, each at its [`phase_index`].
const PHASES: [Phase; 6] = [
    Phase::Pending,
    Phase::Starting,
    Phase::Running,
    Phase::Stopping,
    Phase::Ended,
    Phase::Failed,
];

/// `phase`'s place in [`PHASES`] (exhaustive, so a new phase cannot be forgotten).
fn phase_index(phase: Phase) -> usize {
    match phase {
        Phase::Pending => 0,
        Phase::Starting => 1,
        Phase::Running => 2,
        Phase::Stopping => 3,
        Phase::Ended => 4,
        Phase::Failed => 5,
    }
}

/// Keeps the `sessions{phase}` gauge current: recounts the controller's cache every 5 s, in one
/// pass, and sets every phase's gauge (0 included).
async fn count_phases(
    store: kube::runtime::reflector::Store<OpenSpaceSession>,
    metrics: Metrics,
    stop: CancellationToken,
) {
    loop {
        let mut counts = [0_i64; PHASES.len()];
        for session in store.state() {
            let phase = session
                .status
                .as_ref()
                .and_then(|st| st.phase)
                .unwrap_or_default();
            counts[phase_index(phase)] += 1;
        }
        for (phase, n) in PHASES.into_iter().zip(counts) {
            metrics
                .sessions
                .with_label_values(&[&format!("{phase:?}")])
                .set(n);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_is_at_its_own_index() {
        for (i, phase) in PHASES.into_iter().enumerate() {
            assert_eq!(phase_index(phase), i, "{phase:?}");
        }
    }
}
