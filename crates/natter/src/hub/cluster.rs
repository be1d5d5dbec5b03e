//! Presence across the nodes of a cluster: a user is online while a poll
//! of theirs is open on any node (or ended there within the grace), and a
//! dead node's users go offline after it. The heartbeat also says how many
//! polls each user holds open on the node, so the per-user poll cap counts
//! the whole cluster's (as of the last heartbeats, at most 2 s old).
//!
//! Each node says on the bus when a user comes online or goes offline
//! through its own polls, and every 2 s which users are (a heartbeat that
//! also carries the whole list, so a node that starts late or missed a
//! message catches up). A node not heard from for 7 s is taken for dead:
//! its users count as offline here unless another node has them. A flip
//! heard from another node is announced here as a local one would be, to
//! this node's polls that hear the user's presence (presence.rs).
//!
//! Typing notices and the items for one user's sessions (read markers,
//! notification choices, a peer's read receipt) go to the other nodes
//! too. Each node's ephemeral stream stays its own; a poll that moves
//! continues from its cursor's time (user_feed.rs), so the nodes decide
//! that a silent node is dead within a check of each other, not within a
//! heartbeat.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Hub;
use crate::bus::{Bus, BusMessage};
use crate::model::{Ephemeral, UserId};

/// How often a node says which users it has online.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a silent node still counts.
const NODE_TIMEOUT: Duration = Duration::from_secs(7);
/// How often a node looks for silent ones: every node hears a heartbeat
/// at about the same instant, so they all find a node dead within this
/// of each other, well inside `user_feed::NODES_APART_MS`.
const DEATH_CHECK: Duration = Duration::from_millis(250);

/// How long flips heard from other nodes gather before they are settled
/// together: one pass over the rooms held here per batch, not per flip
/// (100,000 users coming online over six nodes are 100,000 flips).
const PEER_FLIPS_BATCH: Duration = Duration::from_millis(50);

/// This node's view of the others.
pub(super) struct ClusterPresence {
    bus: Arc<dyn Bus>,
    peers: std::sync::Mutex<HashMap<u64, Peer>>,
    /// Users another node flipped, waiting for the next batch.
    flipped: std::sync::Mutex<HashSet<UserId>>,
}

/// Another node, as last heard.
#[derive(Default)]
struct Peer {
    heard: Option<Instant>,
    online: HashSet<UserId>,
    /// Open polls per user, from its last heartbeat.
    polls: HashMap<UserId, u32>,
}

impl Hub {
    /// Makes this hub one node of a cluster on `bus`: presence is shared
    /// with the other nodes from now on.
    pub fn join_cluster(&self, bus: Arc<dyn Bus>) {
        let joined = self.cluster.set(ClusterPresence {
            bus,
            peers: std::sync::Mutex::new(HashMap::new()),
            flipped: std::sync::Mutex::new(HashSet::new()),
        });
        if joined.is_err() {
            return;
        }
        self.every(
            "a heartbeat",
            HEARTBEAT,
            |hub| async move { hub.heartbeat() },
        );
        self.every("a check for silent nodes", DEATH_CHECK, |hub| async move {
            hub.forget_silent_nodes()
        });
    }

    /// This node began to hear the other nodes again: what they said
    /// meanwhile never came, so every ephemeral stream here has a gap.
    /// Presence comes back with their next heartbeats, room events with
    /// the head checks.
    pub fn hearing_the_others(&self) {
        let feeds: Vec<Arc<super::UserFeed>> = self
            .users
            .read()
            .expect("users poisoned")
            .values()
            .cloned()
            .collect();
        for feed in feeds {
            feed.lock().lost_ephemeral();
            feed.wake();
        }
    }

    /// How many polls of `user` the other nodes held open at their last
    /// heartbeats.
    pub(super) fn polls_elsewhere(&self, user: UserId) -> usize {
        self.cluster.get().map_or(0, |c| {
            c.peers
                .lock()
                .expect("peers poisoned")
                .values()
                .map(|p| p.polls.get(&user).copied().unwrap_or(0) as usize)
                .sum()
        })
    }

