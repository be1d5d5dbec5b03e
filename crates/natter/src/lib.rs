//! natter: a self-hosted web instant-chat server.
//!
//! Layers, each depending only on those below it:
//! `http` (axum routes, JSON shapes) → `chat` (rules, authorization) →
//! `hub` (in-memory feeds, waiting polls, presence) and `store` (durable
//! SQLite) → `bus` (fan-out of committed events). See docs/architecture.md.

pub mod archive;
pub mod bus;
pub mod chat;
pub(crate) mod columns;
pub mod config;
pub(crate) mod emoji;
pub(crate) mod error;
pub(crate) mod http;
pub mod hub;
pub(crate) mod mentions;
pub(crate) mod metrics;
pub mod model;
pub(crate) mod panics;
pub(crate) mod progress;
pub mod server;
pub mod source;
pub mod store;
pub(crate) mod text;

pub use config::Config;
pub use server::serve;
