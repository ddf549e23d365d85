//! The OpenSpace JSON API subset of the instances the agent renders (camera control).

pub mod socket;
pub mod topics;

pub use socket::ApiState;
