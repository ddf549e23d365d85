//! The agent's Prometheus metrics, registered once and shared by the supervisor and the servers.

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::command::protocol::SlotStatus;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub slots: IntGaugeVec,
    pub starts: IntCounter,
    pub stops: IntCounter,
    /// Instances that ended on their own, by kind: exit, signal, start_timeout, spawn_error, renderer.
    pub failures: IntCounterVec,
    pub command_seconds: HistogramVec,
    pub command_connections: IntGauge,
    pub render_seconds: Histogram,
    pub encode_seconds: HistogramVec,
    /// Frames handed to an encoder, or dropped because it was still busy.
    pub frames: IntCounterVec,
    pub viewers: IntGauge,
}

/// The kinds of `failures`, kept few so the label stays bounded.
pub mod failure {
    pub const EXIT: &str = "exit";
    pub const SIGNAL: &str = "signal";
    pub const START_TIMEOUT: &str = "start_timeout";
    pub const SPAWN_ERROR: &str = "spawn_error";
    /// The built-in renderer died (a panic on its thread).
    pub const RENDERER: &str = "renderer";
    /// An x11 instance's display went away or could not be captured.
    pub const DISPLAY: &str = "display";
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("openspace_agent".into()), None)
            .expect("a static prefix is valid");
        let slots = IntGaugeVec::new(Opts::new("slots", "Instance slots by state"), &["state"])
            .expect("static metric");
        let starts =
            IntCounter::new("instance_starts_total", "Instances started").expect("static metric");
        let stops = IntCounter::new("instance_stops_total", "Instances stopped on request")
            .expect("static metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "instance_failures_total",
                "Instances that ended on their own (crash, start timeout, spawn error)",
            ),
            &["kind"],
        )
        .expect("static metric");
        let command_seconds = HistogramVec::new(
            HistogramOpts::new("command_duration_seconds", "Time to answer a command")
                .buckets(exponential_buckets(10e-6, 4.0, 9).expect("static buckets")),
            &["command"],
        )
        .expect("static metric");
        let command_connections =
            IntGauge::new("command_connections", "Open command WebSocket connections")
                .expect("static metric");
        let frame_buckets = exponential_buckets(0.5e-3, 1.5, 14).expect("static buckets");
        let render_seconds = Histogram::with_opts(
            HistogramOpts::new("render_seconds", "Time to render or capture one frame")
                .buckets(frame_buckets.clone()),
        )
        .expect("static metric");
        let encode_seconds = HistogramVec::new(
            HistogramOpts::new("encode_seconds", "Time to encode one frame").buckets(frame_buckets),
            &["codec"],
        )
        .expect("static metric");
        let frames = IntCounterVec::new(
            Opts::new(
                "frames_total",
                "Frames handed to an encoder or dropped because it was busy",
            ),
            &["outcome"],
        )
        .expect("static metric");
        let viewers = IntGauge::new("viewers", "Connected WebRTC viewers").expect("static metric");
        for collector in [
            Box::new(slots.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(starts.clone()),
            Box::new(stops.clone()),
            Box::new(failures.clone()),
            Box::new(command_seconds.clone()),
            Box::new(command_connections.clone()),
            Box::new(render_seconds.clone()),
            Box::new(encode_seconds.clone()),
            Box::new(frames.clone()),
            Box::new(viewers.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");
        Self {
            registry,
            slots,
            starts,
            stops,
            failures,
            command_seconds,
            command_connections,
            render_seconds,
            encode_seconds,
            frames,
            viewers,
        }
    }

    pub fn set_slot_counts(&self, count: impl Fn(SlotStatus) -> usize) {
        for status in [
            SlotStatus::Idle,
            SlotStatus::Initializing,
            SlotStatus::Running,
            SlotStatus::Deinitializing,
        ] {
            self.slots
                .with_label_values(&[status.as_str()])
                .set(count(status) as i64);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# failed to encode metrics: {e}\n"))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
