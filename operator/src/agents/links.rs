//! Calls to rendering servers. Agents keep one WebSocket per server, reused by every call (the
//! connection is the expensive part); external servers get the seed's one-message-per-connection
//! exchange, the only thing the original supervisor reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openspace_protocol::{call_once, Answer, ClientError, CommandClient, Request};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::servers::Server;

/// Agents close connections idle for 60 s by default; reconnect before that rather than find out
/// on a call.
const MAX_IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("{server} ({url}): {command}: {source}")]
pub struct CallError {
    pub server: String,
    pub url: String,
    pub command: &'static str,
    #[source]
    pub source: ClientError,
}

struct Pooled {
    client: CommandClient,
    used: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Pooled>>>;

pub struct Links {
    token: Option<String>,
    timeout: Duration,
    pool: Mutex<HashMap<String, Slot>>,
    metrics: Metrics,
}

impl Links {
    pub fn new(token: Option<String>, timeout: Duration, metrics: Metrics) -> Self {
        Self {
            token,
            timeout,
            pool: Mutex::default(),
            metrics,
        }
    }

    /// One request, one answer. Protocol-level refusals (`error` other than `none`) are answers,
    /// not errors; errors mean the server could not be asked.
    pub async fn call(&self, server: &Server, request: &Request) -> Result<Answer, CallError> {
        let result = if server.external {
            call_once(&server.url, self.token.as_deref(), request, self.timeout).await
        } else {
            self.call_pooled(server, request).await
        };
        result.map_err(|source| {
            self.metrics
                .agent_call_errors
                .with_label_values(&[request.command()])
                .inc();
            CallError {
                server: server.name.clone(),
                url: server.url.clone(),
                command: request.command(),
                source,
            }
        })
    }

    async fn call_pooled(&self, server: &Server, request: &Request) -> Result<Answer, ClientError> {
        let slot = self.slot(&server.url);
        let mut pooled = slot.lock().await;
        if pooled.as_ref().is_some_and(|p| p.used.elapsed() > MAX_IDLE) {
            if let Some(old) = pooled.take() {
                old.client.close().await;
            }
        }
        let reused = pooled.is_some();
        match self.call_on(&mut pooled, server, request).await {
            Ok(answer) => Ok(answer),
            // A reused connection may have died since; every request the operator sends is safe
            // to repeat (START carries `session`, which agents answer idempotently).
            Err(_) if reused => self.call_on(&mut pooled, server, request).await,
            Err(e) => Err(e),
        }
    }

    async fn call_on(
        &self,
        pooled: &mut Option<Pooled>,
        server: &Server,
        request: &Request,
    ) -> Result<Answer, ClientError> {
        let mut current = match pooled.take() {
            Some(p) => p,
            None => Pooled {
                client: CommandClient::connect(&server.url, self.token.as_deref(), self.timeout)
                    .await?,
                used: Instant::now(),
            },
        };
        let answer = current.client.call(request).await?;
        current.used = Instant::now();
        *pooled = Some(current);
        Ok(answer)
    }

    fn slot(&self, url: &str) -> Slot {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.entry(url.to_owned()).or_default().clone()
    }

    /// Drops the connection of a server that left the directory.
    pub fn forget(&self, url: &str) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.remove(url);
    }
}