    /// Whether another node has `user` online.
    pub(super) fn online_elsewhere(&self, user: UserId) -> bool {
        self.cluster.get().is_some_and(|c| {
            c.peers
                .lock()
                .expect("peers poisoned")
                .values()
                .any(|p| p.online.contains(&user))
        })
    }

    /// Records whether this node's own polls keep `user` online and, on
    /// a change, tells the other nodes, in one step against heartbeats
    /// (`presence_told`). The first check costs a poll nothing when
    /// nothing changes.
    pub(super) fn set_local_presence(&self, user: &super::UserFeed, online: bool) {
        if user.is_local_online() == online {
            return;
        }
        let _told = self.presence_told.lock().expect("presence poisoned");
        if user.set_local_online(online) == online {
            return;
        }
        if let Some(cluster) = self.cluster.get() {
            cluster.bus.publish(BusMessage::Presence {
                node: self.instance,
                user: user.id,
                online,
            });
        }
    }

    /// Tells the other nodes of an item for `user`'s sessions there.
    pub(super) fn tell_peers_item(&self, user: UserId, item: &Ephemeral) {
        if let Some(cluster) = self.cluster.get() {
            cluster.bus.publish(BusMessage::UserItem {
                node: self.instance,
                user,
                item: item.clone(),
            });
        }
    }

    /// Tells the other nodes of a typing notice.
    pub(super) fn tell_peers_typing(&self, item: &Ephemeral) {
        if let Some(cluster) = self.cluster.get() {
            cluster.bus.publish(BusMessage::Typing {
                node: self.instance,
                item: item.clone(),
            });
        }
    }

    /// Another node's item for `user`'s sessions, from the bus.
    pub fn peer_user_item(&self, node: u64, user: UserId, item: Ephemeral) {
        if node != self.instance {
            self.push_ephemeral_here(user, item);
        }
    }

    /// Another node's typing notice, from the bus.
    pub fn peer_typing_from(&self, node: u64, item: Ephemeral) {
        if node != self.instance {
            self.peer_typing(item);
        }
    }

