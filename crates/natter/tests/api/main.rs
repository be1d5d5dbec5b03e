//! Black-box tests: a real server on a free port, spoken to over HTTP.

mod common;
#[path = "../support/services.rs"]
mod services;
#[path = "../support/tls.rs"]
mod tls_services;

mod abuse;
mod accounts;
mod admin;
mod archive;
mod attention;
mod authz;
mod bad_input;
mod big_rooms;
mod browser;
mod changes;
mod cluster;
mod cluster_nodes;
mod cluster_shared;
mod communities;
mod data_folder;
mod delivery;
mod durability;
mod events;
mod lifecycle;
mod limits;
mod members;
mod mentions;
mod messages;
mod meta;
mod metrics;
mod migrate_store;
mod people;
mod postgres;
mod rate_limits;
mod rooms;
mod sdk;
mod sso;
mod state_equivalence;
mod tls;
