//! Picture quality of a decoded frame against the frame it was encoded from: PSNR of each I420
//! plane (and the 6:1:1 weighted average codec comparisons use) and SSIM of the luma plane.
//!
//! Written here rather than taken from a crate: `av-metrics` reads planes as if their stride were
//! their width (true only for widths that are multiples of 64) and gives SSIM only in dB, and
//! `blazediff-ssim` follows MATLAB's `ssim.m` in first downsampling by min(w, h)/256 (3x at
//! 720p, 4x at 1080p), which hides exactly the fine coding artefacts compared here.

use openspace_agent::media::frame::I420Frame;

/// PSNR of identical planes, where the true value is infinite (the cap av-metrics and
/// FFmpeg's tools use too, so a mean over frames stays finite).
pub const PSNR_IDENTICAL: f64 = 100.0;

/// 8-bit samples.
const PEAK: f64 = 255.0;
/// SSIM's stability constants, (K1 L)^2 and (K2 L)^2 with Wang et al.'s K1 = 0.01, K2 = 0.03.
const C1: f64 = (0.01 * PEAK) * (0.01 * PEAK);
const C2: f64 = (0.03 * PEAK) * (0.03 * PEAK);
/// SSIM windows are 8x8 samples, one every 4 samples each way, as x264 and FFmpeg compute it:
/// sums over 4x4 blocks, each window the sum of 2x2 of them.
const BLOCK: usize = 4;
const WINDOW_SAMPLES: f64 = (4 * BLOCK * BLOCK) as f64;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QualityError {
    #[error("decoded picture is {decoded:?}, its frame {frame:?}")]
    Size {
        frame: (u32, u32),
        decoded: (u32, u32),
    },
    #[error("a {0}x{1} plane is too small for an 8x8 SSIM window")]
    TooSmall(usize, usize),
}

/// Peak signal-to-noise ratio of two 8-bit planes of the same size, in dB; [`PSNR_IDENTICAL`]
/// when they are equal.
pub fn psnr(source: &[u8], decoded: &[u8]) -> f64 {
    debug_assert_eq!(source.len(), decoded.len());
    let squared: u64 = source
        .iter()
        .zip(decoded)
        .map(|(&a, &b)| u64::from(a.abs_diff(b)).pow(2))
        .sum();
    if squared == 0 {
        return PSNR_IDENTICAL;
    }
    let mse = squared as f64 / source.len() as f64;
    (10.0 * (PEAK * PEAK / mse).log10()).min(PSNR_IDENTICAL)
}

/// Sums over one 4x4 block of both planes.
#[derive(Clone, Copy, Default)]
struct BlockSums {
    a: u32,
    b: u32,
    /// Sum of a^2 + b^2: SSIM needs only the two variances' sum.
    squares: u32,
    ab: u32,
}

impl std::ops::Add for BlockSums {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            a: self.a + o.a,
            b: self.b + o.b,
            squares: self.squares + o.squares,
            ab: self.ab + o.ab,
        }
    }
}

/// Mean structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) of two 8-bit planes of
/// `width` x `height` samples, tightly packed: 1 for identical planes, lower as structure is
/// lost. Equal-weight 8x8 windows every 4 samples; columns and rows past the last whole 4x4
/// block are left out, as in x264.
///
/// # Errors
/// [`QualityError::TooSmall`] when the plane holds no 8x8 window.
pub fn ssim(
    source: &[u8],
    decoded: &[u8],
    width: usize,
    height: usize,
) -> Result<f64, QualityError> {
    let (blocks_wide, blocks_high) = (width / BLOCK, height / BLOCK);
    if blocks_wide < 2 || blocks_high < 2 {
        return Err(QualityError::TooSmall(width, height));
    }
    debug_assert!(source.len() >= width * height && decoded.len() >= width * height);
    let mut sums = vec![BlockSums::default(); blocks_wide * blocks_high];
    for by in 0..blocks_high {
        for row in by * BLOCK..(by + 1) * BLOCK {
            let (a_row, b_row) = (
                &source[row * width..row * width + blocks_wide * BLOCK],
                &decoded[row * width..row * width + blocks_wide * BLOCK],
            );
            for (bx, (a4, b4)) in a_row
                .chunks_exact(BLOCK)
                .zip(b_row.chunks_exact(BLOCK))
                .enumerate()
            {
                let block = &mut sums[by * blocks_wide + bx];
                for (&a, &b) in a4.iter().zip(b4) {
                    let (a, b) = (u32::from(a), u32::from(b));
                    block.a += a;
                    block.b += b;
                    block.squares += a * a + b * b;
                    block.ab += a * b;
                }
            }
        }
    }
    let mut total = 0.0;
    for by in 0..blocks_high - 1 {
        for bx in 0..blocks_wide - 1 {
            let at = |x: usize, y: usize| sums[y * blocks_wide + x];
            let w = at(bx, by) + at(bx + 1, by) + at(bx, by + 1) + at(bx + 1, by + 1);
            let mean_a = f64::from(w.a) / WINDOW_SAMPLES;
            let mean_b = f64::from(w.b) / WINDOW_SAMPLES;
            let variances =
                f64::from(w.squares) / WINDOW_SAMPLES - mean_a * mean_a - mean_b * mean_b;
            let covariance = f64::from(w.ab) / WINDOW_SAMPLES - mean_a * mean_b;
            total += (2.0 * mean_a * mean_b + C1) * (2.0 * covariance + C2)
                / ((mean_a * mean_a + mean_b * mean_b + C1) * (variances + C2));
        }
    }
    Ok(total / ((blocks_wide - 1) * (blocks_high - 1)) as f64)
}

/// How close one decoded picture is to its source frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameQuality {
    pub psnr_y: f64,
    pub psnr_u: f64,
    pub psnr_v: f64,
    pub ssim_y: f64,
}

impl FrameQuality {
    /// # Errors
    /// When the two differ in size, or are too small for SSIM.
    pub fn measure(source: &I420Frame, decoded: &I420Frame) -> Result<Self, QualityError> {
        let sizes = (
            (source.width, source.height),
            (decoded.width, decoded.height),
        );
        if sizes.0 != sizes.1 || !source.is_consistent() || !decoded.is_consistent() {
            return Err(QualityError::Size {
                frame: sizes.0,
                decoded: sizes.1,
            });
        }
        Ok(Self {
            psnr_y: psnr(source.y(), decoded.y()),
            psnr_u: psnr(source.u(), decoded.u()),
            psnr_v: psnr(source.v(), decoded.v()),
            ssim_y: ssim(
                source.y(),
                decoded.y(),
                source.width as usize,
                source.height as usize,
            )?,
        })
    }

    /// (6 Y + U + V) / 8, the weighting of the per-plane PSNRs codec comparisons report.
    pub fn psnr_yuv(&self) -> f64 {
        (6.0 * self.psnr_y + self.psnr_u + self.psnr_v) / 8.0
    }
}

/// Mean and worst (lowest) of a metric over frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub min: f64,
}

impl Summary {
    /// `None` for no values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let (mut sum, mut min, mut n) = (0.0, f64::INFINITY, 0usize);
        for v in values {
            sum += v;
            min = min.min(v);
            n += 1;
        }
        (n > 0).then(|| Self {
            mean: sum / n as f64,
            min,
        })
    }
}
