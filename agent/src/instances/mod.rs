//! Instance slots and the processes that fill them.

mod lifecycle;
pub mod process;
pub mod readiness;
pub mod slots;
pub mod supervisor;
mod x11_lifecycle;

pub use readiness::ReadyCheck;
pub use slots::{Resolution, SlotError, SlotView};
pub use supervisor::{
    InstanceConfig, InstanceKind, StartOk, Supervisor, X11DisplayChoice, X11Settings,
};
