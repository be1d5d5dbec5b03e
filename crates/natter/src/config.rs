//! One configuration, from defaults, an optional `natter.toml`, environment
//! variables and flags (later ones win). `natter --help` lists every
//! setting with its variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use std::sync::Arc;

use crate::bus::redis::BusTls;
use crate::chat::{ChatConfig, RateLimits, RateSpec, RegistrationMode, Secret, Secrets, Site};
use crate::hub::HubConfig;
use crate::source::TrustedProxies;
use crate::store::StoreChoice;

/// Settings as given; every field optional so sources can be layered.
#[derive(Args, Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "NATTER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder for the SQLite database, created if missing; unused when `store` is PostgreSQL [default: data]
    #[arg(long, env = "NATTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where data is kept: a `postgres://user:password@host:port/database` URL for PostgreSQL (several nodes share it; `?sslmode=verify-full&sslrootcert=ca.pem` for verified TLS, and `sslcert`, `sslkey` for a client certificate, as in libpq), or unset for SQLite in `data_dir` [default: SQLite in data_dir]
    // A secret: the URL may hold a password.
    #[arg(long, env = "NATTER_STORE")]
    pub store: Option<Secret>,
    /// The bus between the nodes of a cluster: a `redis://host:port` URL, `rediss://` for TLS (every node of a deployment on PostgreSQL names the same Redis), or unset for one node alone [default: one node]
    // A secret: the URL may hold a password.
    #[arg(long, env = "NATTER_BUS")]
    pub bus: Option<Secret>,
    /// A PEM file of the roots a `rediss://` bus's certificate must chain to, for a Redis whose certificate no system root signs [default: the system's roots]
    #[arg(long, env = "NATTER_BUS_CA_FILE")]
    pub bus_ca_file: Option<PathBuf>,
    /// A PEM file of the certificate a `rediss://` bus presents to a Redis that asks clients for one (`tls-auth-clients`), with `bus_key_file` [default: none]
    #[arg(long, env = "NATTER_BUS_CERT_FILE")]
    pub bus_cert_file: Option<PathBuf>,
    /// The PEM file of `bus_cert_file`'s private key, not encrypted [default: none]
    #[arg(long, env = "NATTER_BUS_KEY_FILE")]
    pub bus_key_file: Option<PathBuf>,
    /// The Redis channel of this deployment's bus; give a copy of a deployment's database (a restored dump, a staging copy) that shares a Redis a channel of its own [default: natter:<deployment id>:bus]
    #[arg(long, env = "NATTER_BUS_CHANNEL")]
    pub bus_channel: Option<String>,
    /// Start on a PostgreSQL server whose `synchronous_commit` or `fsync` is off, which can lose acknowledged messages in a crash; without it natter refuses to start there [default: false]
    #[arg(long, env = "NATTER_POSTGRES_ALLOW_UNSAFE_COMMIT", num_args = 0..=1, default_missing_value = "true")]
    pub postgres_allow_unsafe_commit: Option<bool>,
    /// Connections this node keeps to PostgreSQL at most; every node of a deployment together must stay under the server's `max_connections` [default: 16]
    #[arg(long, env = "NATTER_POSTGRES_MAX_CONNECTIONS")]
    pub postgres_max_connections: Option<usize>,
    /// A new login ends the user's other sessions; their polls get `session_replaced` [default: false]
    #[arg(long, env = "NATTER_SINGLE_SESSION", num_args = 0..=1, default_missing_value = "true")]
    pub single_session: Option<bool>,
    /// Longest message in characters [default: 4000]
    #[arg(long, env = "NATTER_MAX_MESSAGE_CHARS")]
    pub max_message_chars: Option<usize>,
    /// How long after sending a message its sender may still edit it, in seconds; 0 means no limit [default: 0]
    #[arg(long, env = "NATTER_EDIT_WINDOW_SECS")]
    pub edit_window_secs: Option<u64>,
    /// Poll timeout when a client names none, in seconds [default: 30]
    #[arg(long, env = "NATTER_POLL_TIMEOUT_SECS")]
    pub poll_timeout_secs: Option<u64>,
    /// Longest poll timeout a client may ask for, in seconds; keep it under your proxies' idle limit [default: 60]
    #[arg(long, env = "NATTER_MAX_POLL_TIMEOUT_SECS")]
    pub max_poll_timeout_secs: Option<u64>,
    /// Seconds a user stays online after their last poll ended [default: 45]
    #[arg(long, env = "NATTER_PRESENCE_GRACE_SECS")]
    pub presence_grace_secs: Option<u64>,
    /// Open polls allowed per user (tabs, devices) [default: 8]
    #[arg(long, env = "NATTER_MAX_POLLS_PER_USER")]
    pub max_polls_per_user: Option<usize>,
    /// Recent events kept in memory per room for waiting polls [default: 256]
    #[arg(long, env = "NATTER_ROOM_CACHE_EVENTS")]
    pub room_cache_events: Option<usize>,
    /// Rooms with more members are big: presence and typing in them reach only the members looking at them [default: 200]
    #[arg(long, env = "NATTER_BIG_ROOM_MEMBERS")]
    pub big_room_members: Option<usize>,
    /// How long a login session lasts, in hours [default: 720]
    #[arg(long, env = "NATTER_SESSION_TTL_HOURS")]
    pub session_ttl_hours: Option<u64>,
    /// Seconds a client may take to send a request's headers, which is also how long an idle keep-alive connection is kept [default: 20]
    #[arg(long, env = "NATTER_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Largest request body in bytes [default: 65536]
    #[arg(long, env = "NATTER_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds to wait for open requests at shutdown [default: 10]
    #[arg(long, env = "NATTER_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Log filter, e.g. `info` or `natter=debug` [default: info]
    #[arg(long, env = "NATTER_LOG")]
    pub log: Option<String>,
    /// Keys for the server-to-server admin API, comma-separated (at least 32 characters each)
    #[arg(long, env = "NATTER_ADMIN_KEYS", value_delimiter = ',')]
    pub admin_keys: Option<Vec<Secret>>,
    /// Seconds a client may take to send a request's body once its headers are in [default: 10]
    #[arg(long, env = "NATTER_BODY_READ_TIMEOUT_SECS")]
    pub body_read_timeout_secs: Option<u64>,
    /// Open connections allowed from one source address (an IPv6 /64); 0 for no cap. Trusted proxies are not capped [default: 256]
    #[arg(long, env = "NATTER_MAX_CONNECTIONS_PER_SOURCE")]
    pub max_connections_per_source: Option<usize>,
    /// Open connections allowed in all; past it new clients get `503 server_full` [default: the open-files limit less a reserve]
    #[arg(long, env = "NATTER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Proxies whose X-Forwarded-For names the client: addresses or blocks, comma-separated, or `none` [default: 127.0.0.0/8,::1]
    #[arg(long, env = "NATTER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Who may create an account: `open`, `invite` (codes from the admin API), `sites` (host sites' users only) or `closed` [default: open]
    #[arg(long, env = "NATTER_REGISTRATION")]
    pub registration: Option<RegistrationMode>,
    /// One community: users of every host site and local users may find and reach each other (by default each site's users, and local users, are kept apart) [default: false]
    #[arg(long, env = "NATTER_SHARED_COMMUNITY", num_args = 0..=1, default_missing_value = "true")]
    pub shared_community: Option<bool>,
    /// In a direct conversation, each person sees how far the other has read ("Seen") [default: true]
    #[arg(long, env = "NATTER_READ_RECEIPTS", value_parser = clap::builder::BoolishValueParser::new())]
    pub read_receipts: Option<bool>,
    /// Users may find people of their community by name to start a direct conversation [default: true]
    #[arg(long, env = "NATTER_PEOPLE_SEARCH", value_parser = clap::builder::BoolishValueParser::new())]
    pub people_search: Option<bool>,
    /// Address to serve Prometheus metrics on (`/metrics`, no token); keep it private [default: not served]
    #[arg(long, env = "NATTER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token for `/metrics` on the main listener (at least 32 characters) [default: not served there]
    #[arg(long, env = "NATTER_METRICS_TOKEN")]
    pub metrics_token: Option<Secret>,
    /// Rate limits on or off; off is only for load tests on a closed machine [default: on]
    #[arg(long, env = "NATTER_RATE_LIMITS", value_parser = clap::builder::BoolishValueParser::new())]
    pub rate_limits: Option<bool>,
    /// Password logins per source, e.g. `60/m burst 60`, or `off` [default: 60/m burst 60]
    #[arg(long, env = "NATTER_LIMIT_LOGIN_PER_SOURCE")]
    pub limit_login_per_source: Option<LimitSetting>,
    /// Registrations per source [default: 30/h burst 30]
    #[arg(long, env = "NATTER_LIMIT_REGISTER_PER_SOURCE")]
    pub limit_register_per_source: Option<LimitSetting>,
    /// Site-token sign-ins per source [default: 120/m burst 120]
    #[arg(long, env = "NATTER_LIMIT_SITE_SIGN_IN_PER_SOURCE")]
    pub limit_site_sign_in_per_source: Option<LimitSetting>,
    /// Messages sent per user [default: 5/s burst 30]
    #[arg(long, env = "NATTER_LIMIT_SENDS_PER_USER")]
    pub limit_sends_per_user: Option<LimitSetting>,
    /// Group rooms created per user [default: 20/h burst 10]
    #[arg(long, env = "NATTER_LIMIT_ROOMS_PER_USER")]
    pub limit_rooms_per_user: Option<LimitSetting>,
    /// Direct conversations opened per user [default: 30/m burst 30]
    #[arg(long, env = "NATTER_LIMIT_DIRECT_PER_USER")]
    pub limit_direct_per_user: Option<LimitSetting>,
    /// History pages read per user [default: 10/s burst 60]
    #[arg(long, env = "NATTER_LIMIT_HISTORY_PER_USER")]
    pub limit_history_per_user: Option<LimitSetting>,
    /// People added to rooms per user [default: 60/m burst 60]
    #[arg(long, env = "NATTER_LIMIT_INVITES_PER_USER")]
    pub limit_invites_per_user: Option<LimitSetting>,
    /// Password changes and self-deactivations per user, each of which checks the password [default: 10/h burst 5]
    #[arg(long, env = "NATTER_LIMIT_PASSWORD_CHECKS_PER_USER")]
    pub limit_password_checks_per_user: Option<LimitSetting>,
    /// Joins, leaves and room changes per user [default: 60/m burst 30]
    #[arg(long, env = "NATTER_LIMIT_ROOM_CHANGES_PER_USER")]
    pub limit_room_changes_per_user: Option<LimitSetting>,
    /// Read-marker moves per user [default: 10/s burst 60]
    #[arg(long, env = "NATTER_LIMIT_READ_MARKERS_PER_USER")]
    pub limit_read_markers_per_user: Option<LimitSetting>,
    /// Typing notices per user [default: 2/s burst 20]
    #[arg(long, env = "NATTER_LIMIT_TYPING_PER_USER")]
    pub limit_typing_per_user: Option<LimitSetting>,
    /// People searches per user [default: 5/s burst 30]
    #[arg(long, env = "NATTER_LIMIT_PEOPLE_SEARCHES_PER_USER")]
    pub limit_people_searches_per_user: Option<LimitSetting>,
    /// Wrong passwords in a row an account takes before each further attempt must wait (1 s, doubling) [default: 5]
    #[arg(long, env = "NATTER_LOGIN_FREE_FAILURES")]
    pub login_free_failures: Option<u32>,
    /// Longest wait between login attempts on one account after wrong passwords, in seconds [default: 900]
    #[arg(long, env = "NATTER_LOGIN_MAX_DELAY_SECS")]
    pub login_max_delay_secs: Option<u64>,
    /// Host sites whose signed tokens sign their users in: `[[sites]]` in natter.toml only (name the file with --config or NATTER_CONFIG)
    #[arg(skip)]
    pub sites: Option<Vec<SiteSettings>>,
}

