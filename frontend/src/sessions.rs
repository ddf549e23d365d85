//! The sessions this frontend made, through the Kubernetes API: a reflector of them (label
//! `app.kubernetes.io/managed-by=openspace-frontend` in one namespace) whose every change is
//! announced, creation under the visitor and global limits, deletion, and the sweep of ended ones.
//! Needs only create/get/list/watch/delete on openspacesessions in that namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use openspace_crds::{OpenSpaceSession, OpenSpaceSessionSpec, Phase, Resolution};
use tokio::sync::{watch, Mutex};

use crate::config::{crd_duration, Config};
use crate::view::{is_live, owner, visitors_session};
use crate::visitor::LABEL;

pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "openspace-frontend");

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("all {0} sessions are in use")]
    Full(usize),
    #[error("the list of sessions has not arrived from the Kubernetes API yet")]
    NotReady,
    #[error("the Kubernetes API refused: {0}")]
    Kube(#[from] kube::Error),
}

pub struct Sessions {
    api: Api<OpenSpaceSession>,
    store: Store<OpenSpaceSession>,
    changed: watch::Receiver<u64>,
    /// Serialises the limit checks with the creations they admit.
    creating: Mutex<()>,
    config: Config,
}

impl Sessions {
    /// Starts the reflector (and the sweep) in the background.
    pub fn start(client: Client, config: Config) -> Arc<Self> {
        let api: Api<OpenSpaceSession> = match &config.namespace {
            Some(namespace) => Api::namespaced(client, namespace),
            // The pod's own namespace in a cluster, the kubeconfig context's outside one.
            None => Api::default_namespaced(client),
        };
        let (store, writer) = reflector::store();
        let (notify, changed) = watch::channel(0u64);
        let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
        let events = reflector::reflector(
            writer,
            watcher(api.clone(), watcher::Config::default().labels(&selector)),
        )
        .default_backoff();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(_) => notify.send_modify(|n| *n = n.wrapping_add(1)),
                    Err(e) => tracing::warn!(error = %e, "watching sessions failed; retrying"),
                }
            }
        });
        let sessions = Arc::new(Self {
            api,
            store,
            changed,
            creating: Mutex::new(()),
            config,
        });
        tokio::spawn(Arc::clone(&sessions).sweep());
        sessions
    }

    pub fn all(&self) -> Vec<Arc<OpenSpaceSession>> {
        self.store.state()
    }

    /// Changes whenever any of our sessions changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    /// Whether the first list has arrived (views before it would be empty).
    pub async fn ready(&self) -> bool {
        tokio::time::timeout(Duration::from_secs(10), self.store.wait_until_ready())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The visitor's live session, or a new one when the limits allow.
    pub async fn start_for(
        &self,
        label: &str,
        resolution: Resolution,
    ) -> Result<Arc<OpenSpaceSession>, SessionError> {
        // An empty cache would count no live sessions and let anyone past the limits.
        if !self.ready().await {
            return Err(SessionError::NotReady);
        }
        let _one_at_a_time = self.creating.lock().await;
        let sessions = self.all();
        if let Some(mine) = visitors_session(&sessions, label).filter(|s| is_live(s)) {
            return Ok(Arc::clone(mine));
        }
        let live = sessions.iter().filter(|s| is_live(s)).count();
        if live >= self.config.max_sessions {
            return Err(SessionError::Full(self.config.max_sessions));
        }
        let spec = OpenSpaceSessionSpec {
            resolution,
            profile: self.config.profile.clone(),
            server_selector: None,
            max_duration: Some(crd_duration(self.config.max_duration)),
            idle_timeout: Some(crd_duration(self.config.idle_timeout)),
            pool: self.config.pool.clone(),
        };
        let mut session = OpenSpaceSession::new("", spec);
        session.metadata.name = None;
        session.metadata.generate_name = Some("web-".into());
        session.metadata.labels = Some(BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (LABEL.to_owned(), label.to_owned()),
        ]));
        let created = self.api.create(&PostParams::default(), &session).await?;
        // Hold the limit lock until the reflector has it, so the next check counts it.
        let name = created.metadata.name.clone().unwrap_or_default();
        let mut changes = self.changes();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self
                .store
                .state()
                .iter()
                .all(|s| s.metadata.name.as_deref() != Some(name.as_str()))
            {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        tracing::info!(session = %name, visitor = %label, "session created");
        Ok(Arc::new(created))
    }

    /// Deletes the visitor's sessions (the operator stops their instances).
    pub async fn end_for(&self, label: &str) -> Result<usize, SessionError> {
        let mut ended = 0;
        for session in self.all() {
            let ours = owner(&session) == Some(label);
            if ours && session.metadata.deletion_timestamp.is_none() {
                if let Some(name) = &session.metadata.name {
                    match self.api.delete(name, &DeleteParams::default()).await {
                        Ok(_) => ended += 1,
                        Err(kube::Error::Api(e)) if e.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(ended)
    }

    /// Deletes sessions that ended (or failed) more than `--keep-ended` ago.
    async fn sweep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let now = k8s_openapi::jiff::Timestamp::now();
            for session in self.all() {
                let Some(status) = &session.status else {
                    continue;
                };
                if !matches!(status.phase, Some(Phase::Ended | Phase::Failed))
                    || session.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                let since = status
                    .ended_at
                    .as_ref()
                    .or(session.metadata.creation_timestamp.as_ref());
                // Signed: a clock behind the apiserver's gives a negative age, not a huge one.
                let keep = i64::try_from(self.config.keep_ended.as_secs()).unwrap_or(i64::MAX);
                let old = since.is_none_or(|t| now.duration_since(t.0).as_secs() >= keep);
                if let (true, Some(name)) = (old, &session.metadata.name) {
                    if let Err(e) = self.api.delete(name, &DeleteParams::default()).await {
                        tracing::debug!(session = %name, error = %e, "sweeping an ended session failed");
                    }
                }
            }
        }
    }
}
