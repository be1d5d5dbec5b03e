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
pub mod emoji;
pub mod error;
pub mod http;
pub mod hub;
pub mod mentions;
pub mod metrics;
pub mod model;
pub(crate) mod progress;
pub mod server;
pub mod source;
pub mod store;
pub mod text;

pub use config::Config;
pub use server::serve;
