//! Which codecs this machine can encode, and the encoders for them: the one place the offer's
//! codec list and the pipeline's encoders come from (webrtcsink keeps such a registry too).

use std::fmt;
use std::str::FromStr;

use super::{software_encoder, Codec, EncoderError, EncoderSettings, VideoEncoder};

/// One encoder implementation (`--encoder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Cisco's openh264 on the CPU (H.264 constrained baseline).
    Openh264,
    /// libvpx on the CPU (VP8).
    Vpx,
    /// A GStreamer encoder element, e.g. `nvh264enc`, `vah264enc`, `x264enc`, `vp8enc`
    /// (agents built with the `gstreamer` feature).
    Gst(String),
}

impl FromStr for Backend {
    type Err = String;

    /// `openh264`, `vpx` or `gst:ELEMENT`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "openh264" => Ok(Backend::Openh264),
            "vpx" => Ok(Backend::Vpx),
            other => match other.strip_prefix("gst:") {
                Some(element) if !element.is_empty() && !element.contains(char::is_whitespace) => {
                    Ok(Backend::Gst(element.to_owned()))
                }
                _ => Err(format!(
                    "unknown encoder {other:?}: use openh264, vpx or gst:ELEMENT"
                )),
            },
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Openh264 => f.write_str("openh264"),
            Backend::Vpx => f.write_str("vpx"),
            Backend::Gst(element) => write!(f, "gst:{element}"),
        }
    }
}

impl Backend {
    /// A new encoder of this implementation.
    fn create(&self, settings: EncoderSettings) -> Result<Box<dyn VideoEncoder>, EncoderError> {
        match self {
            Backend::Openh264 => software_encoder(Codec::H264, settings),
            Backend::Vpx => software_encoder(Codec::Vp8, settings),
            #[cfg(feature = "gstreamer")]
            Backend::Gst(element) => Ok(Box::new(super::gst::GstEncoder::new(element, settings)?)),
            #[cfg(not(feature = "gstreamer"))]
            Backend::Gst(_) => Err(EncoderError::Backend {
                backend: self.to_string(),
                reason: "this agent was built without GStreamer (cargo feature `gstreamer`)".into(),
            }),
        }
    }
}

/// The codecs this agent can encode and the implementation of each, found by creating each
/// encoder once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderFactory {
    /// One implementation per encodable codec, in the agent's order of preference.
    backends: Vec<(Codec, Backend)>,
}

impl EncoderFactory {
    /// Exactly `backends` (`--encoder`), most preferred first, each created once to learn its
    /// codec and to fail at start rather than at the first viewer.
    ///
    /// # Errors
    /// An encoder that cannot be created here (e.g. a GStreamer element this machine lacks: the
    /// error lists those it has), or two encoders for one codec.
    pub fn with_backends(
        backends: &[Backend],
        settings: EncoderSettings,
    ) -> Result<Self, EncoderError> {
        let mut chosen: Vec<(Codec, Backend)> = Vec::new();
        for backend in backends {
            let codec = backend.create(settings)?.codec();
            if let Some((_, other)) = chosen.iter().find(|(c, _)| *c == codec) {
                return Err(EncoderError::Backend {
                    backend: backend.to_string(),
                    reason: format!("{other} encodes {codec} already: name one encoder per codec"),
                });
            }
            chosen.push((codec, backend.clone()));
        }
        Ok(Self { backends: chosen })
    }

    /// A factory that offers exactly `codecs` with the CPU encoders (tests).
    pub fn with_codecs(codecs: Vec<Codec>) -> Self {
        let backends = codecs
            .into_iter()
            .map(|codec| {
                let backend = match codec {
                    Codec::H264 => Backend::Openh264,
                    Codec::Vp8 => Backend::Vpx,
                };
                (codec, backend)
            })
            .collect();
        Self { backends }
    }

    /// The encodable codecs, in the agent's order of preference.
    pub fn codecs(&self) -> Vec<Codec> {
        self.backends.iter().map(|(codec, _)| *codec).collect()
    }