/// One rate limit as configured: a rate (`5/s burst 30`) or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSetting(pub Option<RateSpec>);

impl std::str::FromStr for LimitSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<LimitSetting, String> {
        if s.trim() == "off" {
            return Ok(LimitSetting(None));
        }
        s.parse().map(|spec| LimitSetting(Some(spec)))
    }
}

impl<'de> Deserialize<'de> for LimitSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LimitSetting, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One host site, as configured: how its tokens are checked and which
/// origins may embed natter.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// Namespace of the site's users: `a-z 0-9 _ -`, 1–32 characters.
    pub id: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The `aud` its tokens carry [default: natter].
    pub audience: Option<String>,
    /// `HS256`, `RS256` or `EdDSA`.
    pub algorithm: String,
    /// The shared secret, for HS256 (at least 32 bytes).
    pub secret: Option<String>,
    /// The site's public key in PEM, for RS256 and EdDSA.
    pub public_key: Option<String>,
    /// Origins (scheme://host[:port]) whose pages may embed natter and call its API.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Longest lifetime (exp - iat) accepted, in seconds [default: 300].
    pub max_token_lifetime_secs: Option<u64>,
    /// Clock difference tolerated, in seconds [default: 30].
    pub clock_skew_secs: Option<u64>,
    /// Refuse tokens without a `jti`, so no token can be replayed [default: false].
    pub require_jti: Option<bool>,
    /// How long a session made from this site's token lasts, in seconds; the widget signs in again before it ends [default: 14400].
    pub session_ttl_secs: Option<u64>,
}

