//! VP8 through libvpx (Debian's `libvpx-dev`, bound by the `env-libvpx-sys` crate), set up for
//! real time as WebRTC senders do: CBR, no lag, error resilient, keyframes on demand.

use std::os::raw::{c_int, c_uint};
use std::ptr;

use vpx_sys as vpx;

use super::{Codec, Encoded, EncoderError, EncoderSettings, VideoEncoder};
use crate::media::frame::I420Frame;

/// libvpx's speed for VP8 in real time (higher is faster; WebRTC uses about this on desktops).
const CPU_USED: c_int = 10;
/// A keyframe at least this often, so a lost request never freezes a viewer for long.
const MAX_KEYFRAME_DISTANCE: c_uint = 300;
/// At most this many encoder threads whatever `--encoder-threads` says: on 2 cores with the
/// browser beside it, 2 threads made 720p30 fall to ~9 frames/s with p99 near 1 s, 1 thread kept
/// 28.5 frames/s at p99 ~100 ms (e2e/browser/bench/threads.mjs, BENCHMARKS.md).
const MAX_THREADS: u16 = 1;

pub struct Vp8Encoder {
    settings: EncoderSettings,
    /// Boxed: libvpx keeps pointers into the context, so it must not move.
    ctx: Box<vpx::vpx_codec_ctx_t>,
    size: Option<(u32, u32)>,
    pts: i64,
}

// The context is used from one thread at a time (the encoder thread owns it).
unsafe impl Send for Vp8Encoder {}

fn failed(what: &str, err: vpx::vpx_codec_err_t) -> EncoderError {
    EncoderError::Encode {
        codec: Codec::Vp8,
        reason: format!("{what}: {err:?}"),
    }
}

impl Vp8Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, EncoderError> {
        Ok(Self {
            settings,
            // SAFETY: an all-zero context is libvpx's "not initialised" state.
            ctx: Box::new(unsafe { std::mem::zeroed() }),
            size: None,
            pts: 0,
        })
    }

    /// (Re)creates the libvpx encoder for frames of `width` x `height`.
    fn configure(&mut self, width: u32, height: u32) -> Result<(), EncoderError> {
        self.release();
        // SAFETY: plain C calls on a config struct and a context we own; each result is checked.
        unsafe {
            // The config holds C enums with no zero value: let libvpx fill it before we read it.
            let mut defaults = std::mem::MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::uninit();
            let err = vpx::vpx_codec_enc_config_default(
                vpx::vpx_codec_vp8_cx(),
                defaults.as_mut_ptr(),
                0,
            );
            if err != vpx::VPX_CODEC_OK {
                return Err(failed("default config", err));
            }
            let mut cfg = defaults.assume_init();
            cfg.g_w = width;
            cfg.g_h = height;
            cfg.g_timebase = vpx::vpx_rational {
                num: 1,
                den: self.settings.fps.round().max(1.0) as c_int,
            };
            cfg.g_threads = c_uint::from(self.settings.threads.clamp(1, MAX_THREADS));
            cfg.g_lag_in_frames = 0;
            cfg.g_error_resilient = 1;
            cfg.g_pass = vpx::vpx_enc_pass::VPX_RC_ONE_PASS;
            cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
            cfg.rc_target_bitrate = self.settings.bitrate_bps / 1000;
            cfg.rc_dropframe_thresh = 0;
            cfg.rc_min_quantizer = 2;
            cfg.rc_max_quantizer = 56;
            cfg.rc_undershoot_pct = 100;
            cfg.rc_overshoot_pct = 15;
            cfg.rc_buf_initial_sz = 500;
            cfg.rc_buf_optimal_sz = 600;
            cfg.rc_buf_sz = 1000;
            cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
            cfg.kf_max_dist = MAX_KEYFRAME_DISTANCE;
            let err = vpx::vpx_codec_enc_init_ver(
                &mut *self.ctx,
                vpx::vpx_codec_vp8_cx(),
                &cfg,
                0,
                vpx::VPX_ENCODER_ABI_VERSION as c_int,
            );
            if err != vpx::VPX_CODEC_OK {
                *self.ctx = std::mem::zeroed();
                return Err(EncoderError::Create {
                    codec: Codec::Vp8,
                    reason: format!("{err:?}"),
                });
            }
            vpx::vpx_codec_control_(
                &mut *self.ctx,
                vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int,
                CPU_USED,
            );
        }
        self.size = Some((width, height));
        Ok(())
    }

    fn release(&mut self) {
        if self.size.take().is_some() {
            // SAFETY: the context was initialised by `configure` and is destroyed once.
            unsafe {
                vpx::vpx_codec_destroy(&mut *self.ctx);
                *self.ctx = std::mem::zeroed();
            }
        }
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        self.release();
    }
}

