//! The seed's command protocol, served: the WebSocket server and the handler that asks the
//! supervisor. The types, parser and client live in the `openspace-protocol` crate (shared with
//! the operator) and are re-exported here under their old paths.

pub mod handler;
pub mod server;

pub use openspace_protocol::{
    call_once, Answer, ClientError, CommandClient, ParseError, Request, SlotInfo, SlotStatus,
    SlotWatch, StartRequest,
};
pub use openspace_protocol::{client, command as protocol};
