//! Rate limits: how often one user or one network source may do the
//! things that cost the server (or other people) something — log in,
//! register, sign in with a site token, send, create rooms, open direct
//! conversations, page history.
//!
//! Each limit is a burst plus a sustained rate (GCRA, from `governor`),
//! counted per key in memory on this node and, in a cluster, also in the
//! counters all nodes share (`bus::SharedRates`, in Redis): a call this
//! node's own count refuses never reaches them, one it lets pass is
//! counted there too, and if they do not answer the node's own count
//! decides. A refused call gets
//! [`ChatError::RateLimited`] with the time after which it would pass,
//! and has changed nothing. Logins have a second, per-account rule: after
//! a few wrong passwords in a row each further attempt waits twice as
//! long as the one before, up to a ceiling. It never ends or blocks the
//! owner's existing sessions, so a stranger hammering an account cannot
//! lock its owner out of conversations already open.

use std::fmt;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::login_delay::{LoginAttempt, LoginDelays};
use crate::bus::SharedRates;
use crate::error::{ChatError, ChatResult};
use crate::metrics::Metrics;
use crate::model::UserId;
use crate::source::Source;

/// A rate: `count` per `per`, with bursts of up to `burst` at once.
/// Written `5/s`, `30/m burst 10`, `20/h`; without a burst, the burst is
/// the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// Calls allowed per `per`, sustained.
    pub count: u32,
    /// The period of the sustained rate: a second, a minute or an hour.
    pub per: Duration,
    /// Calls allowed at once after a quiet spell.
    pub burst: u32,
}

impl RateSpec {
    const fn new(count: u32, per_secs: u64, burst: u32) -> RateSpec {
        RateSpec {
            count,
            per: Duration::from_secs(per_secs),
            burst,
        }
    }

    /// The sustained spacing of calls.
    fn every(&self) -> Duration {
        self.per / self.count.max(1)
    }

    fn quota(&self) -> Quota {
        let period = self.per / self.count.max(1);
        let burst = NonZeroU32::new(self.burst.max(1)).expect("at least 1");
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(burst)
    }
}

impl FromStr for RateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<RateSpec, String> {
        let bad = || format!("{s:?} is not a rate like \"5/s\", \"30/m burst 10\" or \"20/h\"");
        let mut words = s.split_whitespace();
        let rate = words.next().ok_or_else(bad)?;
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        let per = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, None, None) => count,
            (Some("burst"), Some(b), None) => b.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if count == 0 || burst == 0 {
            return Err(format!(
                "{s:?}: a rate needs a count and burst of at least 1"
            ));
        }
        Ok(RateSpec::new(count, per, burst))
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit} burst {}", self.count, self.burst)
    }
}

impl<'de> serde::Deserialize<'de> for RateSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RateSpec, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What a limit is counted for; also its name in metrics and docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Password logins, per source.
    Login,
    /// Account registrations, per source.
    Register,
    /// Site-token sign-ins, per source.
    SiteSignIn,
    /// Messages sent, per user.
    Send,
    /// Group rooms created, per user.
    CreateRoom,
    /// Direct conversations opened, per user.
    OpenDirect,
    /// History pages read, per user.
    History,
    /// People added to rooms, per user.
    Invite,
    /// Password changes and deactivations (each checks the password), per user.
    PasswordCheck,
    /// Joins, leaves and room changes, per user.
    RoomChange,
    /// Read-marker moves, per user.
    ReadMarker,
    /// Typing notices, per user.
    Typing,
    /// People searches, per user.
    PeopleSearch,
    /// Wrong passwords for one account (the growing delay).
    LoginFailures,
}

impl Limit {
    /// The limit's stable name.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Login => "login",
            Limit::Register => "register",
            Limit::SiteSignIn => "site_sign_in",
            Limit::Send => "send",
            Limit::CreateRoom => "create_room",
            Limit::OpenDirect => "open_direct",
            Limit::History => "history",
            Limit::Invite => "invite",
            Limit::PasswordCheck => "password_check",
            Limit::RoomChange => "room_change",
            Limit::ReadMarker => "read_marker",
            Limit::Typing => "typing",
            Limit::PeopleSearch => "people_search",
            Limit::LoginFailures => "login_failures",
        }
    }
}