    pub fn can_encode(&self, codec: Codec) -> bool {
        self.backends.iter().any(|(c, _)| *c == codec)
    }

    /// The encodable codecs with `preferred` first when it is one of them.
    pub fn preference(&self, preferred: Codec) -> Vec<Codec> {
        let mut codecs = self.codecs();
        if let Some(at) = codecs.iter().position(|c| *c == preferred) {
            codecs[..=at].rotate_right(1);
        }
        codecs
    }

    /// A new encoder for `codec`.
    ///
    /// # Errors
    /// [`EncoderError::Unavailable`] for a codec this machine cannot encode; the encoder's own
    /// error when creating it fails.
    pub fn create(
        &self,
        codec: Codec,
        settings: EncoderSettings,
    ) -> Result<Box<dyn VideoEncoder>, EncoderError> {
        let (_, backend) = self
            .backends
            .iter()
            .find(|(c, _)| *c == codec)
            .ok_or(EncoderError::Unavailable(codec))?;
        backend.create(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EncoderSettings {
        EncoderSettings {
            bitrate_bps: 1_000_000,
            fps: 30.0,
            threads: 1,
        }
    }

    #[test]
    fn the_preferred_codec_goes_first_and_the_rest_keep_their_order() {
        let factory = EncoderFactory::with_codecs(vec![Codec::H264, Codec::Vp8]);
        assert_eq!(factory.preference(Codec::Vp8), [Codec::Vp8, Codec::H264]);
        assert_eq!(factory.preference(Codec::H264), [Codec::H264, Codec::Vp8]);
        let vp8_only = EncoderFactory::with_codecs(vec![Codec::Vp8]);
        assert_eq!(vp8_only.preference(Codec::H264), [Codec::Vp8]);
    }

    #[test]
    fn a_codec_it_cannot_encode_is_refused() {
        let vp8_only = EncoderFactory::with_codecs(vec![Codec::Vp8]);
        assert!(matches!(
            vp8_only.create(Codec::H264, settings()),
            Err(EncoderError::Unavailable(Codec::H264))
        ));
        assert!(vp8_only.create(Codec::Vp8, settings()).is_ok());
    }

    #[test]
    fn encoders_are_named_by_flag_one_per_codec() {
        assert_eq!("gst:x264enc".parse(), Ok(Backend::Gst("x264enc".into())));
        assert_eq!("vpx".parse(), Ok(Backend::Vpx));
        assert!("gst:".parse::<Backend>().is_err() && "x264".parse::<Backend>().is_err());
        let vp8_first =
            EncoderFactory::with_backends(&[Backend::Vpx, Backend::Openh264], settings()).unwrap();
        assert_eq!(vp8_first.codecs(), [Codec::Vp8, Codec::H264]);
        let twice =
            EncoderFactory::with_backends(&[Backend::Openh264, Backend::Openh264], settings());
        assert!(twice.is_err_and(|e| e.to_string().contains("one encoder per codec")));
    }

    #[cfg(feature = "gstreamer")]
    #[test]
    fn a_gstreamer_element_takes_its_codecs_place() {
        let factory = EncoderFactory::with_backends(
            &[
                Backend::Gst("x264enc".into()),
                Backend::Gst("vp8enc".into()),
            ],
            settings(),
        )
        .unwrap();
        assert_eq!(factory.codecs(), [Codec::H264, Codec::Vp8]);
        let missing =
            EncoderFactory::with_backends(&[Backend::Gst("nvh264enc-missing".into())], settings());
        assert!(missing.is_err_and(|e| e.to_string().contains("present")));
    }

    #[test]
    fn codec_names_parse_whatever_their_case() {
        assert_eq!("h264".parse(), Ok(Codec::H264));
        assert_eq!("H.264".parse(), Ok(Codec::H264));
        assert_eq!(" VP8 ".parse(), Ok(Codec::Vp8));
        assert!("av1".parse::<Codec>().is_err());
    }
}
