//! The playout-delay RTP header extension (<http://www.webrtc.org/experiments/rtp-hdrext/playout-delay>):
//! the sender tells the receiver how long it may buffer frames before showing them. Chromium
//! honours it as screen sharing and game streaming use it: min = max = 0 turns its jitter buffer's
//! smoothing off and renders each frame as soon as it is decoded.

/// The extension's URI, as negotiated in SDP (`a=extmap:N <uri>`).
pub const URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// The 3-byte payload: MIN and MAX delay, 12 bits each, in units of 10 ms (values above
/// 40950 ms are clamped).
pub fn payload(min_ms: u32, max_ms: u32) -> [u8; 3] {
    let units = |ms: u32| (ms / 10).min(0xfff);
    let (min, max) = (units(min_ms), units(max_ms));
    [
        (min >> 4) as u8,
        (((min & 0xf) << 4) | (max >> 8)) as u8,
        (max & 0xff) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_pack_into_twelve_bits_each_in_ten_millisecond_units() {
        assert_eq!(payload(0, 0), [0, 0, 0]);
        // min 100 ms = 10 units = 0x00a, max 1 s = 100 units = 0x064.
        assert_eq!(payload(100, 1000), [0x00, 0xa0, 0x64]);
        assert_eq!(payload(u32::MAX, u32::MAX), [0xff, 0xff, 0xff]);
    }
}
