//! Which codecs this machine can encode, and the encoders for them: the one place the offer's
//! codec list and the pipeline's encoders come from (webrtcsink keeps such a registry too).

use super::{software_encoder, Codec, EncoderError, EncoderSettings, VideoEncoder};

/// The codecs this agent can encode, found by creating each encoder once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderFactory {
    /// Encodable codecs, in the agent's order of preference.
    codecs: Vec<Codec>,
}

impl EncoderFactory {
    /// Tries each known encoder with `settings`; a codec whose encoder cannot be created here is
    /// left out (and logged), so it is never offered.
    pub fn probe(settings: EncoderSettings) -> Self {
        let codecs = Codec::ALL
            .into_iter()
            .filter(|codec| match software_encoder(*codec, settings) {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(%codec, error = %e, "codec not offered");
                    false
                }
            })
            .collect();
        Self { codecs }
    }

    /// A factory that offers exactly `codecs` (tests, and machines known in advance).
    pub fn with_codecs(codecs: Vec<Codec>) -> Self {
        Self { codecs }
    }

    /// The encodable codecs, in the agent's order of preference.
    pub fn codecs(&self) -> &[Codec] {
        &self.codecs
    }

    pub fn can_encode(&self, codec: Codec) -> bool {
        self.codecs.contains(&codec)
    }

    /// The encodable codecs with `preferred` first when it is one of them.
    pub fn preference(&self, preferred: Codec) -> Vec<Codec> {
        let mut codecs = self.codecs.clone();
        if let Some(at) = codecs.iter().position(|c| *c == preferred) {
            codecs[..=at].rotate_right(1);
        }
        codecs
    }

    /// A new encoder for `codec`.
    ///
    /// # Errors
    /// [`EncoderError::Unavailable`] for a codec this machine cannot encode; the encoder's own
    /// [`EncoderError::Create`] when creating it fails.
    pub fn create(
        &self,
        codec: Codec,
        settings: EncoderSettings,
    ) -> Result<Box<dyn VideoEncoder>, EncoderError> {
        if !self.can_encode(codec) {
            return Err(EncoderError::Unavailable(codec));
        }
        software_encoder(codec, settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let settings = EncoderSettings {
            bitrate_bps: 1_000_000,
            fps: 30.0,
            threads: 1,
        };
        let vp8_only = EncoderFactory::with_codecs(vec![Codec::Vp8]);
        assert!(matches!(
            vp8_only.create(Codec::H264, settings),
            Err(EncoderError::Unavailable(Codec::H264))
        ));
        assert!(vp8_only.create(Codec::Vp8, settings).is_ok());
    }

    #[test]
    fn codec_names_parse_whatever_their_case() {
        assert_eq!("h264".parse(), Ok(Codec::H264));
        assert_eq!("H.264".parse(), Ok(Codec::H264));
        assert_eq!(" VP8 ".parse(), Ok(Codec::Vp8));
        assert!("av1".parse::<Codec>().is_err());
    }
}
