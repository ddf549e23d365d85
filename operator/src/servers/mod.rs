//! Rendering servers: agent pods found by label (and external servers from flags), reduced to
//! what the operator needs to talk to them and to build a session URL.

pub mod directory;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};

pub use directory::{Absence, Directory};

/// The pod annotation that names the host browsers reach an agent at.
pub const PUBLIC_HOST_ANNOTATION: &str = "openspace.io/public-host";
/// The container port name of the command WebSocket, and its default.
pub const COMMAND_PORT_NAME: &str = "command";
pub const DEFAULT_COMMAND_PORT: i32 = 4699;

/// One rendering server the operator may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The agent pod's name, or `external-N`.
    pub name: String,
    /// `ws://HOST:PORT` of the command protocol.
    pub url: String,
    pub node: Option<String>,
    /// `{host}` in the URL template.
    pub public_host: String,
    /// The pod's labels, matched by `spec.serverSelector` (external servers have none).
    pub labels: BTreeMap<String, String>,
    /// External servers speak only the seed's protocol: one message per connection, no
    /// `session`, no WATCH, no viewer counts.
    pub external: bool,
}

/// An agent pod becomes a server (for placing new sessions) when it is Ready, has an IP and is
/// not being deleted.
pub fn server_from_pod(pod: &Pod, node: Option<&Node>) -> Option<Server> {
    let ready = pod
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    address_of(pod, node)
}

/// Where an agent pod is reached, Ready or not, while it has an IP and is not being deleted: its
/// running sessions are followed and stopped there. A pod goes NotReady when its node misses
/// heartbeats (an apiserver outage does that), while the agent answers all along.
pub fn address_of(pod: &Pod, node: Option<&Node>) -> Option<Server> {
    let name = pod.metadata.name.clone()?;
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
    let port = pod
        .spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(COMMAND_PORT_NAME))
        .map(|p| p.container_port)
        .unwrap_or(DEFAULT_COMMAND_PORT);
    let url = format!("ws://{}:{port}", bracket_ipv6(&ip));
    let public_host = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PUBLIC_HOST_ANNOTATION))
        .filter(|h| !h.is_empty())
        .cloned()
        .or_else(|| node.and_then(node_public_host))
        .unwrap_or_else(|| ip.clone());
    Some(Server {
        name,
        url,
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        public_host,
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        external: false,
    })
}

/// An IPv6 address must be bracketed to be a URL host (already bracketed ones are left alone).
pub fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The node's ExternalIP, else its Hostname address.
fn node_public_host(node: &Node) -> Option<String> {
    let addresses = node.status.as_ref()?.addresses.as_ref()?;
    ["ExternalIP", "Hostname"].into_iter().find_map(|kind| {
        addresses
            .iter()
            .find(|a| a.type_ == kind && !a.address.is_empty())
            .map(|a| a.address.clone())
    })
}

/// `--external-server` URLs, named `external-0`, `external-1`, ... in order.
pub fn external_servers(urls: &[String]) -> Vec<Server> {
    urls.iter()
        .enumerate()
        .map(|(i, url)| Server {
            name: format!("external-{i}"),
            url: url.clone(),
            node: None,
            public_host: url_host(url).to_owned(),
            labels: BTreeMap::new(),
            external: true,
        })
        .collect()
}

/// `ws://HOST:PORT/path` -> `HOST` (brackets of IPv6 removed).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(extra: serde_json::Value) -> Pod {
        let mut base = json!({
            "metadata": {"name": "agent-a", "labels": {"gpu": "a100"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "agent", "ports": [
                {"name": "http", "containerPort": 4690},
                {"name": "command", "containerPort": 5699}
            ]}]},
            "status": {"podIP": "10.1.2.3", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        merge(&mut base, extra);
        serde_json::from_value(base).unwrap()
    }

    fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
        match (base, extra) {
            (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    fn node(addresses: serde_json::Value) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": "node-1"}, "status": {"addresses": addresses}}),
        )
        .unwrap()
    }

    #[test]
    fn a_ready_pod_is_a_server_on_its_named_command_port() {
        let server = server_from_pod(&pod(json!({})), None).unwrap();
        assert_eq!(server.url, "ws://10.1.2.3:5699");
        assert_eq!(server.public_host, "10.1.2.3");
        assert_eq!(server.node.as_deref(), Some("node-1"));
        assert_eq!(server.labels.get("gpu").map(String::as_str), Some("a100"));
        assert!(!server.external);
    }

    #[test]
    fn without_a_named_port_the_default_is_used() {
        let p = pod(json!({"spec": {"containers": [{"name": "agent"}]}}));
        assert_eq!(server_from_pod(&p, None).unwrap().url, "ws://10.1.2.3:4699");
        let v6 = pod(json!({"status": {"podIP": "fd00::3"}}));
        assert_eq!(
            server_from_pod(&v6, None).unwrap().url,
            "ws://[fd00::3]:5699"
        );
    }

    #[test]
    fn unready_ipless_or_deleted_pods_are_not_servers() {
        let unready =
            pod(json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        assert_eq!(server_from_pod(&unready, None), None);
        assert!(
            address_of(&unready, None).is_some(),
            "a NotReady pod is still reached for its sessions"
        );
        let no_ip = pod(json!({"status": {"podIP": ""}}));
        assert_eq!(server_from_pod(&no_ip, None), None);
        let deleted = pod(json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}));
        assert_eq!(server_from_pod(&deleted, None), None);
    }

    #[test]
    fn public_host_prefers_annotation_then_node_external_ip_then_hostname() {
        let n = node(json!([
            {"type": "InternalIP", "address": "10.0.0.1"},
            {"type": "Hostname", "address": "gpu-1.example"},
            {"type": "ExternalIP", "address": "203.0.113.9"}
        ]));
        assert_eq!(
            server_from_pod(&pod(json!({})), Some(&n))
                .unwrap()
                .public_host,
            "203.0.113.9"
        );
        let hostname_only = node(json!([{"type": "Hostname", "address": "gpu-1.example"}]));
        assert_eq!(
            server_from_pod(&pod(json!({})), Some(&hostname_only))
                .unwrap()
                .public_host,
            "gpu-1.example"
        );
        let annotated = pod(
            json!({"metadata": {"annotations": {PUBLIC_HOST_ANNOTATION: "stream.example.org"}}}),
        );
        assert_eq!(
            server_from_pod(&annotated, Some(&n)).unwrap().public_host,
            "stream.example.org"
        );
    }

    #[test]
    fn external_servers_are_named_in_order_with_their_host() {
        let servers =
            external_servers(&["ws://10.9.9.9:4699".into(), "ws://[fd00::1]:4699/".into()]);
        assert_eq!(servers[0].name, "external-0");
        assert_eq!(servers[0].public_host, "10.9.9.9");
        assert_eq!(servers[1].public_host, "fd00::1");
        assert!(servers.iter().all(|s| s.external && s.labels.is_empty()));
    }
}
