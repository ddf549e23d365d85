//! One instance's picture path: a source thread paced at the frame rate, a bounded hand-off to
//! one encoder thread per codec in use, and a broadcast of encoded frames to the viewers.
//!
//! When an encoder falls behind, the hand-off (one frame deep) is full and the new frame is
//! dropped: latency never queues up. Nothing renders while nobody watches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::encoder::{Codec, EncoderError, EncoderFactory, EncoderSettings};
use super::frame::I420Frame;
use super::input::InputEvent;
use super::keyframe_gate::{KeyframeGate, MIN_KEYFRAME_INTERVAL};
use crate::metrics::Metrics;

/// Where pictures come from: the built-in renderer, later an X11 capture. Runs on the source
/// thread only, so it needs no locking.
pub trait FrameSource: Send + 'static {
    /// Produces the next picture into `frame`, resizing it as needed. `frame_number` and
    /// `wall_ms` (wall clock, ms) identify it, e.g. for a stamp.
    fn next_frame(&mut self, frame: &mut I420Frame, frame_number: u32, wall_ms: u64);
    /// Later frames should have this size (already even and within the encoder's limits).
    fn resize(&mut self, width: u32, height: u32);
    fn input(&mut self, event: InputEvent);
}

/// One encoded picture as the viewers get it.
#[derive(Debug, Clone)]
pub struct EncodedSample {
    pub data: Bytes,
    pub keyframe: bool,
    pub width: u32,
    pub height: u32,
    pub duration: Duration,
}

enum SourceCommand {
    Resize(u32, u32),
    Input(InputEvent),
}

/// Encoded frames buffered per viewer; a viewer further behind skips ahead to a keyframe.
const VIEWER_BUFFER: usize = 8;

struct EncoderFeed {
    frames: SyncSender<Arc<I420Frame>>,
    keyframe: Arc<AtomicBool>,
    output: broadcast::Sender<Arc<EncodedSample>>,
    viewers: usize,
}

struct Shared {
    feeds: Mutex<HashMap<Codec, EncoderFeed>>,
    stopped: AtomicBool,
}

impl Shared {
    fn feeds(&self) -> MutexGuard<'_, HashMap<Codec, EncoderFeed>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub fps: u32,
    pub encoder: EncoderSettings,
    /// Where this pipeline's encoders come from.
    pub encoders: Arc<EncoderFactory>,
}

pub struct Pipeline {
    shared: Arc<Shared>,
    resizable: bool,
    commands: Mutex<mpsc::Sender<SourceCommand>>,
    settings: PipelineSettings,
    metrics: Metrics,
    source_thread: Mutex<Option<JoinHandle<()>>>,
}

/// A viewer's place in the pipeline; dropping it stops that codec's encoder when it was the last.
pub struct Subscription {
    pipeline: Arc<Pipeline>,
    codec: Codec,
    pub frames: broadcast::Receiver<Arc<EncodedSample>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut feeds = self.pipeline.shared.feeds();
        if let Some(feed) = feeds.get_mut(&self.codec) {
            feed.viewers -= 1;
            if feed.viewers == 0 {
                // Dropping the feed's sender ends its encoder thread.
                feeds.remove(&self.codec);
            }
        }
    }
}

impl Subscription {
    /// Asks the encoder for a keyframe (new viewer, PLI/FIR, or after skipping frames).
    pub fn request_keyframe(&self) {
        (self.keyframe_requester())();
    }

    /// The same request as a closure another task can keep.
    pub fn keyframe_requester(&self) -> impl Fn() + Send + Sync + 'static {
        let (shared, codec) = (Arc::clone(&self.pipeline.shared), self.codec);
        move || {
            if let Some(feed) = shared.feeds().get(&codec) {
                feed.keyframe.store(true, Ordering::Release);
            }
        }
    }
}

impl Pipeline {
    /// Starts the source thread. `resizable`: the source follows RESOLUTION live.
    pub fn start(
        source: Box<dyn FrameSource>,
        resizable: bool,
        settings: PipelineSettings,
        metrics: Metrics,
    ) -> Arc<Self> {
        let shared = Arc::new(Shared {
            feeds: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        });
        let (commands, receiver) = mpsc::channel();
        let thread = {
            let shared = Arc::clone(&shared);
            let metrics = metrics.clone();
            let fps = settings.fps;
            std::thread::Builder::new()
                .name("source".into())
                .spawn(move || run_source(source, receiver, shared, fps, metrics))
                .ok()
        };
        Arc::new(Self {
            shared,
            resizable,
            commands: Mutex::new(commands),
            settings,
            metrics,
            source_thread: Mutex::new(thread),
        })
    }