impl std::fmt::Debug for SiteSettings {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteSettings")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Fields set in `over` replace those in `self`.
    pub fn overlay(self, over: Settings) -> Settings {
        Settings {
            listen: over.listen.or(self.listen),
            data_dir: over.data_dir.or(self.data_dir),
            store: over.store.or(self.store),
            bus: over.bus.or(self.bus),
            bus_ca_file: over.bus_ca_file.or(self.bus_ca_file),
            bus_cert_file: over.bus_cert_file.or(self.bus_cert_file),
            bus_key_file: over.bus_key_file.or(self.bus_key_file),
            bus_channel: over.bus_channel.or(self.bus_channel),
            postgres_allow_unsafe_commit: over
                .postgres_allow_unsafe_commit
                .or(self.postgres_allow_unsafe_commit),
            postgres_max_connections: over
                .postgres_max_connections
                .or(self.postgres_max_connections),
            single_session: over.single_session.or(self.single_session),
            max_message_chars: over.max_message_chars.or(self.max_message_chars),
            edit_window_secs: over.edit_window_secs.or(self.edit_window_secs),
            poll_timeout_secs: over.poll_timeout_secs.or(self.poll_timeout_secs),
            max_poll_timeout_secs: over.max_poll_timeout_secs.or(self.max_poll_timeout_secs),
            presence_grace_secs: over.presence_grace_secs.or(self.presence_grace_secs),
            max_polls_per_user: over.max_polls_per_user.or(self.max_polls_per_user),
            room_cache_events: over.room_cache_events.or(self.room_cache_events),
            big_room_members: over.big_room_members.or(self.big_room_members),
            session_ttl_hours: over.session_ttl_hours.or(self.session_ttl_hours),
            header_read_timeout_secs: over
                .header_read_timeout_secs
                .or(self.header_read_timeout_secs),
            max_body_bytes: over.max_body_bytes.or(self.max_body_bytes),
            shutdown_grace_secs: over.shutdown_grace_secs.or(self.shutdown_grace_secs),
            log: over.log.or(self.log),
            admin_keys: over.admin_keys.or(self.admin_keys),
            body_read_timeout_secs: over.body_read_timeout_secs.or(self.body_read_timeout_secs),
            max_connections_per_source: over
                .max_connections_per_source
                .or(self.max_connections_per_source),
            max_connections: over.max_connections.or(self.max_connections),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
            rate_limits: over.rate_limits.or(self.rate_limits),
            registration: over.registration.or(self.registration),
            metrics_listen: over.metrics_listen.or(self.metrics_listen),
            shared_community: over.shared_community.or(self.shared_community),
            read_receipts: over.read_receipts.or(self.read_receipts),
            people_search: over.people_search.or(self.people_search),
            metrics_token: over.metrics_token.or(self.metrics_token),
            limit_login_per_source: over.limit_login_per_source.or(self.limit_login_per_source),
            limit_register_per_source: over
                .limit_register_per_source
                .or(self.limit_register_per_source),
            limit_site_sign_in_per_source: over
                .limit_site_sign_in_per_source
                .or(self.limit_site_sign_in_per_source),
            limit_sends_per_user: over.limit_sends_per_user.or(self.limit_sends_per_user),
            limit_rooms_per_user: over.limit_rooms_per_user.or(self.limit_rooms_per_user),
            limit_direct_per_user: over.limit_direct_per_user.or(self.limit_direct_per_user),
            limit_history_per_user: over.limit_history_per_user.or(self.limit_history_per_user),
            limit_invites_per_user: over.limit_invites_per_user.or(self.limit_invites_per_user),
            limit_password_checks_per_user: over
                .limit_password_checks_per_user
                .or(self.limit_password_checks_per_user),
            limit_room_changes_per_user: over
                .limit_room_changes_per_user
                .or(self.limit_room_changes_per_user),
            limit_read_markers_per_user: over
                .limit_read_markers_per_user
                .or(self.limit_read_markers_per_user),
            limit_typing_per_user: over.limit_typing_per_user.or(self.limit_typing_per_user),
            limit_people_searches_per_user: over
                .limit_people_searches_per_user
                .or(self.limit_people_searches_per_user),
            login_free_failures: over.login_free_failures.or(self.login_free_failures),
            login_max_delay_secs: over.login_max_delay_secs.or(self.login_max_delay_secs),
            sites: over.sites.or(self.sites),
        }
    }

