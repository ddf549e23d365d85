//! The tests of the encoder-quality bench's metrics and decoders (benches/encoder_quality): a
//! bench without libtest's harness runs no `#[test]`, so they run here, in the tests' binary.

#[path = "../../benches/encoder_quality/decode.rs"]
mod decode;
#[path = "../../benches/encoder_quality/metrics.rs"]
mod metrics;
