//! The agent's integration tests, against the running `openspace-agent` binary: one test binary
//! with a module per area, because each binary links webrtc, openh264 and libvpx, and on two
//! cores one link beats six.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod command_protocol;
mod encoder_quality;
mod instance_api;
mod instances;
mod signaling;
mod warm;
mod x11;