    /// Another node's flip of `user`, from the bus.
    pub fn peer_presence(&self, node: u64, user: UserId, online: bool) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        if node == self.instance {
            return;
        }
        {
            let mut peers = cluster.peers.lock().expect("peers poisoned");
            let peer = peers.entry(node).or_default();
            peer.heard = Some(Instant::now());
            if online {
                peer.online.insert(user);
            } else {
                peer.online.remove(&user);
            }
        }
        let first = {
            let mut flipped = cluster.flipped.lock().expect("flips poisoned");
            flipped.insert(user) && flipped.len() == 1
        };
        if first && let Some(hub) = self.me.upgrade() {
            tokio::spawn(async move {
                tokio::time::sleep(PEER_FLIPS_BATCH).await;
                let Some(cluster) = hub.cluster.get() else {
                    return;
                };
                let users = std::mem::take(&mut *cluster.flipped.lock().expect("flips poisoned"));
                hub.settle_presence(users);
            });
        }
    }

    /// Another node's heartbeat: the users it has online now, and their
    /// open polls there.
    pub fn peer_alive(&self, node: u64, online: Vec<UserId>, polls: &[(UserId, u32)]) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        if node == self.instance {
            return;
        }
        let online: HashSet<UserId> = online.into_iter().collect();
        let changed: Vec<UserId> = {
            let mut peers = cluster.peers.lock().expect("peers poisoned");
            let peer = peers.entry(node).or_default();
            peer.heard = Some(Instant::now());
            let changed = peer.online.symmetric_difference(&online).copied().collect();
            peer.online = online;
            peer.polls = polls.iter().copied().collect();
            changed
        };
        self.settle_presence(changed);
    }

    /// Says which users this node has online.
    fn heartbeat(&self) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let local = || -> Vec<Arc<super::UserFeed>> {
            self.users
                .read()
                .expect("users poisoned")
                .values()
                .filter(|f| f.is_local_online())
                .cloned()
                .collect()
        };
        // Polls are counted outside `presence_told`, which orders only
        // the online list against flips.
        // Only polls open a heartbeat or longer: one that just moved here
        // is still in its old node's last heartbeat, and counting it twice
        // would refuse a user's next poll for no reason.
        let settled = Instant::now().checked_sub(HEARTBEAT);
        let polls = local()
            .iter()
            .filter_map(|f| {
                let open = settled.map_or(0, |s| f.lock().polls_open_since(s)) as u32;
                (open > 0).then_some((f.id, open))
            })
            .collect();
        let _told = self.presence_told.lock().expect("presence poisoned");
        let online = local().iter().map(|f| f.id).collect();
        cluster.bus.publish(BusMessage::NodeAlive {
            node: self.instance,
            online,
            polls,
        });
    }

    /// Forgets the nodes that have been silent too long; their users go
    /// offline here unless another node has them.
    fn forget_silent_nodes(&self) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let gone: Vec<UserId> = {
            let mut peers = cluster.peers.lock().expect("peers poisoned");
            let now = Instant::now();
            let mut gone = Vec::new();
            peers.retain(|node, peer| {
                let alive = peer
                    .heard
                    .is_some_and(|heard| now.duration_since(heard) < NODE_TIMEOUT);
                if !alive {
                    tracing::warn!(node = %format!("{node:016x}"), users = peer.online.len(), "a node fell silent; its users count as offline here");
                    gone.extend(peer.online.iter().copied());
                }
                alive
            });
            gone
        };
        self.settle_presence(gone);
    }

    /// Re-derives the presence of `users` from this node's polls and the
    /// others', and announces what changed. A user with no feed here is
    /// loaded only if a room this node holds has them: nobody else here
    /// hears their presence.
    fn settle_presence(&self, users: impl IntoIterator<Item = UserId>) {
        let users: Vec<UserId> = users.into_iter().collect();
        if users.is_empty() {
            return;
        }
        let Some(hub) = self.me.upgrade() else { return };
        tokio::spawn(async move {
            // The rooms held here that each of them is in, in one pass
            // over the rooms for the whole batch.
            let mut rooms_here: HashMap<UserId, Vec<Arc<super::RoomFeed>>> = HashMap::new();
            {
                let wanted: HashSet<UserId> = users.iter().copied().collect();
                let rooms = hub.rooms.read().expect("rooms poisoned");
                for room in rooms.values() {
                    let state = room.lock();
                    // Whichever of the two is smaller is walked.
                    let found: Vec<UserId> = if wanted.len() <= state.members.len() {
                        wanted
                            .iter()
                            .filter(|u| state.members.contains_key(u))
                            .copied()
                            .collect()
                    } else {
                        state
                            .members
                            .keys()
                            .filter(|m| wanted.contains(m))
                            .copied()
                            .collect()
                    };
                    drop(state);
                    for user in found {
                        rooms_here.entry(user).or_default().push(room.clone());
                    }
                }
            }
            for user in users {
                let elsewhere = hub.online_elsewhere(user);
                match hub.loaded_users([user]).pop() {
                    Some(feed) => {
                        let _in_order = feed.presence_order();
                        let online = feed.is_local_online() || elsewhere;
                        if feed.set_online(online) != online {
                            hub.broadcast_presence(&feed, online);
                        }
                    }
                    // Another node's user with no feed here: only the
                    // rooms held here that they are in hear of it, and
                    // their feed is not loaded for that.
                    None => {
                        if let Some(rooms) = rooms_here.remove(&user) {
                            hub.announce_presence(user, rooms, elsewhere, true);
                        }
                    }
                }
            }
        });
    }
}