/// The configured limits; `None` turns one off.
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub login_per_source: Option<RateSpec>,
    pub register_per_source: Option<RateSpec>,
    pub site_sign_in_per_source: Option<RateSpec>,
    pub sends_per_user: Option<RateSpec>,
    pub rooms_per_user: Option<RateSpec>,
    pub direct_per_user: Option<RateSpec>,
    pub history_per_user: Option<RateSpec>,
    pub invites_per_user: Option<RateSpec>,
    pub password_checks_per_user: Option<RateSpec>,
    pub room_changes_per_user: Option<RateSpec>,
    pub read_markers_per_user: Option<RateSpec>,
    pub typing_per_user: Option<RateSpec>,
    pub people_searches_per_user: Option<RateSpec>,
    /// Wrong passwords in a row an account takes before the delay starts.
    pub login_free_failures: u32,
    /// The longest delay between login attempts on one account.
    pub login_max_delay: Duration,
}

impl Default for RateLimits {
    /// Generous enough for a classroom behind one NAT address, tight
    /// enough that one host cannot flood.
    fn default() -> Self {
        RateLimits {
            login_per_source: Some(RateSpec::new(60, 60, 60)),
            register_per_source: Some(RateSpec::new(30, 3600, 30)),
            site_sign_in_per_source: Some(RateSpec::new(120, 60, 120)),
            sends_per_user: Some(RateSpec::new(5, 1, 30)),
            rooms_per_user: Some(RateSpec::new(20, 3600, 10)),
            direct_per_user: Some(RateSpec::new(30, 60, 30)),
            history_per_user: Some(RateSpec::new(10, 1, 60)),
            invites_per_user: Some(RateSpec::new(60, 60, 60)),
            password_checks_per_user: Some(RateSpec::new(10, 3600, 5)),
            room_changes_per_user: Some(RateSpec::new(60, 60, 30)),
            read_markers_per_user: Some(RateSpec::new(10, 1, 60)),
            // A client sends one per room every 3 s while its user types.
            typing_per_user: Some(RateSpec::new(2, 1, 20)),
            // A search per keystroke of a name.
            people_searches_per_user: Some(RateSpec::new(5, 1, 30)),
            login_free_failures: 5,
            login_max_delay: Duration::from_secs(15 * 60),
        }
    }
}

