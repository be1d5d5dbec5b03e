//! One module per group of endpoints, each with a `router()`.

pub mod accounts;
pub mod admin;
pub mod assets;
pub mod attention;
pub mod embed;
pub mod events;
pub mod messages;
pub mod meta;
pub mod rooms;
