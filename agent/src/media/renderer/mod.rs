//! Software stand-in for the OpenSpace planetarium: ray-casts a lit, textured
//! planet with atmosphere, an orbiting moon and a star field straight into
//! I420 frames for the H.264 encoder. Standard library only.
//!
//! Work is split into CHUNK_ROWS-row bands handed out to scoped threads from a
//! shared queue, so the (expensive) planet rows balance across cores.

mod assets;
pub mod camera;
pub mod color;
mod earth;
/// The frame type is the media layer's own, shared with encoders and other sources.
pub use super::frame;
mod material;
pub mod math;
mod moon;
mod noise;
mod raster;
mod scene;
/// Seconds of animation per turn of the planet (the API derives its simulation rate from it).
pub use scene::PLANET_DAY;
mod shade;
mod span;
pub mod stamp;
mod stars;
mod texture;

#[cfg(test)]
mod tests;

pub use camera::{Camera, CameraVelocity};
pub use color::i420_to_rgb24;
pub use frame::I420Frame;
pub use stamp::{draw_stamp, read_stamp, STAMP_BITS, STAMP_BLOCK};

use assets::Assets;
use raster::{ChunkPlanes, Scratch, CHUNK_ROWS};
use scene::Scene;
use stars::ProjectedStar;
use std::sync::{Arc, Mutex};

/// Largest accepted frame side; guards against absurd allocations.
const MAX_SIDE: u32 = 8192;
/// Upper bound on worker threads (the encoder needs CPU too).
const MAX_THREADS: usize = 4;

pub struct Renderer {
    width: u32,
    height: u32,
    camera: Camera,
    /// Worker threads used by `render` (including the calling thread).
    threads: usize,
    assets: Arc<Assets>,
    projected_stars: Vec<ProjectedStar>,
    scratch: Vec<Scratch>,
}

fn clamp_size(width: u32, height: u32) -> (u32, u32) {
    (width.clamp(1, MAX_SIDE), height.clamp(1, MAX_SIDE))
}

impl Renderer {
    /// Creates a renderer; the procedural textures are built on first use in
    /// the process (deterministic, fixed seeds) and shared afterwards.
    /// Sizes are clamped to 1..=8192.
    pub fn new(width: u32, height: u32) -> Self {
        let (width, height) = clamp_size(width, height);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS));
        Self {
            width,
            height,
            camera: Camera::default(),
            threads,
            assets: Assets::shared(),
            projected_stars: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The next `render` uses the new size (clamped to 1..=8192).
    pub fn resize(&mut self, width: u32, height: u32) {
        (self.width, self.height) = clamp_size(width, height);
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    pub fn camera_mut(&mut self) -> &mut Camera {
        &mut self.camera
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Sets the worker-thread count (at least 1).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Renders the scene at animation time `t` seconds into `frame` (resizing
    /// `frame` if needed). A non-finite `t` renders time 0.
    pub fn render(&mut self, t: f64, frame: &mut I420Frame) {
        if frame.width != self.width || frame.height != self.height || !frame.is_consistent() {
            frame.resize(self.width, self.height);
        }
        let (width, height) = (self.width as usize, self.height as usize);
        let chroma_width = frame.chroma_width() as usize;
        let view = self.camera.view(width, height);
        self.assets.stars.project(&view, &mut self.projected_stars);
        let scene = Scene::new(view, &self.assets, &self.projected_stars, t);

        let (y, u, v) = frame.planes_mut();
        let chroma_rows = CHUNK_ROWS / 2;
        let queue = Mutex::new(
            y.chunks_mut(width * CHUNK_ROWS)
                .zip(u.chunks_mut(chroma_width * chroma_rows))
                .zip(v.chunks_mut(chroma_width * chroma_rows))
                .enumerate()
                .map(|(index, ((y, u), v))| ChunkPlanes { index, y, u, v }),
        );
        let chunks = height.div_ceil(CHUNK_ROWS);
        let workers = self.threads.clamp(1, chunks.max(1));
        self.scratch.resize_with(workers, Scratch::default);

        let (own, others) = self.scratch.split_at_mut(1);
        std::thread::scope(|s| {
            for scratch in others.iter_mut() {
                let (scene, queue) = (&scene, &queue);
                s.spawn(move || work(scene, queue, scratch));
            }
            if let Some(scratch) = own.first_mut() {
                work(&scene, &queue, scratch);
            }
        });
    }
}

/// Takes chunks from the shared queue until it is empty.
fn work<'p, I>(scene: &Scene, queue: &Mutex<I>, scratch: &mut Scratch)
where
    I: Iterator<Item = ChunkPlanes<'p>>,
{
    loop {
        // A poisoned lock only means another worker panicked; the queue itself is intact.
        let next = match queue.lock() {
            Ok(mut q) => q.next(),
            Err(poisoned) => poisoned.into_inner().next(),
        };
        match next {
            Some(chunk) => raster::render_chunk(scene, chunk, scratch),
            None => break,
        }
    }
}
