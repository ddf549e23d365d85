//! Machine-readable stamp in the top-left corner (frame number and time), read
//! back from the *decoded* video by tests and by a browser page to measure
//! latency and dropped frames. Big 8x8 blocks of extreme luma survive H.264
//! compression; the geometry is shared with the browser reader, so keep it.

use super::frame::I420Frame;

/// Each bit is a STAMP_BLOCK x STAMP_BLOCK square.
pub const STAMP_BLOCK: u32 = 8;
/// Bits per row, most significant bit first, left to right.
pub const STAMP_BITS: u32 = 24;
/// Stamp rows: frame number, time, and a black guard row that isolates the
/// bits from the picture below (limits ringing from the encoder).
const STAMP_ROWS: u32 = 3;
const STAMP_WIDTH: u32 = STAMP_BLOCK * STAMP_BITS;
const STAMP_HEIGHT: u32 = STAMP_BLOCK * STAMP_ROWS;
const BIT_ONE: u8 = 235;
const BIT_ZERO: u8 = 16;
const THRESHOLD: u8 = 128;
const MASK: u32 = (1 << STAMP_BITS) - 1;

/// Draws `frame_number` (row 0) and `time_ms` (row 1), each masked to 24 bits,
/// plus the guard row. Does nothing if the frame is smaller than 192x24.
pub fn draw_stamp(frame: &mut I420Frame, frame_number: u32, time_ms: u32) {
    if frame.width < STAMP_WIDTH || frame.height < STAMP_HEIGHT || !frame.is_consistent() {
        return;
    }
    let width = frame.width as usize;
    let chroma_width = frame.chroma_width() as usize;
    let values = [frame_number & MASK, time_ms & MASK, 0];
    let (y_plane, u_plane, v_plane) = frame.planes_mut();

    for (row, line) in y_plane
        .chunks_mut(width)
        .take(STAMP_HEIGHT as usize)
        .enumerate()
    {
        let value = values[row / STAMP_BLOCK as usize];
        for (x, px) in line.iter_mut().take(STAMP_WIDTH as usize).enumerate() {
            let bit = STAMP_BITS - 1 - (x as u32 / STAMP_BLOCK);
            *px = if value >> bit & 1 == 1 {
                BIT_ONE
            } else {
                BIT_ZERO
            };
        }
    }
    // Neutral chroma so the blocks decode as pure grey levels.
    let chroma_rows = (STAMP_HEIGHT / 2) as usize;
    let chroma_cols = (STAMP_WIDTH / 2) as usize;
    for plane in [u_plane, v_plane] {
        for line in plane.chunks_mut(chroma_width).take(chroma_rows) {
            for px in line.iter_mut().take(chroma_cols) {
                *px = 128;
            }
        }
    }
}

/// Reads (frame_number, time_ms) from a luma plane by sampling the centre pixel
/// of each block against a mid-grey threshold. None if the picture (or the
/// slice) is too small to hold a stamp.
pub fn read_stamp(luma: &[u8], stride: usize, width: u32, height: u32) -> Option<(u32, u32)> {
    if width < STAMP_WIDTH || height < STAMP_HEIGHT || stride < width as usize {
        return None;
    }
    let read_row = |row: u32| -> Option<u32> {
        let y = (row * STAMP_BLOCK + STAMP_BLOCK / 2) as usize;
        (0..STAMP_BITS).try_fold(0u32, |acc, bit| {
            let x = (bit * STAMP_BLOCK + STAMP_BLOCK / 2) as usize;
            let sample = *luma.get(y.checked_mul(stride)?.checked_add(x)?)?;
            Some(acc << 1 | u32::from(sample >= THRESHOLD))
        })
    };
    Some((read_row(0)?, read_row(1)?))
}

#[cfg(test)]
mod tests {
    use super::super::noise::Rng;
    use super::*;

    fn round_trip(frame: &I420Frame) -> Option<(u32, u32)> {
        read_stamp(frame.y(), frame.width as usize, frame.width, frame.height)
    }

    #[test]
    fn round_trips_extremes() {
        let mut f = I420Frame::new(320, 240);
        for &(n, t) in &[
            (0, 0),
            (0xFF_FFFF, 0xFF_FFFF),
            (1, 0x80_0000),
            (0x12_3456, 0xAB_CDEF),
        ] {
            draw_stamp(&mut f, n, t);
            assert_eq!(round_trip(&f), Some((n, t)));
        }
        // Only the low 24 bits are kept.
        draw_stamp(&mut f, 0x1FF_FFFF, 0x100_0001);
        assert_eq!(round_trip(&f), Some((0xFF_FFFF, 1)));
        // Guard row is black, chroma neutral.
        assert!(f.y()[20 * 320..20 * 320 + 192].iter().all(|&p| p == 16));
        assert!(f.u()[..96].iter().all(|&p| p == 128));
    }

    #[test]
    fn survives_luma_noise() {
        let mut rng = Rng::new(7);
        let mut f = I420Frame::new(192, 24);
        for &(n, t) in &[(0, 0xFF_FFFF), (0xFF_FFFF, 0), (0x5A_A55A, 0x0F_F0F0)] {
            draw_stamp(&mut f, n, t);
            let (y, _, _) = f.planes_mut();
            for p in y.iter_mut() {
                let noise = (rng.next_u64() % 41) as i32 - 20;
                *p = (*p as i32 + noise).clamp(0, 255) as u8;
            }
            assert_eq!(round_trip(&f), Some((n, t)));
        }
    }

    #[test]
    fn too_small_is_skipped_or_none() {
        let mut f = I420Frame::new(191, 24);
        draw_stamp(&mut f, 5, 5);
        assert!(f.y().iter().all(|&p| p == 16));
        assert_eq!(round_trip(&f), None);
        assert_eq!(read_stamp(&[0; 10], 192, 192, 24), None);
        assert_eq!(read_stamp(&[], 100, 192, 24), None);
        assert_eq!(read_stamp(&[0; 64], usize::MAX, 192, 24), None);
    }
}
