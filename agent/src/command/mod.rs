//! The seed's command protocol: types and parsing, the server, and a client.

pub mod client;
pub mod handler;
pub mod protocol;
pub mod server;

pub use client::{call_once, ClientError, CommandClient, SlotWatch};
pub use protocol::{Answer, ParseError, Request, SlotInfo, SlotStatus, StartRequest};
