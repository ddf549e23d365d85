//! The OpenSpace rendering server ("agent"): the seed's command protocol, the instance
//! supervisor, and the HTTP endpoints. The operator uses [`command::protocol`] and
//! [`command::client`] from here.

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
