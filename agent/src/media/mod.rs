//! Frames to packets: sources (built-in renderer), encoders, and the per-instance pipeline.

pub mod builtin;
pub mod encoder;
pub mod frame;
pub mod input;
mod keyframe_gate;
pub mod pipeline;
pub mod renderer;