    /// Reads a `natter.toml`.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// The resolved configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// The SQLite data folder (also what `backup` copies); unused on
    /// PostgreSQL.
    pub data_dir: PathBuf,
    /// The store the node runs on: SQLite in `data_dir`, or PostgreSQL.
    pub store: StoreChoice,
    /// The Redis URL of a cluster's bus; `None`: one node alone.
    pub bus: Option<Secret>,
    /// What a `rediss://` bus trusts and presents.
    pub bus_tls: BusTls,
    /// The bus's channel, if not the deployment's default.
    pub bus_channel: Option<String>,
    pub chat: ChatConfig,
    pub hub: HubConfig,
    pub header_read_timeout: Duration,
    pub max_body_bytes: usize,
    pub body_read_timeout: Duration,
    /// 0: no cap.
    pub max_connections_per_source: usize,
    /// `None`: derived from the open-files limit at start.
    pub max_connections: Option<usize>,
    pub trusted_proxies: TrustedProxies,
    pub metrics_listen: Option<SocketAddr>,
    pub metrics_token: Option<Secret>,
    pub shutdown_grace: Duration,
    pub log: String,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_settings(Settings::default()).expect("defaults are valid")
    }
}

impl Config {
    /// Fills unset fields with defaults and checks the values.
    pub fn from_settings(s: Settings) -> anyhow::Result<Config> {
        let chat_defaults = ChatConfig::default();
        let hub_defaults = HubConfig::default();
        let secs = Duration::from_secs;
        let limits = rate_limits(&s);
        let mut store = StoreChoice::from_setting(
            s.store.as_ref().map(Secret::as_str),
            s.postgres_allow_unsafe_commit.unwrap_or(false),
        )?;
        if let Some(most) = s.postgres_max_connections {
            anyhow::ensure!(
                (1..=1000).contains(&most),
                "postgres_max_connections must be 1 to 1000, not {most}"
            );
            if let StoreChoice::Postgres(options) = &mut store {
                options.max_connections = most;
            }
        }
        let bus = match s.bus {
            Some(url) if url.as_str().trim().is_empty() => None,
            Some(url) => {
                anyhow::ensure!(
                    url.as_str().starts_with("redis://") || url.as_str().starts_with("rediss://"),
                    "bus: use a redis:// URL (rediss:// for TLS), or leave it unset for one node alone"
                );
                anyhow::ensure!(
                    matches!(store, StoreChoice::Postgres(_)),
                    "bus: the nodes of a cluster share a PostgreSQL store; SQLite serves one node alone"
                );
                Some(url)
            }
            None => None,
        };
        let bus_tls = BusTls {
            ca_file: s.bus_ca_file,
            cert_file: s.bus_cert_file,
            key_file: s.bus_key_file,
        };
        anyhow::ensure!(
            bus_tls == BusTls::default()
                || bus
                    .as_ref()
                    .is_some_and(|b| b.as_str().starts_with("rediss://")),
            "bus_ca_file, bus_cert_file and bus_key_file: only a rediss:// (TLS) bus uses them"
        );
        anyhow::ensure!(
            bus_tls.cert_file.is_some() == bus_tls.key_file.is_some(),
            "bus_cert_file and bus_key_file go together"
        );
        if let Some(channel) = &s.bus_channel {
            anyhow::ensure!(
                (1..=200).contains(&channel.len()) && !channel.chars().any(char::is_control),
                "bus_channel: 1-200 characters, none of them control characters"
            );
        }
        let config = Config {
            bus,
            bus_tls,
            bus_channel: s.bus_channel,
            listen: s
                .listen
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            data_dir: s.data_dir.unwrap_or_else(|| PathBuf::from("data")),
            store,
            chat: ChatConfig {
                single_session: s.single_session.unwrap_or(chat_defaults.single_session),
                max_message_chars: s
                    .max_message_chars
                    .unwrap_or(chat_defaults.max_message_chars),
                edit_window: match s.edit_window_secs {
                    None => chat_defaults.edit_window,
                    Some(0) => None,
                    Some(n) => Some(secs(n)),
                },
                session_ttl: s
                    .session_ttl_hours
                    .map_or(chat_defaults.session_ttl, |h| secs(h * 3600)),
                default_poll_timeout: s
                    .poll_timeout_secs
                    .map_or(chat_defaults.default_poll_timeout, secs),
                max_poll_timeout: s
                    .max_poll_timeout_secs
                    .map_or(chat_defaults.max_poll_timeout, secs),
                sites: s
                    .sites
                    .unwrap_or_default()
                    .into_iter()
                    .map(|site| Site::from_settings(site).map(Arc::new))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                admin_keys: Secrets(
                    s.admin_keys
                        .iter()
                        .flatten()
                        .map(|k| k.as_str().to_owned())
                        .collect(),
                ),
                limits,
                registration: s.registration.unwrap_or_default(),
                shared_community: s.shared_community.unwrap_or(false),
                read_receipts: s.read_receipts.unwrap_or(true),
                people_search: s.people_search.unwrap_or(true),
                session_recheck: chat_defaults.session_recheck,
            },
            hub: HubConfig {
                presence_grace: s
                    .presence_grace_secs
                    .map_or(hub_defaults.presence_grace, secs),
                max_polls_per_user: s
                    .max_polls_per_user
                    .unwrap_or(hub_defaults.max_polls_per_user),
                room_cache_events: s
                    .room_cache_events
                    .unwrap_or(hub_defaults.room_cache_events),
                big_room_members: s.big_room_members.unwrap_or(hub_defaults.big_room_members),
                ..hub_defaults
            },
            header_read_timeout: secs(s.header_read_timeout_secs.unwrap_or(20)),
            max_body_bytes: s.max_body_bytes.unwrap_or(64 * 1024),
            body_read_timeout: secs(s.body_read_timeout_secs.unwrap_or(10)),
            max_connections_per_source: s.max_connections_per_source.unwrap_or(256),
            max_connections: s.max_connections,
            metrics_listen: s.metrics_listen,
            metrics_token: s.metrics_token.clone(),
            trusted_proxies: match &s.trusted_proxies {
                None => TrustedProxies::loopback(),
                Some(list) => trusted_proxies(list)?,
            },
            shutdown_grace: secs(s.shutdown_grace_secs.unwrap_or(10)),
            log: s.log.unwrap_or_else(|| "info".into()),
        };
        anyhow::ensure!(
            config.chat.max_message_chars >= 1,
            "max_message_chars must be at least 1"
        );
        anyhow::ensure!(
            config.chat.default_poll_timeout <= config.chat.max_poll_timeout,
            "poll_timeout_secs must not exceed max_poll_timeout_secs"
        );
        anyhow::ensure!(
            config.hub.max_polls_per_user >= 1,
            "max_polls_per_user must be at least 1"
        );
        anyhow::ensure!(
            config.hub.room_cache_events >= 1,
            "room_cache_events must be at least 1"
        );
        anyhow::ensure!(
            config.header_read_timeout > Duration::ZERO,
            "header_read_timeout_secs must be at least 1"
        );
        anyhow::ensure!(
            config.body_read_timeout > Duration::ZERO,
            "body_read_timeout_secs must be at least 1"
        );
        anyhow::ensure!(
            config
                .metrics_token
                .as_ref()
                .is_none_or(|t| t.as_str().len() >= 32),
            "metrics_token must be at least 32 characters"
        );
        anyhow::ensure!(
            config.max_connections != Some(0),
            "max_connections must be at least 1"
        );
        anyhow::ensure!(
            config.chat.admin_keys.0.iter().all(|k| k.len() >= 32),
            "admin keys must be at least 32 characters"
        );
        for (i, a) in config.chat.sites.iter().enumerate() {
            for b in &config.chat.sites[i + 1..] {
                anyhow::ensure!(a.id != b.id, "two [[sites]] share the id {:?}", a.id);
                anyhow::ensure!(
                    a.issuer != b.issuer,
                    "two [[sites]] share the issuer {:?}",
                    a.issuer
                );
            }
        }
        Ok(config)
    }
}

