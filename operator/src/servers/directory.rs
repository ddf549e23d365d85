//! The live list of rendering servers: a reflector over the agent pods (and the nodes, for
//! public hosts) plus the external servers from flags. Every change bumps a counter that the
//! slot watchers and the capacity waker follow.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::watch;

use super::{address_of, external_servers, server_from_pod, Server};

pub struct Directory {
    /// The namespace the agent pods are watched in.
    namespace: String,
    pods: Store<Pod>,
    nodes: Store<Node>,
    externals: Vec<Server>,
    changes: watch::Sender<u64>,
}

impl Directory {
    /// The directory and the future that keeps it current (run it for as long as the operator).
    pub fn new(
        client: Client,
        namespace: &str,
        selector: &str,
        external_urls: &[String],
    ) -> (
        Arc<Self>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (pods, pod_writer) = reflector::store();
        let (nodes, node_writer) = reflector::store();
        let (changes, _) = watch::channel(0);
        let directory = Arc::new(Self {
            namespace: namespace.to_owned(),
            pods,
            nodes,
            externals: external_servers(external_urls),
            changes,
        });
        let pod_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let node_api: Api<Node> = Api::all(client);
        let pod_stream = watcher(pod_api, watcher::Config::default().labels(selector))
            .default_backoff()
            .reflect(pod_writer)
            .touched_objects();
        let node_stream = watcher(node_api, watcher::Config::default())
            .default_backoff()
            .reflect(node_writer)
            .touched_objects();
        let this = directory.clone();
        let driver = async move {
            let mut merged = std::pin::pin!(futures::stream::select(
                pod_stream.map(|r| r.map(|_| ())),
                node_stream.map(|r| r.map(|_| ())),
            ));
            while let Some(event) = merged.next().await {
                match event {
                    Ok(()) => this.changes.send_modify(|n| *n += 1),
                    Err(e) => tracing::warn!("watching agent pods or nodes: {e}"),
                }
            }
        };
        (directory, driver)
    }

    /// Waits for the first full list of pods and nodes.
    pub async fn ready(&self) {
        let _ = self.pods.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
    }

    /// Every usable server, agents first (by name), then the external ones.
    pub fn servers(&self) -> Vec<Server> {
        let mut servers: Vec<Server> = self
            .pods
            .state()
            .iter()
            .filter_map(|pod| server_from_pod(pod, self.node_of(pod).as_deref()))
            .collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        servers.extend(self.externals.iter().cloned());
        servers
    }

    /// Where the server `name` runs its sessions: an external server, or an agent pod with an IP
    /// that is not being deleted, Ready or not (following and stopping sessions need an address;
    /// placing new ones needs readiness: [`Directory::servers`]). Else why not.
    pub fn reach(&self, name: &str) -> Result<Server, Absence> {
        if let Some(external) = self.externals.iter().find(|s| s.name == name) {
            return Ok(external.clone());
        }
        let pod = self
            .pods
            .get(&ObjectRef::new(name).within(&self.namespace))
            .ok_or(Absence::Deleted)?;
        address_of(&pod, self.node_of(&pod).as_deref()).ok_or(Absence::Unreachable)
    }

    /// A counter bumped on every change of pods or nodes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn node_of(&self, pod: &Pod) -> Option<Arc<Node>> {
        let name = pod.spec.as_ref()?.node_name.as_deref()?;
        self.nodes.get(&ObjectRef::new(name))
    }
}

/// Why a server named in a session cannot be reached now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// Its pod no longer exists: the agent and every instance it ran are gone with it.
    Deleted,
    /// Its pod exists but has no IP or is terminating: its instances may still run.
    Unreachable,
}

impl Absence {
    /// For status messages and Events, e.g. "rendering server agent-x0 was deleted".
    pub fn describe(self, name: &str) -> String {
        match self {
            Absence::Deleted => format!(
                "rendering server {name} was deleted (its pod is gone, and its instances with it)"
            ),
            Absence::Unreachable => {
                format!("rendering server {name} cannot be reached (no address, or terminating)")
            }
        }
    }
}
