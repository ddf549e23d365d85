//! Flags (and their environment variables), validated once into a [`Config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::reconcile::url::{UrlTemplate, UrlTemplateError};
use crate::scheduler::Placement;

#[derive(Debug, Parser)]
#[command(
    name = "openspace-operator",
    version,
    about = "Reconciles OpenSpaceSessions: picks a rendering server, starts an instance, publishes its URL"
)]
pub struct Args {
    /// Label selector of the agent pods (rendering servers).
    #[arg(
        long,
        env = "OPENSPACE_AGENT_SELECTOR",
        default_value = "app.kubernetes.io/name=openspace,app.kubernetes.io/component=agent"
    )]
    pub agent_selector: String,

    /// Namespace of the agent pods.
    #[arg(long, env = "OPENSPACE_AGENT_NAMESPACE", default_value = "default")]
    pub agent_namespace: String,

    /// Reconcile only the sessions of this namespace (default: every namespace).
    #[arg(long, env = "OPENSPACE_SESSION_NAMESPACE")]
    pub session_namespace: Option<String>,

    /// A rendering server outside the cluster (`ws://HOST:PORT`), e.g. the original supervisor;
    /// repeatable. It is named `external-N` in session status, in the order given.
    #[arg(
        long = "external-server",
        env = "OPENSPACE_EXTERNAL_SERVERS",
        value_delimiter = ','
    )]
    pub external_servers: Vec<String>,

    /// How often STATUS is polled on servers without WATCH (the seed's backend used 5 s).
    #[arg(long, env = "OPENSPACE_STATUS_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub status_interval: Duration,

    /// Where new sessions go: the server with the most free slots, or the fullest that fits.
    #[arg(long, env = "OPENSPACE_PLACEMENT", value_enum, default_value_t = Placement::Spread)]
    pub placement: Placement,

    /// The URL written to `.status.url`. Placeholders: {host}, {id}, {token}, {name}, {namespace}.
    #[arg(
        long,
        env = "OPENSPACE_URL_TEMPLATE",
        default_value = "http://{host}:4690/frontend/#/streaming?id={id}&token={token}"
    )]
    pub url_template: String,

    /// File holding the agents' command token (their --token-file), sent as a bearer token.
    #[arg(long, env = "OPENSPACE_COMMAND_TOKEN_FILE")]
    pub command_token_file: Option<PathBuf>,

    /// Bound of one call to a rendering server (connect + answer).
    #[arg(long, env = "OPENSPACE_CALL_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub call_timeout: Duration,

    /// Bound of the SERVER_STATUS fan-out when scheduling; slower servers are skipped.
    #[arg(long, env = "OPENSPACE_SCHEDULE_TIMEOUT", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub schedule_timeout: Duration,

    /// A session whose server stays unreachable this long is Failed.
    #[arg(long, env = "OPENSPACE_SERVER_LOST_AFTER", default_value = "15s", value_parser = humantime::parse_duration)]
    pub server_lost_after: Duration,

    /// A deleted session whose server cannot be told to STOP is let go after this long (with a
    /// Warning event), so deletion never blocks forever.
    #[arg(long, env = "OPENSPACE_STOP_GIVE_UP", default_value = "60s", value_parser = humantime::parse_duration)]
    pub stop_give_up: Duration,

    /// Longest wait between retries of a session that found no capacity.
    #[arg(long, env = "OPENSPACE_MAX_BACKOFF", default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_backoff: Duration,

    /// How often instances whose session is gone are looked for (two sightings stop one).
    #[arg(long, env = "OPENSPACE_ORPHAN_SWEEP", default_value = "20s", value_parser = humantime::parse_duration)]
    pub orphan_sweep: Duration,

    /// Where /metrics, /healthz and /readyz listen.
    #[arg(long, env = "OPENSPACE_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,

    /// Run only while holding this Lease (several replicas can then run); empty: no election.
    #[arg(
        long,
        env = "OPENSPACE_LEASE_NAME",
        default_value = "openspace-operator"
    )]
    pub lease_name: String,

    /// Namespace of the Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "OPENSPACE_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a lease holder stays leader without renewing.
    #[arg(long, env = "OPENSPACE_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// This replica's name in the Lease (default: $POD_NAME, else the host name and pid).
    #[arg(long, env = "OPENSPACE_IDENTITY")]
    pub identity: Option<String>,

    /// Log format.
    #[arg(long, env = "OPENSPACE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--agent-selector {0:?}: {1}")]
    Selector(String, String),
    #[error("--external-server {0:?} must be a ws:// or wss:// URL")]
    ExternalServer(String),
    #[error("--url-template: {0}")]
    UrlTemplate(#[from] UrlTemplateError),
    #[error("--command-token-file {path}: {reason}")]
    Token { path: PathBuf, reason: String },
    #[error("--lease-duration must be at least 2s")]
    LeaseDuration,
    #[error("--{0} must be more than zero")]
    Zero(&'static str),
}

/// Everything the operator needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub agent_selector: String,
    pub agent_namespace: String,
    pub session_namespace: Option<String>,
    pub external_servers: Vec<String>,
    pub status_interval: Duration,
    pub placement: Placement,
    pub url_template: UrlTemplate,
    pub command_token: Option<String>,
    pub call_timeout: Duration,
    pub schedule_timeout: Duration,
    pub server_lost_after: Duration,
    pub stop_give_up: Duration,
    pub max_backoff: Duration,
    pub orphan_sweep: Duration,
    pub metrics_listen: SocketAddr,
    pub lease: Option<LeaseConfig>,
}

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub duration: Duration,
    pub identity: String,
}