impl VideoEncoder for Vp8Encoder {
    fn codec(&self) -> Codec {
        Codec::Vp8
    }

    fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
    ) -> Result<Option<Encoded>, EncoderError> {
        let size = (frame.width, frame.height);
        let reconfigured = self.size != Some(size);
        if reconfigured {
            self.configure(frame.width, frame.height)?;
        }
        let flags = if keyframe || reconfigured {
            vpx::VPX_EFLAG_FORCE_KF as vpx::vpx_enc_frame_flags_t
        } else {
            0
        };
        let mut out = Encoded {
            data: Vec::new(),
            keyframe: false,
        };
        // SAFETY: the image wraps `frame.data` (I420, tightly packed, as vpx_img_wrap with
        // alignment 1 expects) only for the duration of the encode call, which copies it.
        unsafe {
            let mut image: vpx::vpx_image_t = std::mem::zeroed();
            let wrapped = vpx::vpx_img_wrap(
                &mut image,
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                frame.width,
                frame.height,
                1,
                frame.data.as_ptr().cast_mut(),
            );
            if wrapped.is_null() {
                return Err(EncoderError::Encode {
                    codec: Codec::Vp8,
                    reason: "could not wrap the frame".into(),
                });
            }
            let err = vpx::vpx_codec_encode(
                &mut *self.ctx,
                &image,
                self.pts,
                1,
                flags,
                vpx::VPX_DL_REALTIME.into(),
            );
            self.pts += 1;
            if err != vpx::VPX_CODEC_OK {
                return Err(failed("encode", err));
            }
            let mut iter: vpx::vpx_codec_iter_t = ptr::null();
            loop {
                let packet = vpx::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if packet.is_null() {
                    break;
                }
                if (*packet).kind == vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let f = (*packet).data.frame;
                    out.data.extend_from_slice(std::slice::from_raw_parts(
                        f.buf as *const u8,
                        f.sz as usize,
                    ));
                    out.keyframe |= f.flags & vpx::VPX_FRAME_IS_KEY != 0;
                }
            }
        }
        Ok((!out.data.is_empty()).then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder() -> Vp8Encoder {
        Vp8Encoder::new(EncoderSettings {
            bitrate_bps: 1_000_000,
            fps: 30.0,
            threads: 1,
        })
        .unwrap()
    }

    /// A VP8 frame header's first bit is 0 for a keyframe, and a keyframe carries the start code.
    fn is_vp8_keyframe(data: &[u8]) -> bool {
        data.len() > 10 && data[0] & 1 == 0 && data[3..6] == [0x9d, 0x01, 0x2a]
    }

    #[test]
    fn keyframes_come_first_on_request_and_after_a_resize() {
        let mut e = encoder();
        let mut frame = I420Frame::new(320, 240);
        let first = e.encode(&frame, false).unwrap().expect("a frame");
        assert!(first.keyframe && is_vp8_keyframe(&first.data));
        frame.data[500] = 200;
        let second = e.encode(&frame, false).unwrap().expect("a frame");
        assert!(!second.keyframe && !is_vp8_keyframe(&second.data));
        assert!(e.encode(&frame, true).unwrap().expect("a frame").keyframe);
        let resized = e
            .encode(&I420Frame::new(640, 360), false)
            .unwrap()
            .expect("a frame");
        assert!(resized.keyframe);
        // The keyframe header carries the new size (14 bits each, little endian).
        let width = u16::from_le_bytes([resized.data[6], resized.data[7]]) & 0x3fff;
        let height = u16::from_le_bytes([resized.data[8], resized.data[9]]) & 0x3fff;
        assert_eq!((width, height), (640, 360));
    }
}
