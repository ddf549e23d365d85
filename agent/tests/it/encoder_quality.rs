//! The tests of the encoder-quality bench's metrics and decoders (benches/encoder_quality): a
//! bench without libtest's harness runs no `#[test]`, so they run here, in the tests' binary.

#[path = "../../benches/encoder_quality/decode.rs"]
mod decode;
#[path = "../../benches/encoder_quality/metrics.rs"]
mod metrics;

mod decoders {
    use super::decode::*;
    use super::metrics::psnr;
    use openspace_agent::media::encoder::{software_encoder, Codec, EncoderSettings};
    use openspace_agent::media::frame::I420Frame;
    use openspace_agent::media::renderer::Renderer;

    /// Encodes a few frames of the built-in scene, with chroma planes of their own (U rising
    /// to the right, V downwards, so a swap or a wrong stride shows), decodes them and checks
    /// each picture has the frame's size and every plane stays close to the frame's.
    fn round_trip(codec: Codec) {
        let settings = EncoderSettings {
            bitrate_bps: 2_000_000,
            fps: 30.0,
            threads: 1,
        };
        let mut encoder = software_encoder(codec, settings).expect("encoder");
        let mut decoder = decoder_for(codec).expect("decoder");
        let mut renderer = Renderer::new(320, 240);
        let mut frame = I420Frame::new(320, 240);
        for i in 0..5 {
            renderer.camera_mut().orbit(0.01, 0.0);
            renderer.render(f64::from(i) / 30.0, &mut frame);
            let (_, u, v) = frame.planes_mut();
            for (k, (u, v)) in u.iter_mut().zip(v.iter_mut()).enumerate() {
                let (x, y) = (k % 160, k / 160);
                (*u, *v) = (60 + (x * 120 / 160) as u8, 60 + y as u8);
            }
            let encoded = encoder.encode(&frame, false).unwrap().expect("a frame");
            let picture = decoder.decode(&encoded.data).unwrap().expect("a picture");
            assert_eq!((picture.width, picture.height), (320, 240));
            assert!(picture.is_consistent());
            let (y, u, v) = (
                psnr(frame.y(), picture.y()),
                psnr(frame.u(), picture.u()),
                psnr(frame.v(), picture.v()),
            );
            assert!(
                y > 30.0 && u > 30.0 && v > 30.0,
                "{codec} frame {i}: PSNR {y:.1} {u:.1} {v:.1} dB"
            );
        }
    }

    #[test]
    fn h264_pictures_come_back_at_their_size_and_close_to_their_frames() {
        round_trip(Codec::H264);
    }

    #[test]
    fn vp8_pictures_come_back_at_their_size_and_close_to_their_frames() {
        round_trip(Codec::Vp8);
    }

    #[test]
    fn a_broken_vp8_frame_is_an_error() {
        let mut decoder = Vp8Decoder::new().unwrap();
        assert!(decoder.decode(&[0x00, 0x01, 0x02, 0x03]).is_err());
    }
}

mod measures {
    use super::metrics::*;
    use openspace_agent::media::frame::I420Frame;

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
        // No variance in either plane: SSIM = (2 a b + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2.
        let c1 = (0.01f64 * 255.0).powi(2);
        let (a, b) = (vec![100u8; 16 * 16], vec![104u8; 16 * 16]);
        let expected = (2.0 * 100.0 * 104.0 + c1) / (100.0f64.powi(2) + 104.0f64.powi(2) + c1);
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