impl Args {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        check_selector(&self.agent_selector)?;
        for url in &self.external_servers {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(ConfigError::ExternalServer(url.clone()));
            }
        }
        for (name, value) in [
            ("status-interval", self.status_interval),
            ("call-timeout", self.call_timeout),
            ("schedule-timeout", self.schedule_timeout),
            ("max-backoff", self.max_backoff),
            ("orphan-sweep", self.orphan_sweep),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        let command_token = match &self.command_token_file {
            None => None,
            Some(path) => Some(read_token(path)?),
        };
        let lease = if self.lease_name.is_empty() {
            None
        } else {
            if self.lease_duration < Duration::from_secs(2) {
                return Err(ConfigError::LeaseDuration);
            }
            Some(LeaseConfig {
                name: self.lease_name,
                namespace: self
                    .lease_namespace
                    .or_else(|| std::env::var("POD_NAMESPACE").ok())
                    .unwrap_or_else(|| "default".to_owned()),
                duration: self.lease_duration,
                identity: self.identity.unwrap_or_else(default_identity),
            })
        };
        Ok(Config {
            agent_selector: self.agent_selector,
            agent_namespace: self.agent_namespace,
            session_namespace: self.session_namespace.filter(|n| !n.is_empty()),
            external_servers: self.external_servers,
            status_interval: self.status_interval,
            placement: self.placement,
            url_template: UrlTemplate::parse(&self.url_template)?,
            command_token,
            call_timeout: self.call_timeout,
            schedule_timeout: self.schedule_timeout,
            server_lost_after: self.server_lost_after,
            stop_give_up: self.stop_give_up,
            max_backoff: self.max_backoff,
            orphan_sweep: self.orphan_sweep,
            metrics_listen: self.metrics_listen,
            lease,
        })
    }
}

/// `key=value` and `key` terms separated by commas: what the operator passes to the apiserver,
/// checked here so a typo fails at start-up instead of matching nothing.
fn check_selector(selector: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Selector(selector.to_owned(), reason.to_owned());
    for term in selector.split(',').map(str::trim) {
        if term.is_empty() {
            return Err(bad("empty term"));
        }
        let key = term.split(['=', '!']).next().unwrap_or_default();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad("every term needs a label key"));
        }
    }
    Ok(())
}

fn read_token(path: &PathBuf) -> Result<String, ConfigError> {
    let error = |reason: String| ConfigError::Token {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(error("the file is empty".into()));
    }
    Ok(token.to_owned())
}

fn default_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "operator".to_owned());
        format!("{host}-{}", std::process::id())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut all = vec!["openspace-operator"];
        all.extend_from_slice(args);
        Args::try_parse_from(all).unwrap().into_config()
    }

    #[test]
    fn defaults_are_usable() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.status_interval, Duration::from_secs(5));
        assert_eq!(config.placement, Placement::Spread);
        assert_eq!(config.lease.unwrap().name, "openspace-operator");
    }

    #[test]
    fn bad_flags_are_refused_with_the_flag_named() {
        let e = parse(&["--external-server", "http://x:4699"]).unwrap_err();
        assert!(e.to_string().contains("--external-server"), "{e}");
        let e = parse(&["--agent-selector", "a=b,,c"]).unwrap_err();
        assert!(e.to_string().contains("empty term"), "{e}");
        let e = parse(&["--url-template", "http://{hots}/"]).unwrap_err();
        assert!(e.to_string().contains("hots"), "{e}");
        let e = parse(&["--lease-duration", "1s"]).unwrap_err();
        assert!(e.to_string().contains("--lease-duration"), "{e}");
        let e = parse(&["--command-token-file", "/nonexistent/token"]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
        assert!(parse(&["--lease-name", ""]).unwrap().lease.is_none());
    }
}
