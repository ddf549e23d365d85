//! The operator's Prometheus metrics, beside the controller as in kube-rs' controller-rs.

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub reconcile_seconds: Histogram,
    pub reconcile_errors: IntCounter,
    /// Sessions by phase, recounted from the controller's cache every 5 s (`count_phases`).
    pub sessions: IntGaugeVec,
    /// Created -> START acknowledged.
    pub scheduling_seconds: Histogram,
    /// Created -> Running.
    pub ready_seconds: Histogram,
    /// Calls to rendering servers that got no answer, by command.
    pub agent_call_errors: IntCounterVec,
    pub orphans_stopped: IntCounter,
    pub leader: IntGauge,
    /// Warm instances RUNNING and unclaimed, per pool (namespace, pool).
    pub pool_warm_ready: IntGaugeVec,
    /// Sessions that claimed a warm instance.
    pub pool_claims: IntCounter,
    /// Sessions with a pool that found no warm instance ready and started cold.
    pub pool_cold_starts: IntCounter,
    /// Created -> CLAIM acknowledged.
    pub claim_seconds: Histogram,
}

fn seconds(name: &str, help: &str) -> Histogram {
    Histogram::with_opts(
        HistogramOpts::new(name, help)
            .buckets(exponential_buckets(0.001, 2.0, 17).expect("static buckets")),
    )
    .expect("static metric")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("openspace_operator".into()), None)
            .expect("a static prefix is valid");
        let metrics = Self {
            reconcile_seconds: seconds("reconcile_duration_seconds", "Time of one reconcile"),
            reconcile_errors: IntCounter::new("reconcile_errors_total", "Reconciles that failed")
                .expect("static metric"),
            sessions: IntGaugeVec::new(Opts::new("sessions", "Sessions by phase"), &["phase"])
                .expect("static metric"),
            scheduling_seconds: seconds(
                "scheduling_latency_seconds",
                "Session created -> START acknowledged by a rendering server",
            ),
            ready_seconds: seconds("ready_latency_seconds", "Session created -> Running"),
            agent_call_errors: IntCounterVec::new(
                Opts::new(
                    "agent_call_errors_total",
                    "Calls to rendering servers that got no answer",
                ),
                &["command"],
            )
            .expect("static metric"),
            orphans_stopped: IntCounter::new(
                "orphans_stopped_total",
                "Instances stopped because their session is gone",
            )
            .expect("static metric"),
            leader: IntGauge::new("leader", "1 while this replica holds the lease")
                .expect("static metric"),
            pool_warm_ready: IntGaugeVec::new(
                Opts::new(
                    "pool_warm_ready",
                    "Warm instances ready and unclaimed, per pool",
                ),
                &["namespace", "pool"],
            )
            .expect("static metric"),
            pool_claims: IntCounter::new(
                "pool_claims_total",
                "Sessions that claimed a warm instance",
            )
            .expect("static metric"),
            pool_cold_starts: IntCounter::new(
                "pool_cold_starts_total",
                "Sessions with a pool that found no warm instance ready and started cold",
            )
            .expect("static metric"),
            claim_seconds: seconds(
                "claim_latency_seconds",
                "Session created -> CLAIM of a warm instance acknowledged",
            ),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 12] = [
            Box::new(metrics.reconcile_seconds.clone()),
            Box::new(metrics.reconcile_errors.clone()),
            Box::new(metrics.sessions.clone()),
            Box::new(metrics.scheduling_seconds.clone()),
            Box::new(metrics.ready_seconds.clone()),
            Box::new(metrics.agent_call_errors.clone()),
            Box::new(metrics.orphans_stopped.clone()),
            Box::new(metrics.leader.clone()),
            Box::new(metrics.pool_warm_ready.clone()),
            Box::new(metrics.pool_claims.clone()),
            Box::new(metrics.pool_cold_starts.clone()),
            Box::new(metrics.claim_seconds.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("metrics are registered once");
        }
        #[cfg(target_os = "linux")]
        let _ = metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        metrics
    }

    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