    /// Starts receiving encoded frames in `codec`, starting its encoder if nobody used it yet.
    /// The first frame a new subscriber gets is a keyframe request away.
    pub fn subscribe(self: &Arc<Self>, codec: Codec) -> Result<Subscription, EncoderError> {
        let mut feeds = self.shared.feeds();
        let frames = match feeds.get_mut(&codec) {
            Some(feed) => {
                feed.viewers += 1;
                feed.keyframe.store(true, Ordering::Release);
                feed.output.subscribe()
            }
            None => {
                let feed = self.start_encoder(codec)?;
                let frames = feed.output.subscribe();
                feeds.insert(codec, feed);
                frames
            }
        };
        Ok(Subscription {
            pipeline: Arc::clone(self),
            codec,
            frames,
        })
    }

    fn start_encoder(&self, codec: Codec) -> Result<EncoderFeed, EncoderError> {
        let mut encoder = self
            .settings
            .encoders
            .create(codec, self.settings.encoder)?;
        let (frames, receiver) = mpsc::sync_channel::<Arc<I420Frame>>(1);
        let keyframe = Arc::new(AtomicBool::new(true));
        let (output, _) = broadcast::channel(VIEWER_BUFFER);
        let duration = Duration::from_secs_f64(1.0 / f64::from(self.settings.fps.max(1)));
        let (wants_key, out, metrics) =
            (Arc::clone(&keyframe), output.clone(), self.metrics.clone());
        let label = codec.to_string();
        std::thread::Builder::new()
            .name(format!("encode-{label}"))
            .spawn(move || {
                let seconds = metrics.encode_seconds.with_label_values(&[&label]);
                let mut gate = KeyframeGate::new(MIN_KEYFRAME_INTERVAL);
                for frame in receiver {
                    // A request the gate defers stays pending for a later frame.
                    let key = wants_key.load(Ordering::Acquire) && gate.admit(Instant::now());
                    if key {
                        wants_key.store(false, Ordering::Release);
                    }
                    let started = Instant::now();
                    match encoder.encode(&frame, key) {
                        Ok(Some(encoded)) => {
                            seconds.observe(started.elapsed().as_secs_f64());
                            let sample = EncodedSample {
                                data: Bytes::from(encoded.data),
                                keyframe: encoded.keyframe,
                                width: frame.width,
                                height: frame.height,
                                duration,
                            };
                            // No receivers left is fine: the feed is about to be removed.
                            let _ = out.send(Arc::new(sample));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "encoding a frame failed");
                            wants_key.store(true, Ordering::Release);
                        }
                    }
                }
            })
            .map_err(|e| EncoderError::Create {
                codec,
                reason: e.to_string(),
            })?;
        Ok(EncoderFeed {
            frames,
            keyframe,
            output,
            viewers: 1,
        })
    }

    /// Later frames get this size. Rounded down to even (4:2:0) and capped by the encoder.
    pub fn resize(&self, width: u32, height: u32) {
        self.send(SourceCommand::Resize(
            stream_dimension(width, MAX_WIDTH),
            stream_dimension(height, MAX_HEIGHT),
        ));
    }

    /// What this pipeline's encoders are set to (bitrate, frame rate).
    pub fn encoder_settings(&self) -> EncoderSettings {
        self.settings.encoder
    }

    pub fn resizable(&self) -> bool {
        self.resizable
    }

    pub fn input(&self, event: InputEvent) {
        self.send(SourceCommand::Input(event));
    }

    fn send(&self, command: SourceCommand) {
        let commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        // A stopped source has nobody to tell.
        let _ = commands.send(command);
    }

    /// Whether the source thread is still alive (false after a stop or a panic).
    pub fn is_running(&self) -> bool {
        let thread = self.source_thread.lock().unwrap_or_else(|p| p.into_inner());
        thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the source and every encoder; returns once the source thread has ended.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.feeds().clear();
        let thread = self
            .source_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The largest picture streamed (4K UHD; beyond it the software encoders fall far behind).
pub const MAX_WIDTH: u32 = 3840;
pub const MAX_HEIGHT: u32 = 2160;

/// Even, at least 16, at most `max`.
pub fn stream_dimension(value: u32, max: u32) -> u32 {
    (value.clamp(16, max)) & !1
}

fn run_source(
    mut source: Box<dyn FrameSource>,
    commands: mpsc::Receiver<SourceCommand>,
    shared: Arc<Shared>,
    fps: u32,
    metrics: Metrics,
) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let mut pool: Vec<Arc<I420Frame>> = Vec::new();
    let mut frame_number: u32 = 0;
    let mut next = Instant::now();
    while !shared.stopped.load(Ordering::Acquire) {
        // Apply everything that arrived since the last frame, or idle while nobody watches.
        let idle = shared.feeds().is_empty();
        let wait = if idle {
            Duration::from_millis(100)
        } else {
            next.saturating_duration_since(Instant::now())
        };
        match commands.recv_timeout(wait) {
            Ok(command) => {
                apply(&mut *source, command);
                while let Ok(command) = commands.try_recv() {
                    apply(&mut *source, command);
                }
                if Instant::now() < next || shared.feeds().is_empty() {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) if idle => continue,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let mut frame = take_frame(&mut pool);
        let started = Instant::now();
        {
            // `take_frame` hands out unshared frames, so this never copies.
            let target = Arc::make_mut(&mut frame);
            let wall_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            source.next_frame(target, frame_number, wall_ms);
        }
        metrics
            .render_seconds
            .observe(started.elapsed().as_secs_f64());
        frame_number = frame_number.wrapping_add(1);
        for feed in shared.feeds().values() {
            match feed.frames.try_send(Arc::clone(&frame)) {
                Ok(()) => metrics.frames.with_label_values(&["encoded"]).inc(),
                Err(TrySendError::Full(_)) => metrics.frames.with_label_values(&["dropped"]).inc(),
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        pool.push(frame);
        next = next_deadline(next, interval, Instant::now());
    }
}

/// The frame after the one due at `due`: one `interval` later, on the same grid, so that the
/// rate holds without drift (a late wake-up or a slow frame is made up by the next one coming
/// at once). Whole intervals already missed are skipped rather than burst.
fn next_deadline(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if now <= next {
        return next;
    }
    let missed = (now - next).as_nanos() / interval.as_nanos().max(1);
    next + interval * u32::try_from(missed).unwrap_or(u32::MAX)
}

fn apply(source: &mut dyn FrameSource, command: SourceCommand) {
    match command {
        SourceCommand::Resize(w, h) => source.resize(w, h),
        SourceCommand::Input(event) => source.input(event),
    }
}

/// A frame nobody else holds any more, from the pool or new.
fn take_frame(pool: &mut Vec<Arc<I420Frame>>) -> Arc<I420Frame> {
    if let Some(i) = pool.iter().position(|f| Arc::strong_count(f) == 1) {
        return pool.swap_remove(i);
    }
    if pool.len() > 4 {
        pool.remove(0);
    }
    Arc::new(I420Frame::new(16, 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::encoder::Backend;

    /// Records when each frame was asked for; a small grey picture.
    struct Clocked(Arc<Mutex<Vec<Instant>>>);

    impl FrameSource for Clocked {
        fn next_frame(&mut self, frame: &mut I420Frame, _: u32, _: u64) {
            frame.resize(64, 64);
            frame.data.fill(128);
            self.0.lock().unwrap().push(Instant::now());
        }
        fn resize(&mut self, _: u32, _: u32) {}
        fn input(&mut self, _: InputEvent) {}
    }

    #[test]
    fn a_late_frame_is_made_up_on_the_grid_and_missed_intervals_are_skipped() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // On time: one interval later.
        assert_eq!(next_deadline(t0, ms(10), t0 + ms(4)), t0 + ms(10));
        // 3 ms late: the next frame keeps the grid (due at 10, comes at once), no drift.
        assert_eq!(next_deadline(t0, ms(10), t0 + ms(13)), t0 + ms(10));
        // 25 ms late: the slot at 10 is skipped; the one at 20 comes at once.
        assert_eq!(next_deadline(t0, ms(10), t0 + ms(25)), t0 + ms(20));
    }

    /// Runs a 60 fps pipeline for 3 s: (frames/s produced after the first 0.5 s, frames
    /// encoded, frames produced).
    fn paced_at_60() -> (f64, usize, usize) {
        let encoder = EncoderSettings {
            bitrate_bps: 500_000,
            fps: 60.0,
            threads: 1,
        };
        let settings = PipelineSettings {
            fps: 60,
            encoder,
            encoders: Arc::new(
                EncoderFactory::with_backends(&[Backend::Openh264], encoder).unwrap(),
            ),
        };
        let times = Arc::new(Mutex::new(Vec::new()));
        let pipeline = Pipeline::start(
            Box::new(Clocked(Arc::clone(&times))),
            false,
            settings,
            Metrics::new(),
        );
        let mut subscription = pipeline.subscribe(Codec::H264).unwrap();
        let mut encoded = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            match subscription.frames.try_recv() {
                Ok(_) => encoded += 1,
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        pipeline.stop();
        let times = times.lock().unwrap().clone();
        // The first frames wait for the encoder to start: measure from 0.5 s on.
        let steady: Vec<Instant> = times
            .iter()
            .copied()
            .filter(|t| t.duration_since(started) >= Duration::from_millis(500))
            .collect();
        let span = steady
            .last()
            .unwrap()
            .duration_since(steady[0])
            .as_secs_f64();
        ((steady.len() - 1) as f64 / span, encoded, times.len())
    }

    /// `--fps 60` end to end in the pipeline: frames come at the configured rate without drift
    /// and each reaches the viewer's subscription encoded. A machine busy with other work can
    /// starve the source thread for a while: up to three tries.
    #[test]
    fn the_source_paces_at_60_fps_without_drift_and_every_frame_is_encoded() {
        let mut tries = Vec::new();
        for _ in 0..3 {
            let (rate, encoded, produced) = paced_at_60();
            // A frame the encoder cannot take is dropped at the hand-off, never queued.
            if (58.0..=60.5).contains(&rate) && encoded >= produced * 9 / 10 {
                return;
            }
            tries.push(format!(
                "{rate:.2} frames/s, {encoded} of {produced} encoded"
            ));
        }
        panic!("not paced at 60 fps: {tries:?}");
    }
}
