//! Flags (each also an `OPENSPACE_*` environment variable).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "openspace-frontend",
    version,
    about = "The page where people start OpenSpace sessions and watch them"
)]
pub struct Config {
    /// Where the page listens.
    #[arg(
        long,
        env = "OPENSPACE_FRONTEND_LISTEN",
        default_value = "0.0.0.0:8090"
    )]
    pub listen: SocketAddr,

    /// Namespace the sessions are created in (default: the client's, i.e. the pod's namespace in a
    /// cluster, the kubeconfig context's outside one).
    #[arg(long, env = "OPENSPACE_SESSION_NAMESPACE")]
    pub namespace: Option<String>,

    /// Live sessions this frontend allows at once; further visitors are told the cluster is full.
    #[arg(long, env = "OPENSPACE_MAX_SESSIONS", default_value_t = 10)]
    pub max_sessions: usize,

    /// A session nobody watches for this long ends (closing the page ends it this way).
    #[arg(long, env = "OPENSPACE_IDLE_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// No session runs longer than this.
    #[arg(long, env = "OPENSPACE_MAX_DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_duration: Duration,

    /// Ended or failed sessions are deleted this long after they ended.
    #[arg(long, env = "OPENSPACE_KEEP_ENDED", default_value = "1m", value_parser = humantime::parse_duration)]
    pub keep_ended: Duration,

    /// The session profile (`spec.profile`).
    #[arg(long, env = "OPENSPACE_PROFILE", default_value = "default")]
    pub profile: String,

    /// An `OpenSpacePool` (in the sessions' namespace) whose warm instances the sessions claim
    /// (`spec.pool`); a session starts cold when none is ready.
    #[arg(long, env = "OPENSPACE_POOL")]
    pub pool: Option<String>,

    /// Mark the visitor cookie `Secure` (serve the page over HTTPS, e.g. behind the Ingress).
    #[arg(long, env = "OPENSPACE_SECURE_COOKIE")]
    pub secure_cookie: bool,

    /// Log format (the level is `RUST_LOG`).
    #[arg(long, env = "OPENSPACE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A duration the CRD's pattern accepts (`90s`, `2m`): whole seconds.
pub fn crd_duration(duration: Duration) -> String {
    format!("{}s", duration.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_fit_the_crd_pattern() {
        use std::time::Duration;
        assert_eq!(super::crd_duration(Duration::from_secs(120)), "120s");
        assert_eq!(super::crd_duration(Duration::from_millis(10)), "1s");
    }
}
