//! Decoders for what the encoders produced, so the bench can compare each picture a viewer would
//! see with the frame it came from: H.264 (openh264's and x264's) through Cisco's openh264
//! decoder (the `openh264` crate, built from source as for the encoder), VP8 through libvpx's
//! decoder (the `env-libvpx-sys` bindings the VP8 encoder uses). Both decode without delay: one
//! access unit (H.264) or frame (VP8) in, its picture out, which keeps pictures paired with
//! their frames.

use std::os::raw::{c_int, c_uint};
use std::ptr;

use openh264::formats::YUVSource;
use openspace_agent::media::encoder::Codec;
use openspace_agent::media::frame::I420Frame;
use vpx_sys as vpx;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("openh264 decoder: {0}")]
    H264(#[from] openh264::Error),
    #[error("libvpx VP8 decoder: {what}: {err:?}")]
    Vp8 {
        what: &'static str,
        err: vpx::vpx_codec_err_t,
    },
    #[error("decoded picture is {0:?}, not 8-bit I420")]
    Format(vpx::vpx_img_fmt_t),
}

/// A decoder of one stream.
pub trait Decoder {
    /// Decodes one encoded picture; `None` when it gave no picture (yet).
    fn decode(&mut self, encoded: &[u8]) -> Result<Option<I420Frame>, DecodeError>;
}

/// A decoder for `codec`'s streams.
pub fn decoder_for(codec: Codec) -> Result<Box<dyn Decoder>, DecodeError> {
    Ok(match codec {
        Codec::H264 => Box::new(H264Decoder::new()?),
        Codec::Vp8 => Box::new(Vp8Decoder::new()?),
    })
}

/// Copies a plane of `rows` rows of `width` samples, `stride` apart in `src`, into `dst`
/// (tightly packed, as [`I420Frame`] keeps its planes).
fn copy_plane(dst: &mut [u8], src: &[u8], stride: usize, width: usize, rows: usize) {
    for (row, out) in dst.chunks_exact_mut(width).take(rows).enumerate() {
        out.copy_from_slice(&src[row * stride..row * stride + width]);
    }
}

pub struct H264Decoder(openh264::decoder::Decoder);

impl H264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self(openh264::decoder::Decoder::new()?))
    }
}

impl Decoder for H264Decoder {
    fn decode(&mut self, encoded: &[u8]) -> Result<Option<I420Frame>, DecodeError> {
        let Some(picture) = self.0.decode(encoded)? else {
            return Ok(None);
        };
        let (width, height) = picture.dimensions();
        let (y_stride, u_stride, v_stride) = picture.strides();
        let mut frame = I420Frame::new(width as u32, height as u32);
        let (chroma_width, chroma_height) = (
            frame.chroma_width() as usize,
            frame.chroma_height() as usize,
        );
        let (y, u, v) = frame.planes_mut();
        copy_plane(y, picture.y(), y_stride, width, height);
        copy_plane(u, picture.u(), u_stride, chroma_width, chroma_height);
        copy_plane(v, picture.v(), v_stride, chroma_width, chroma_height);
        Ok(Some(frame))
    }
}

pub struct Vp8Decoder {
    /// Boxed: libvpx keeps pointers into the context, so it must not move.
    ctx: Box<vpx::vpx_codec_ctx_t>,
}

impl Vp8Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        // SAFETY: an all-zero context is libvpx's "not initialised" state; init fills it, and
        // with a null configuration libvpx picks the size from the stream.
        unsafe {
            let mut ctx: Box<vpx::vpx_codec_ctx_t> = Box::new(std::mem::zeroed());
            let err = vpx::vpx_codec_dec_init_ver(
                &mut *ctx,
                vpx::vpx_codec_vp8_dx(),
                ptr::null(),
                0,
                vpx::VPX_DECODER_ABI_VERSION as c_int,
            );
            if err != vpx::VPX_CODEC_OK {
                return Err(DecodeError::Vp8 { what: "init", err });
            }
            Ok(Self { ctx })
        }
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

impl Decoder for Vp8Decoder {
    fn decode(&mut self, encoded: &[u8]) -> Result<Option<I420Frame>, DecodeError> {
        // SAFETY: libvpx reads `encoded` during the call only; the image it returns stays valid
        // until the next decode call, and we copy it out before then, within its stated size.
        unsafe {
            let err = vpx::vpx_codec_decode(
                &mut *self.ctx,
                encoded.as_ptr(),
                encoded.len() as c_uint,
                ptr::null_mut(),
                0,
            );
            if err != vpx::VPX_CODEC_OK {
                return Err(DecodeError::Vp8 {
                    what: "decode",
                    err,
                });
            }
            let mut iter: vpx::vpx_codec_iter_t = ptr::null();
            let mut last = None;
            // VP8 gives at most one picture per frame; take the last if there were more.
            loop {
                let image = vpx::vpx_codec_get_frame(&mut *self.ctx, &mut iter);
                if image.is_null() {
                    break;
                }
                let image = &*image;
                if image.fmt != vpx::vpx_img_fmt::VPX_IMG_FMT_I420 {
                    return Err(DecodeError::Format(image.fmt));
                }
                let mut frame = I420Frame::new(image.d_w, image.d_h);
                let (width, height) = (image.d_w as usize, image.d_h as usize);
                let (chroma_width, chroma_height) = (
                    frame.chroma_width() as usize,
                    frame.chroma_height() as usize,
                );
                let plane = |i: usize, rows: usize| {
                    let stride = image.stride[i] as usize;
                    (
                        std::slice::from_raw_parts(image.planes[i], stride * rows),
                        stride,
                    )
                };
                let (y, u, v) = frame.planes_mut();
                let (src, stride) = plane(0, height);
                copy_plane(y, src, stride, width, height);
                let (src, stride) = plane(1, chroma_height);
                copy_plane(u, src, stride, chroma_width, chroma_height);
                let (src, stride) = plane(2, chroma_height);
                copy_plane(v, src, stride, chroma_width, chroma_height);
                last = Some(frame);
            }
            Ok(last)
        }
    }
}
