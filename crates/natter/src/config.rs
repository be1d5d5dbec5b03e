//! One configuration, from defaults, an optional `natter.toml`, environment
//! variables and flags (later ones win). `natter --help` lists every
//! setting with its variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use std::sync::Arc;

use crate::chat::{ChatConfig, Secrets, Site};
use crate::hub::HubConfig;

/// Settings as given; every field optional so sources can be layered.
#[derive(Args, Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "NATTER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder for the SQLite database, created if missing [default: data]
    #[arg(long, env = "NATTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A new login ends the user's other sessions; their polls get `session_replaced` [default: false]
    #[arg(long, env = "NATTER_SINGLE_SESSION", num_args = 0..=1, default_missing_value = "true")]
    pub single_session: Option<bool>,
    /// Longest message in characters [default: 4000]
    #[arg(long, env = "NATTER_MAX_MESSAGE_CHARS")]
    pub max_message_chars: Option<usize>,
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
    pub admin_keys: Option<Vec<String>>,
    /// Host sites whose signed tokens sign their users in (`[[sites]]` in natter.toml)
    #[arg(skip)]
    pub sites: Option<Vec<SiteSettings>>,
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
            single_session: over.single_session.or(self.single_session),
            max_message_chars: over.max_message_chars.or(self.max_message_chars),
            poll_timeout_secs: over.poll_timeout_secs.or(self.poll_timeout_secs),
            max_poll_timeout_secs: over.max_poll_timeout_secs.or(self.max_poll_timeout_secs),
            presence_grace_secs: over.presence_grace_secs.or(self.presence_grace_secs),
            max_polls_per_user: over.max_polls_per_user.or(self.max_polls_per_user),
            room_cache_events: over.room_cache_events.or(self.room_cache_events),
            session_ttl_hours: over.session_ttl_hours.or(self.session_ttl_hours),
            header_read_timeout_secs: over
                .header_read_timeout_secs
                .or(self.header_read_timeout_secs),
            max_body_bytes: over.max_body_bytes.or(self.max_body_bytes),
            shutdown_grace_secs: over.shutdown_grace_secs.or(self.shutdown_grace_secs),
            log: over.log.or(self.log),
            admin_keys: over.admin_keys.or(self.admin_keys),
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
    pub data_dir: PathBuf,
    pub chat: ChatConfig,
    pub hub: HubConfig,
    pub header_read_timeout: Duration,
    pub max_body_bytes: usize,
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
        let config = Config {
            listen: s
                .listen
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            data_dir: s.data_dir.unwrap_or_else(|| PathBuf::from("data")),
            chat: ChatConfig {
                single_session: s.single_session.unwrap_or(chat_defaults.single_session),
                max_message_chars: s
                    .max_message_chars
                    .unwrap_or(chat_defaults.max_message_chars),
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
                admin_keys: Secrets(s.admin_keys.unwrap_or_default()),
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
                ..hub_defaults
            },
            header_read_timeout: secs(s.header_read_timeout_secs.unwrap_or(20)),
            max_body_bytes: s.max_body_bytes.unwrap_or(64 * 1024),
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

#[cfg(test)]
mod tests {
    use super::*;

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
