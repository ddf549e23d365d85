//! The streaming frontend (the seed's "SF server"): a page where a person asks for a session,
//! watches its progress pushed from a Kubernetes watch, and then sees the stream, without the
//! browser ever learning a cluster address, port, instance id or token.
//!
//! - `visitor.rs`: who is asking (an HttpOnly cookie; only its hash goes into the cluster).
//! - `view.rs`: what a visitor sees (phase, queue position), pure.
//! - `sessions.rs`: the OpenSpaceSession API: a reflector of ours, create, delete, the sweep.
//! - `relay.rs`: the viewer's signaling, relayed to the session's agent with its id and token.
//! - `http.rs`: the routes; `config.rs`: the flags.

pub mod config;
pub mod http;
pub mod relay;
pub mod sessions;
pub mod view;
pub mod visitor;
