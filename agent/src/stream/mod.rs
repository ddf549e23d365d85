//! WebRTC: one peer connection per viewer, the video track, and the "input" data channel.

pub mod codecs;
pub mod control;
pub mod flags;
mod held;
pub mod ice;
mod keyframes;
pub mod peer;
pub mod playout_delay;
pub mod roster;
mod sender;
pub mod turn;
pub mod viewer;

pub use peer::WebRtcConfig;
pub use roster::Roster;
pub use viewer::{FromBrowser, ToBrowser, ViewerDeps, ViewerError};
