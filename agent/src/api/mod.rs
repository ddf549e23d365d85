//! The OpenSpace JSON API of the instances the agent renders (camera control, properties,
//! time), on a WebSocket (`/api/{id}`, port 4682 + id) and on TCP (`--api-tcp-base-port` + id,
//! for OpenSpace's Python client), and the relays to the API of instances whose program serves
//! it.

pub mod connection;
pub mod flags;
pub mod instance;
pub mod proxy;
pub mod socket;
pub mod tcp;
pub mod topics;

pub use instance::Scenes;
pub use socket::ApiState;
