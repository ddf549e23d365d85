//! The seed's command protocol between a backend (the operator) and a rendering server (the
//! agent, or the original supervisor): request/answer types with a parser that never panics, and
//! an async WebSocket client. The agent serves it; the operator and `openspace-cmd` call it.

pub mod client;
pub mod command;
pub mod owner;

pub use client::{call_once, ClientError, CommandClient, SlotWatch};
pub use command::{Answer, ParseError, Request, SlotInfo, SlotStatus, StartRequest};
pub use owner::Owner;
