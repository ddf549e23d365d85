//! The captured picture (X11 ZPixmap, 32 bits per pixel: B, G, R, X in memory on little-endian
//! servers) to the encoders' I420, BT.601 limited range like the built-in renderer, by the `yuv`
//! crate's SIMD converters.

use yuv::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

use crate::media::frame::I420Frame;

#[derive(Debug, thiserror::Error)]
#[error("colour conversion failed: {0}")]
pub struct ConvertError(String);

/// Converts the top-left `width` x `height` (both even) of `bgrx`, rows `stride` bytes apart,
/// into `frame` (resized when its size differs).
pub fn bgrx_to_i420(
    bgrx: &[u8],
    stride: u32,
    width: u32,
    height: u32,
    frame: &mut I420Frame,
) -> Result<(), ConvertError> {
    if frame.width != width || frame.height != height || !frame.is_consistent() {
        frame.resize(width, height);
    }
    let chroma_width = frame.chroma_width();
    let (y, u, v) = frame.planes_mut();
    let mut image = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: chroma_width,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: chroma_width,
        width,
        height,
    };
    yuv::bgra_to_yuv420(
        &mut image,
        bgrx,
        stride,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| ConvertError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, stride: u32, bgrx: [u8; 4]) -> Vec<u8> {
        let mut data = vec![0u8; (stride * height) as usize];
        for row in data.chunks_mut(stride as usize) {
            for px in row[..(width * 4) as usize].chunks_mut(4) {
                px.copy_from_slice(&bgrx);
            }
        }
        data
    }

    #[test]
    fn primaries_land_on_bt601_limited_values() {
        // (B, G, R, X) -> expected (Y, U, V), BT.601 limited range, +-2 for rounding.
        let cases = [
            ([0, 0, 0, 0], (16, 128, 128)),
            ([255, 255, 255, 0], (235, 128, 128)),
            ([0, 0, 255, 0], (81, 90, 240)),
            ([0, 255, 0, 0], (145, 54, 34)),
            ([255, 0, 0, 0], (41, 240, 110)),
        ];
        for (bgrx, (ey, eu, ev)) in cases {
            // A stride wider than the picture, as X pads rows: the padding must be ignored.
            let data = solid(8, 4, 8 * 4 + 16, bgrx);
            let mut frame = I420Frame::new(2, 2);
            bgrx_to_i420(&data, 8 * 4 + 16, 8, 4, &mut frame).expect("converts");
            assert_eq!((frame.width, frame.height), (8, 4));
            assert!(frame.is_consistent());
            let near = |a: u8, b: i32| (i32::from(a) - b).abs() <= 2;
            assert!(
                frame.y().iter().all(|&p| near(p, ey)),
                "{bgrx:?} Y {:?}",
                &frame.y()[..4]
            );
            assert!(
                frame.u().iter().all(|&p| near(p, eu)),
                "{bgrx:?} U {:?}",
                &frame.u()[..2]
            );
            assert!(
                frame.v().iter().all(|&p| near(p, ev)),
                "{bgrx:?} V {:?}",
                &frame.v()[..2]
            );
        }
    }

    #[test]
    fn a_short_buffer_is_an_error_not_a_panic() {
        let mut frame = I420Frame::new(4, 4);
        assert!(bgrx_to_i420(&[0u8; 10], 16, 4, 4, &mut frame).is_err());
    }
}
