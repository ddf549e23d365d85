//! The seed's signaling protocol (REGISTER / SESSION / SDP / ICE) and per-instance tokens.

pub mod hub;
pub mod protocol;
pub mod socket;

pub use hub::Hub;