/// The rate limits: defaults, each replaced where set, all off when
/// `rate_limits` is off.
fn rate_limits(s: &Settings) -> RateLimits {
    if s.rate_limits == Some(false) {
        return RateLimits::off();
    }
    let d = RateLimits::default();
    let pick = |set: Option<LimitSetting>, default| set.map_or(default, |LimitSetting(l)| l);
    RateLimits {
        login_per_source: pick(s.limit_login_per_source, d.login_per_source),
        register_per_source: pick(s.limit_register_per_source, d.register_per_source),
        site_sign_in_per_source: pick(s.limit_site_sign_in_per_source, d.site_sign_in_per_source),
        sends_per_user: pick(s.limit_sends_per_user, d.sends_per_user),
        rooms_per_user: pick(s.limit_rooms_per_user, d.rooms_per_user),
        direct_per_user: pick(s.limit_direct_per_user, d.direct_per_user),
        history_per_user: pick(s.limit_history_per_user, d.history_per_user),
        invites_per_user: pick(s.limit_invites_per_user, d.invites_per_user),
        password_checks_per_user: pick(
            s.limit_password_checks_per_user,
            d.password_checks_per_user,
        ),
        room_changes_per_user: pick(s.limit_room_changes_per_user, d.room_changes_per_user),
        read_markers_per_user: pick(s.limit_read_markers_per_user, d.read_markers_per_user),
        typing_per_user: pick(s.limit_typing_per_user, d.typing_per_user),
        people_searches_per_user: pick(
            s.limit_people_searches_per_user,
            d.people_searches_per_user,
        ),
        login_free_failures: s.login_free_failures.unwrap_or(d.login_free_failures),
        login_max_delay: s
            .login_max_delay_secs
            .map_or(d.login_max_delay, Duration::from_secs),
    }
}

