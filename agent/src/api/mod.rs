//! The OpenSpace JSON API subset of the instances the agent renders (camera control), and the
//! relay to the API of instances whose program serves it.

pub mod proxy;
pub mod socket;
pub mod topics;

pub use socket::ApiState;
