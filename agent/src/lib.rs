//! The OpenSpace rendering server ("agent"): the seed's command protocol, the instance
//! supervisor, streaming, and the HTTP endpoints. The protocol's types and client live in the
//! `openspace-protocol` crate, shared with the operator.

pub mod api;
pub mod app;
pub mod auth;
pub mod command;
pub mod config;
pub mod instances;
pub mod media;
pub mod metrics;
pub mod signaling;
pub mod stream;
pub mod web;
pub mod x11;
