//! Instance slots and the processes that fill them.

pub mod kinds;
mod lifecycle;
pub mod process;
pub mod readiness;
pub mod slots;
pub mod supervisor;

pub use kinds::{InstanceConfig, InstanceKind};
pub use readiness::ReadyCheck;
pub use slots::{Resolution, SlotError, SlotView};
pub use supervisor::{StartOk, Supervisor};