/// `none`, or a list of addresses and blocks.
fn trusted_proxies(list: &[String]) -> anyhow::Result<TrustedProxies> {
    let entries: Vec<&str> = list
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if entries == ["none"] {
        return Ok(TrustedProxies(Vec::new()));
    }
    entries
        .iter()
        .map(|e| {
            e.parse()
                .map_err(|m| anyhow::anyhow!("trusted_proxies: {m}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(TrustedProxies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let settings: Settings = toml::from_str(
            "admin_keys = [\"admin-key-0123456789-0123456789-xyz\"]\nmetrics_token = \"metrics-token-0123456789-0123456789\"\nstore = \"postgres://natter:pw-0123456789@db:5432/natter\"\n",
        )
        .unwrap();
        let config = Config::from_settings(settings.clone()).unwrap();
        for printed in [format!("{settings:?}"), format!("{config:?}")] {
            assert!(!printed.contains("0123456789"), "{printed}");
        }
    }

    #[test]
    fn file_then_flags_then_defaults() {
        let file: Settings = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nsingle_session = true\nmax_message_chars = 500\n",
        )
        .unwrap();
        let flags = Settings {
            max_message_chars: Some(100),
            ..Settings::default()
        };
        let config = Config::from_settings(file.overlay(flags)).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert!(config.chat.single_session);
        assert_eq!(
            config.chat.max_message_chars, 100,
            "flags win over the file"
        );
        assert_eq!(
            config.data_dir,
            PathBuf::from("data"),
            "defaults fill the rest"
        );
        assert_eq!(config.chat.default_poll_timeout, Duration::from_secs(30));
        assert!(
            matches!(config.store, StoreChoice::Sqlite),
            "SQLite in the data folder by default"
        );
    }

    #[test]
    fn a_postgres_url_picks_postgres_and_anything_else_is_refused() {
        let file: Settings = toml::from_str("store = \"postgres://natter@db/natter\"\n").unwrap();
        let config = Config::from_settings(file).unwrap();
        assert!(
            matches!(&config.store, StoreChoice::Postgres(o) if o.url == "postgres://natter@db/natter" && !o.allow_unsafe_commit && o.max_connections == 16)
        );
        let sized: Settings = toml::from_str(
            "store = \"postgres://natter@db/natter\"\npostgres_max_connections = 12\n",
        )
        .unwrap();
        assert!(matches!(
            &Config::from_settings(sized).unwrap().store,
            StoreChoice::Postgres(o) if o.max_connections == 12
        ));
        for most in [0, 1001] {
            let bad = Settings {
                store: Some("postgres://natter@db/natter".into()),
                postgres_max_connections: Some(most),
                ..Settings::default()
            };
            assert!(Config::from_settings(bad).is_err(), "{most} connections");
        }
        let typo = Settings {
            store: Some("postgress://db".into()),
            ..Settings::default()
        };
        assert!(Config::from_settings(typo).is_err());
    }

    #[test]
    fn a_tls_bus_may_name_its_roots_and_certificate_and_a_plain_one_may_not() {
        let bus = |url: &str, files: [Option<&str>; 3]| Settings {
            store: Some("postgres://natter@db/natter?sslmode=verify-full".into()),
            bus: Some(url.into()),
            bus_ca_file: files[0].map(PathBuf::from),
            bus_cert_file: files[1].map(PathBuf::from),
            bus_key_file: files[2].map(PathBuf::from),
            ..Settings::default()
        };
        let all = [Some("/ca.pem"), Some("/natter.pem"), Some("/natter.key")];
        let tls = Config::from_settings(bus("rediss://redis:6380", all)).unwrap();
        assert_eq!(
            tls.bus_tls,
            BusTls {
                ca_file: Some("/ca.pem".into()),
                cert_file: Some("/natter.pem".into()),
                key_file: Some("/natter.key".into()),
            }
        );
        for fine in [
            bus("rediss://redis:6380", [None; 3]),
            bus("rediss://redis:6380", [Some("/ca.pem"), None, None]),
            bus(
                "rediss://redis:6380",
                [None, Some("/c.pem"), Some("/c.key")],
            ),
            bus("redis://redis:6379", [None; 3]),
        ] {
            assert!(Config::from_settings(fine).is_ok());
        }
        for refused in [
            bus("redis://redis:6379", [Some("/ca.pem"), None, None]),
            bus("redis://redis:6379", [None, Some("/c.pem"), Some("/c.key")]),
            bus("rediss://redis:6380", [None, Some("/c.pem"), None]),
            bus("rediss://redis:6380", [None, None, Some("/c.key")]),
            bus("http://redis:6379", [None; 3]),
            Settings {
                bus_ca_file: Some("/ca.pem".into()),
                ..Settings::default()
            },
        ] {
            assert!(Config::from_settings(refused).is_err());
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(toml::from_str::<Settings>("no_such_setting = 1").is_err());
        let zero = Settings {
            max_polls_per_user: Some(0),
            ..Settings::default()
        };
        assert!(Config::from_settings(zero).is_err());
        let inverted = Settings {
            poll_timeout_secs: Some(90),
            max_poll_timeout_secs: Some(60),
            ..Settings::default()
        };
        assert!(Config::from_settings(inverted).is_err());
    }
}
