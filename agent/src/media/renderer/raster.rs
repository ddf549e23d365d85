//! Renders one horizontal band (CHUNK_ROWS rows) straight into the I420
//! planes: sky from a coarse interpolated grid, star sprites, ray-cast bodies
//! inside their screen boxes, then RGB -> Y per pixel and U/V per 2x2 block.

use super::color::{rgb_to_uv, rgb_to_y};
use super::math::{Rgb, Vec3};
use super::scene::Scene;
use super::span::{cast_span, SpanScratch};
use super::stars::ProjectedStar;

/// Rows per work item; also the sky-grid spacing, so a chunk needs exactly two
/// grid rows.
pub const CHUNK_ROWS: usize = 16;
const GRID: usize = CHUNK_ROWS;
/// Rows a star sprite can reach above/below its centre (1 for the tent + halo).
const STAR_REACH: f32 = 3.0;

/// Per-thread scratch buffers, reused across frames to avoid allocation.
#[derive(Default)]
pub struct Scratch {
    rows: [Vec<Rgb>; 2],
    grid: [Vec<Rgb>; 2],
    grid_row: Vec<Rgb>,
    /// Luma sink for the missing second row of an odd-height frame.
    spare: Vec<u8>,
    span: SpanScratch,
}

impl Scratch {
    fn prepare(&mut self, width: usize) {
        let cols = width.div_ceil(GRID) + 1;
        for r in &mut self.rows {
            r.resize(width, Vec3::ZERO);
        }
        for g in &mut self.grid {
            g.resize(cols, Vec3::ZERO);
        }
        self.grid_row.resize(cols, Vec3::ZERO);
        self.spare.resize(width, 0);
    }
}

/// The planes of one chunk (`y` has up to CHUNK_ROWS rows, `u`/`v` half as many).
pub struct ChunkPlanes<'p> {
    pub index: usize,
    pub y: &'p mut [u8],
    pub u: &'p mut [u8],
    pub v: &'p mut [u8],
}

pub fn render_chunk(scene: &Scene, chunk: ChunkPlanes, scratch: &mut Scratch) {
    let view = &scene.view;
    let (width, height) = (view.width, view.height);
    let chroma_width = width.div_ceil(2);
    if width == 0 {
        return;
    }
    scratch.prepare(width);
    let first_row = chunk.index * CHUNK_ROWS;
    sample_sky_grid(scene, first_row, scratch);

    let Scratch {
        rows,
        grid,
        grid_row,
        spare,
        span: span_scratch,
    } = scratch;
    let step = view.right * (1.0 / view.focal);
    for (pair, (u_row, v_row)) in chunk
        .u
        .chunks_mut(chroma_width)
        .zip(chunk.v.chunks_mut(chroma_width))
        .enumerate()
    {
        let y0 = first_row + 2 * pair;
        let has_second = y0 + 1 < height;
        let row_count = 1 + has_second as usize;
        for (y, row) in (y0..).zip(rows.iter_mut()).take(row_count) {
            let fy = (y - first_row) as f32 / GRID as f32;
            fill_sky(row, grid, grid_row, fy);
            splat_stars(row, y, scene.stars);
            let base = view.ray(0.0, y as f32);
            for span in scene.spans(y).into_iter().flatten() {
                let end = span.end.min(row.len());
                let start = span.start.min(end);
                let origin = base + step * start as f32;
                let ray = |i: usize| origin + step * i as f32;
                cast_span(scene, &mut row[start..end], ray, span_scratch);
            }
        }
        let local = (2 * pair * width).min(chunk.y.len());
        let y_rows = &mut chunk.y[local..];
        let (y_top, y_rest) = y_rows.split_at_mut(width.min(y_rows.len()));
        let [top, bottom] = &*rows;
        if has_second {
            write_yuv(top, bottom, y_top, y_rest, u_row, v_row);
        } else {
            write_yuv(top, top, y_top, spare, u_row, v_row);
        }
    }
}

/// Sky colour at grid points (every GRID pixels) on the chunk's top and bottom edges.
fn sample_sky_grid(scene: &Scene, first_row: usize, scratch: &mut Scratch) {
    let sky = &scene.assets.stars;
    for (k, grid) in scratch.grid.iter_mut().enumerate() {
        let y = (first_row + k * GRID) as f32;
        for (gx, cell) in grid.iter_mut().enumerate() {
            let dir = scene.view.ray((gx * GRID) as f32, y);
            *cell = sky.sky_colour(dir.normalized_or(scene.view.forward));
        }
    }
}