impl RateLimits {
    /// Every limit off: for load tests on a closed machine.
    pub fn off() -> RateLimits {
        RateLimits {
            login_per_source: None,
            register_per_source: None,
            site_sign_in_per_source: None,
            sends_per_user: None,
            rooms_per_user: None,
            direct_per_user: None,
            history_per_user: None,
            invites_per_user: None,
            password_checks_per_user: None,
            room_changes_per_user: None,
            read_markers_per_user: None,
            typing_per_user: None,
            people_searches_per_user: None,
            login_free_failures: u32::MAX,
            login_max_delay: Duration::ZERO,
        }
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// One limit's counters.
struct Counter<K: Hash + Eq + Clone> {
    spec: RateSpec,
    limiter: Keyed<K>,
    /// Checks since stale keys were last dropped.
    checks: AtomicU32,
}

/// Checks between sweeps of keys whose buckets are full again.
const SWEEP_EVERY: u32 = 4096;

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(spec: RateSpec) -> Counter<K> {
        Counter {
            spec,
            limiter: RateLimiter::keyed(spec.quota()),
            checks: AtomicU32::new(0),
        }
    }

    fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The node's rate-limit counters.
pub(super) struct Limiters {
    login: Option<Counter<Source>>,
    register: Option<Counter<Source>>,
    site_sign_in: Option<Counter<Source>>,
    sends: Option<Counter<UserId>>,
    rooms: Option<Counter<UserId>>,
    direct: Option<Counter<UserId>>,
    history: Option<Counter<UserId>>,
    invites: Option<Counter<UserId>>,
    password_checks: Option<Counter<UserId>>,
    room_changes: Option<Counter<UserId>>,
    read_markers: Option<Counter<UserId>>,
    typing: Option<Counter<UserId>>,
    people_searches: Option<Counter<UserId>>,
    login_delays: LoginDelays,
    metrics: Arc<Metrics>,
    /// The counters of the whole cluster, when this node is one.
    shared: Option<Arc<dyn SharedRates>>,
}

impl Limiters {
    pub(super) fn new(
        config: &RateLimits,
        metrics: Arc<Metrics>,
        shared: Option<Arc<dyn SharedRates>>,
    ) -> Limiters {
        Limiters {
            shared,
            login: config.login_per_source.map(Counter::new),
            register: config.register_per_source.map(Counter::new),
            site_sign_in: config.site_sign_in_per_source.map(Counter::new),
            sends: config.sends_per_user.map(Counter::new),
            rooms: config.rooms_per_user.map(Counter::new),
            direct: config.direct_per_user.map(Counter::new),
            history: config.history_per_user.map(Counter::new),
            invites: config.invites_per_user.map(Counter::new),
            password_checks: config.password_checks_per_user.map(Counter::new),
            room_changes: config.room_changes_per_user.map(Counter::new),
            read_markers: config.read_markers_per_user.map(Counter::new),
            typing: config.typing_per_user.map(Counter::new),
            people_searches: config.people_searches_per_user.map(Counter::new),
            login_delays: LoginDelays::new(config.login_free_failures, config.login_max_delay),
            metrics,
        }
    }

    /// The refusal for `limit`, counted.
    fn refuse(&self, limit: Limit, retry_after: Duration) -> ChatError {
        self.metrics.rate_limited(limit.name());
        ChatError::RateLimited { limit, retry_after }
    }

    /// Counts one call from `source`; refuses it past the limit.
    pub(super) async fn by_source(&self, limit: Limit, source: Source) -> ChatResult<()> {
        let counter = match limit {
            Limit::Login => &self.login,
            Limit::Register => &self.register,
            Limit::SiteSignIn => &self.site_sign_in,
            _ => unreachable!("{limit:?} is not counted per source"),
        };
        let Some(counter) = counter else {
            return Ok(());
        };
        counter
            .check(&source)
            .map_err(|wait| self.refuse(limit, wait))?;
        self.in_the_cluster(limit, counter.spec, &source.to_string())
            .await
    }

    /// Counts one call by `user`; refuses it past the limit.
    pub(super) async fn by_user(&self, limit: Limit, user: UserId) -> ChatResult<()> {
        let counter = match limit {
            Limit::Send => &self.sends,
            Limit::CreateRoom => &self.rooms,
            Limit::OpenDirect => &self.direct,
            Limit::History => &self.history,
            Limit::Invite => &self.invites,
            Limit::PasswordCheck => &self.password_checks,
            Limit::RoomChange => &self.room_changes,
            Limit::ReadMarker => &self.read_markers,
            Limit::Typing => &self.typing,
            Limit::PeopleSearch => &self.people_searches,
            _ => unreachable!("{limit:?} is not counted per user"),
        };
        let Some(counter) = counter else {
            return Ok(());
        };
        counter
            .check(&user)
            .map_err(|wait| self.refuse(limit, wait))?;
        self.in_the_cluster(limit, counter.spec, &user.0.to_string())
            .await
    }

    /// Counts a call this node let pass in the counters of the whole
    /// cluster, if there are any and they answer.
    async fn in_the_cluster(&self, limit: Limit, spec: RateSpec, key: &str) -> ChatResult<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let key = format!("{}:{key}", limit.name());
        match shared.take(&key, spec.every(), spec.burst).await {
            Some(Err(wait)) => Err(self.refuse(limit, wait)),
            Some(Ok(())) | None => Ok(()),
        }
    }

    /// Starts a password check on `account`, unless its delay after
    /// wrong passwords runs (`login_delay.rs`).
    pub(super) fn begin_login(&self, account: &str) -> ChatResult<LoginAttempt<'_>> {
        self.login_delays
            .begin(account)
            .map_err(|wait| self.refuse(Limit::LoginFailures, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        assert_eq!("5/s".parse::<RateSpec>().unwrap(), RateSpec::new(5, 1, 5));
        assert_eq!(
            "30/m burst 10".parse::<RateSpec>().unwrap(),
            RateSpec::new(30, 60, 10)
        );
        assert_eq!(
            "20/h".parse::<RateSpec>().unwrap().to_string(),
            "20/h burst 20"
        );
        for bad in [
            "",
            "5",
            "5/d",
            "0/s",
            "5/s burst",
            "5/s burst 0",
            "5/s limit 3",
            "x/s",
        ] {
            assert!(bad.parse::<RateSpec>().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_burst_then_the_sustained_rate() {
        let limits = Limiters::new(
            &RateLimits {
                sends_per_user: Some("1/h burst 3".parse().unwrap()),
                ..RateLimits::default()
            },
            Arc::default(),
            None,
        );
        for _ in 0..3 {
            limits.by_user(Limit::Send, UserId(1)).await.unwrap();
        }
        match limits.by_user(Limit::Send, UserId(1)).await {
            Err(ChatError::RateLimited { limit, retry_after }) => {
                assert_eq!(limit, Limit::Send);
                assert!(retry_after > Duration::from_secs(3000), "{retry_after:?}");
            }
            other => panic!("not limited: {other:?}"),
        }
        // Another user has their own bucket.
        limits.by_user(Limit::Send, UserId(2)).await.unwrap();
    }
}
