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

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32x16 plane with structure: a gradient and a checkerboard.
    fn plane(width: usize, height: usize) -> Vec<u8> {
        (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                (40 + x * 4 + y * 2 + if (x / 2 + y / 2) % 2 == 0 { 30 } else { 0 }) as u8
            })
            .collect()
    }

    #[test]
    fn identical_planes_give_the_psnr_cap_and_ssim_one() {
        let a = plane(32, 16);
        assert_eq!(psnr(&a, &a), PSNR_IDENTICAL);
        let s = ssim(&a, &a, 32, 16).unwrap();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn an_offset_gives_the_psnr_its_squared_error_calls_for() {
        let a = plane(32, 16);
        let b: Vec<u8> = a.iter().map(|&v| v + 4).collect();
        // MSE 16: 10 log10(255^2 / 16) = 36.0896 dB.
        let expected = 10.0 * (255.0f64 * 255.0 / 16.0).log10();
        assert!((psnr(&a, &b) - expected).abs() < 1e-9, "{}", psnr(&a, &b));
        assert!((expected - 36.0896).abs() < 1e-4);
        // One sample of 16 off by 255: MSE = 255^2 / 16, so 10 log10(16) = 12.04 dB.
        let mut c = vec![0u8; 16];
        let d = c.clone();
        c[3] = 255;
        assert!((psnr(&c, &d) - 10.0 * 16f64.log10()).abs() < 1e-9);
    }

    #[test]
    fn ssim_of_flat_planes_is_the_luminance_term_alone() {
        // No variance in either plane: SSIM = (2 a b + C1) / (a^2 + b^2 + C1).
        let (a, b) = (vec![100u8; 16 * 16], vec![104u8; 16 * 16]);
        let expected = (2.0 * 100.0 * 104.0 + C1) / (100.0f64.powi(2) + 104.0f64.powi(2) + C1);
        let s = ssim(&a, &b, 16, 16).unwrap();
        assert!((s - expected).abs() < 1e-12, "{s} vs {expected}");
        assert!(s < 0.9993 && s > 0.999);
    }

    #[test]
    fn ssim_falls_as_structure_is_lost_and_inverts_for_an_inverted_picture() {
        let a = plane(32, 16);
        // The gradient kept, the checkerboard gone (what a coarse quantiser does).
        let blurred: Vec<u8> = a
            .iter()
            .enumerate()
            .map(|(i, _)| (40 + (i % 32) * 4 + (i / 32) * 2 + 15) as u8)
            .collect();
        let inverted: Vec<u8> = a.iter().map(|&v| 255 - v).collect();
        let blurred = ssim(&a, &blurred, 32, 16).unwrap();
        let inverted = ssim(&a, &inverted, 32, 16).unwrap();
        assert!(blurred < 0.95 && blurred > 0.0, "{blurred}");
        assert!(inverted < 0.0, "{inverted}");
    }

    #[test]
    fn ssim_needs_an_8x8_window_and_ignores_a_partial_block() {
        assert_eq!(
            ssim(&[0; 7 * 16], &[0; 7 * 16], 7, 16),
            Err(QualityError::TooSmall(7, 16))
        );
        // 18 wide: columns 16 and 17 are past the last whole block, so a change there is unseen.
        let a = vec![50u8; 18 * 8];
        let mut b = a.clone();
        b[17] = 250;
        assert!((ssim(&a, &b, 18, 8).unwrap() - 1.0).abs() < 1e-12);
        b[15] = 250;
        assert!(ssim(&a, &b, 18, 8).unwrap() < 1.0);
    }

    #[test]
    fn frame_quality_weights_planes_six_one_one_and_refuses_other_sizes() {
        let source = I420Frame::new(32, 16);
        let mut decoded = source.clone();
        let (_, u, _) = decoded.planes_mut();
        u.iter_mut().for_each(|v| *v += 4);
        let q = FrameQuality::measure(&source, &decoded).unwrap();
        assert_eq!((q.psnr_y, q.psnr_v), (PSNR_IDENTICAL, PSNR_IDENTICAL));
        assert!((q.psnr_u - 36.0896).abs() < 1e-4);
        assert!((q.psnr_yuv() - (7.0 * PSNR_IDENTICAL + q.psnr_u) / 8.0).abs() < 1e-12);
        assert!((q.ssim_y - 1.0).abs() < 1e-12);
        assert_eq!(
            FrameQuality::measure(&source, &I420Frame::new(16, 16)),
            Err(QualityError::Size {
                frame: (32, 16),
                decoded: (16, 16)
            })
        );
    }

    #[test]
    fn a_summary_has_the_mean_and_the_worst() {
        let s = Summary::of([40.0, 30.0, 35.0]).unwrap();
        assert_eq!((s.mean, s.min), (35.0, 30.0));
        assert_eq!(Summary::of([]), None);
    }
}