/// Bilinear interpolation of the sky grid for one row (`fy` = position between grid rows).
fn fill_sky(row: &mut [Rgb], grid: &[Vec<Rgb>; 2], grid_row: &mut [Rgb], fy: f32) {
    for (g, (a, b)) in grid_row.iter_mut().zip(grid[0].iter().zip(grid[1].iter())) {
        *g = a.lerp(*b, fy);
    }
    for (seg, pixels) in row.chunks_mut(GRID).enumerate() {
        let c0 = grid_row.get(seg).copied().unwrap_or_default();
        let c1 = grid_row.get(seg + 1).copied().unwrap_or(c0);
        let step = (c1 - c0) * (1.0 / GRID as f32);
        let mut c = c0;
        for p in pixels {
            *p = c;
            c = c + step;
        }
    }
}

/// Adds the stars touching row `y`: a tent (bilinear) splat for sub-pixel
/// motion, plus a small glow for bright stars.
fn splat_stars(row: &mut [Rgb], y: usize, stars: &[ProjectedStar]) {
    let yf = y as f32;
    let first = stars.partition_point(|s| s.y < yf - STAR_REACH);
    for s in stars[first..].iter().take_while(|s| s.y <= yf + STAR_REACH) {
        let dy = (yf - s.y).abs();
        let x0 = s.x.floor();
        let fx = s.x - x0;
        if dy < 1.0 {
            let wy = 1.0 - dy;
            add(row, x0 as isize, s.colour * (wy * (1.0 - fx)));
            add(row, x0 as isize + 1, s.colour * (wy * fx));
        }
        if s.halo > 0.0 {
            for dx in -3..=3isize {
                let px = x0 as isize + dx;
                let ddx = px as f32 - s.x;
                let r2 = ddx * ddx + dy * dy;
                let w = (1.0 - r2 * (1.0 / 9.0)).max(0.0);
                add(row, px, s.colour * (s.halo * w * w));
            }
        }
    }
}

fn add(row: &mut [Rgb], x: isize, c: Rgb) {
    if let Some(p) = usize::try_from(x).ok().and_then(|x| row.get_mut(x)) {
        *p = *p + c;
    }
}

/// Converts two RGB rows to Y (per pixel) and U/V (per 2x2 block average).
/// An odd width reuses the last column; for an odd height the caller passes
/// `top` twice and a throw-away `y_bottom`.
fn write_yuv(
    top: &[Rgb],
    bottom: &[Rgb],
    y_top: &mut [u8],
    y_bottom: &mut [u8],
    u: &mut [u8],
    v: &mut [u8],
) {
    let pairs = top
        .chunks_exact(2)
        .zip(bottom.chunks_exact(2))
        .zip(y_top.chunks_exact_mut(2).zip(y_bottom.chunks_exact_mut(2)))
        .zip(u.iter_mut().zip(v.iter_mut()));
    for (((t, b), (yt, yb)), (u, v)) in pairs {
        let (p0, p1) = (t[0].clamp01(), t[1].clamp01());
        let (p2, p3) = (b[0].clamp01(), b[1].clamp01());
        yt[0] = rgb_to_y(p0);
        yt[1] = rgb_to_y(p1);
        yb[0] = rgb_to_y(p2);
        yb[1] = rgb_to_y(p3);
        (*u, *v) = rgb_to_uv((p0 + p1 + p2 + p3) * 0.25);
    }
    if top.len() % 2 == 1 {
        let x = top.len() - 1;
        let p0 = top.get(x).copied().unwrap_or_default().clamp01();
        let p2 = bottom.get(x).copied().unwrap_or_default().clamp01();
        put(y_top, x, p0);
        put(y_bottom, x, p2);
        let (cu, cv) = rgb_to_uv((p0 + p2) * 0.5);
        if let (Some(u), Some(v)) = (u.get_mut(x / 2), v.get_mut(x / 2)) {
            (*u, *v) = (cu, cv);
        }
    }
}

fn put(plane: &mut [u8], x: usize, p: Rgb) {
    if let Some(dst) = plane.get_mut(x) {
        *dst = rgb_to_y(p);
    }
}
