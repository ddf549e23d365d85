//! Talking to rendering servers: calls ([`links`]), WATCH subscriptions ([`watcher`]) and what
//! they tell about every slot ([`slots`]).

pub mod links;
pub mod slots;
pub mod watcher;

pub use links::{CallError, Links};
pub use slots::{Fleet, SlotState};
pub use watcher::Wake;
