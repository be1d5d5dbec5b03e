//! The node's Prometheus metrics: how many polls wait, how fast events
//! reach them, how fast sends are acknowledged and the store commits,
//! which errors clients get, what the rate limits refuse, and how many
//! connections are open.
//!
//! One [`Metrics`] is built per node and handed to the layers that count
//! (no global registry, so two servers in one test process keep their
//! own). It is served as text at `/metrics`, either on its own listen
//! address or behind a bearer token (docs/operations.md); with neither
//! configured it is not served at all.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

type Labels = [(&'static str, &'static str); 1];

/// Every metric natter keeps; cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    /// Event polls open now.
    pub polls_waiting: Gauge,
    /// Room events handed to polls.
    pub deliveries: Counter,
    /// From a send's arrival to a poll answering with it, per delivery.
    pub delivery_latency: Histogram,
    /// Messages stored (retries that stored nothing are not counted).
    pub sends: Counter,
    /// From a send's arrival to its acknowledgement.
    pub send_ack_latency: Histogram,
    /// A store write, queued to committed.
    pub store_commit_latency: Histogram,
    /// Error answers, by their API code.
    errors: Family<Labels, Counter>,
    /// Calls a rate limit refused, by limit.
    rate_limited: Family<Labels, Counter>,
    /// User feeds held in memory, as of the last eviction round.
    pub user_feeds: Gauge,
    /// Room feeds held in memory, as of the last eviction round.
    pub room_feeds: Gauge,
    /// Connections open now.
    pub connections_open: Gauge,
    /// Connections turned away at accept, by reason.
    connections_refused: Family<Labels, Counter>,
    /// Event polls answered, by why they answered.
    pub poll_answers: PollAnswers,
}

/// One counter per reason a poll answers, resolved once so the hot path
/// increments an atomic without looking up a label.
pub struct PollAnswers {
    /// With room events (and any items beside them).
    pub events: Counter,
    /// With ephemeral items only (presence, read markers, typing) or an
    /// ephemeral gap.
    pub items: Counter,
    /// At the timeout, with quiet news held for it (watching.rs).
    pub held: Counter,
    /// Empty: the timeout, or the server stopping.
    pub empty: Counter,
    /// Without a cursor: a fresh one at the current heads.
    pub fresh: Counter,
}

impl PollAnswers {
    fn new(family: &Family<Labels, Counter>) -> PollAnswers {
        let why = |why: &'static str| family.get_or_create(&[("why", why)]).clone();
        PollAnswers {
            events: why("events"),
            items: why("items"),
            held: why("held"),
            empty: why("empty"),
            fresh: why("fresh"),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Buckets from 0.25 ms to about 8 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    /// A fresh set of metrics, all zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("natter");
        let poll_answers = Family::default();
        let metrics = Metrics {
            polls_waiting: Gauge::default(),
            deliveries: Counter::default(),
            delivery_latency: latency(),
            sends: Counter::default(),
            send_ack_latency: latency(),
            store_commit_latency: latency(),
            errors: Family::default(),
            rate_limited: Family::default(),
            user_feeds: Gauge::default(),
            room_feeds: Gauge::default(),
            connections_open: Gauge::default(),
            connections_refused: Family::default(),
            poll_answers: PollAnswers::new(&poll_answers),
            registry: Registry::default(),
        };
        registry.register(
            "polls_waiting",
            "Event polls open now",
            metrics.polls_waiting.clone(),
        );
        registry.register(
            "deliveries",
            "Room events handed to polls",
            metrics.deliveries.clone(),
        );
        registry.register_with_unit(
            "delivery_latency",
            "From a send's arrival to a poll answering with it",
            Unit::Seconds,
            metrics.delivery_latency.clone(),
        );
        registry.register("sends", "Messages stored", metrics.sends.clone());
        registry.register_with_unit(
            "send_ack_latency",
            "From a send's arrival to its acknowledgement",
            Unit::Seconds,
            metrics.send_ack_latency.clone(),
        );
        registry.register_with_unit(
            "store_commit_latency",
            "A store write, queued to committed",
            Unit::Seconds,
            metrics.store_commit_latency.clone(),
        );
        registry.register(
            "errors",
            "Error answers, by API code",
            metrics.errors.clone(),
        );
        registry.register(
            "rate_limited",
            "Calls a rate limit refused, by limit",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "user_feeds",
            "User feeds held in memory, as of the last eviction round",
            metrics.user_feeds.clone(),
        );
        registry.register(
            "room_feeds",
            "Room feeds held in memory, as of the last eviction round",
            metrics.room_feeds.clone(),
        );
        registry.register(
            "connections_open",
            "Connections open now",
            metrics.connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections turned away at accept, by reason",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "poll_answers",
            "Event polls answered, by why they answered",
            poll_answers,
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts an error answer with API code `code`.
    pub fn error(&self, code: &'static str) {
        self.errors.get_or_create(&[("code", code)]).inc();
    }

    /// Counts a call refused by the limit named `limit`.
    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited.get_or_create(&[("limit", limit)]).inc();
    }

    /// Counts a connection turned away for `reason`.
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
