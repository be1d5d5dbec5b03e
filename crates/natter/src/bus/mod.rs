//! Fan-out of committed changes to the hub of every node.
//!
//! The bus may be at-most-once: a hub that sees a room's sequence jump reads
//! the gap from the store, so delivery stays exact even if a message is lost.

pub mod conformance;
pub mod local;
pub mod redis;
pub mod redis_rates;
pub mod wire;

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::model::{EndReason, Ephemeral, Event, SessionId, UserId};

/// What travels between nodes.
#[derive(Clone, Debug)]
pub enum BusMessage {
    /// A committed room event.
    RoomEvent(Arc<Event>),
    /// Sessions ended by logout or replacement; their polls must return.
    SessionsEnded {
        user: UserId,
        sessions: Vec<SessionId>,
        reason: EndReason,
    },
    /// A user's display name changed (or a node met them first): every
    /// node's name cache takes it, so the next send anywhere carries it.
    ProfileChanged { user: UserId, display_name: String },
    /// A node's polls brought a user online, or the last of them ended
    /// its grace (hub/cluster.rs).
    Presence {
        node: u64,
        user: UserId,
        online: bool,
    },
    /// A node is alive, has these users online, and holds this many
    /// polls of each user with one open (the cluster's per-user poll cap
    /// counts them).
    NodeAlive {
        node: u64,
        online: Vec<UserId>,
        polls: Vec<(UserId, u32)>,
    },
    /// A typing notice announced on a node (an `Ephemeral::Typing`).
    Typing { node: u64, item: Ephemeral },
    /// An item for one user's sessions on every node: a read marker, a
    /// notification choice, a peer's read receipt.
    UserItem {
        node: u64,
        user: UserId,
        item: Ephemeral,
    },
    /// This node began, or began again, to hear the other nodes (a Redis
    /// subscription made or remade): what they said before is lost here.
    /// Never sent to another node.
    Hearing,
}

/// Something that consumes bus messages (the node's chat service).
pub trait BusSink: Send + Sync {
    fn deliver(&self, message: &BusMessage);
}

/// A publish/subscribe channel between nodes.
pub trait Bus: Send + Sync + 'static {
    /// Sends to every subscriber on every node, this one included.
    fn publish(&self, message: BusMessage);
    /// Registers this node's consumer; held weakly so the bus never keeps a
    /// stopped server alive.
    fn subscribe(&self, sink: Weak<dyn BusSink>);
    /// Whether a message can be lost on the way to another node (Redis
    /// pub/sub): the hub then checks the store's room heads now and then
    /// for what it never heard (hub/heads.rs).
    fn lossy(&self) -> bool {
        false
    }
    /// The rate-limit counters the nodes on this bus share; `None` on a
    /// single node, whose own counters are the whole truth.
    fn shared_rates(&self) -> Option<Arc<dyn SharedRates>> {
        None
    }
}

/// Rate-limit counters every node of a cluster shares, so that a user or
/// a host gets each limit once, not once per node.
#[async_trait::async_trait]
pub trait SharedRates: Send + Sync {
    /// Counts one call of `key`, which may make one call per `every`
    /// sustained and `burst` at once: `Some(Ok(()))` lets it pass,
    /// `Some(Err(wait))` refuses it for `wait`; `None` when the counters
    /// cannot be reached in time, and the node counts on its own.
    async fn take(&self, key: &str, every: Duration, burst: u32) -> Option<Result<(), Duration>>;
}
