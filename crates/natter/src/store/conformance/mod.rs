//! What every [`Store`] must do, as tests that know only the trait: any
//! implementation (SQLite now, PostgreSQL for scale-out) runs all of them
//! with [`run_all`] on fresh, empty stores (`tests/store_conformance.rs`).
//!
//! They pin the guarantees the rest of natter builds on: one gapless
//! sequence per room under concurrent appends, idempotent sends, membership
//! windows, read markers, every change to a message (who may, what is
//! refused, what the current state and the log say afterwards), mention
//! counts, notification choices, people searches and archive imports,
//! and that racing duplicates (a send retried at once, a conversation
//! opened by both people at once) resolve to one row, as they must when
//! several nodes share one database.

mod archive;
mod cluster;
mod members;
mod messages;
mod order;

use std::future::Future;
use std::sync::Arc;

pub use self::order::racing_nodes_behind_a_slow_transaction;
use super::{Action, NewEvent, NewRoom, NewUser, Outcome, Store, StoreError};
use crate::model::{Current, Role, RoomId, Seq, UserId, Visibility};

/// Runs every conformance test, each on a store `fresh()` makes.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    order::gapless_sequences_under_concurrent_appends(fresh().await).await;
    order::sends_are_idempotent(fresh().await).await;
    members::membership_windows(fresh().await).await;
    members::read_markers_move_forward_within_the_room(fresh().await).await;
    messages::edits(fresh().await).await;
    messages::deletions(fresh().await).await;
    messages::reactions(fresh().await).await;
    messages::replies(fresh().await).await;
    messages::mentions_are_counted_from_the_current_text(fresh().await).await;
    members::notification_choices_and_the_peers_read_marker(fresh().await).await;
    members::people_searches(fresh().await).await;
    members::member_pages(fresh().await).await;
    archive::archive_imports(fresh().await).await;
    order::concurrent_duplicates_resolve_to_one(fresh().await).await;
    order::sends_at_once_are_answered_each_on_its_own(fresh().await).await;
    cluster::room_heads(fresh().await).await;
    cluster::ended_sessions(fresh().await).await;
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    named(store, name, name).await
}

async fn named(store: &dyn Store, username: &str, display_name: &str) -> UserId {
    store
        .create_user(NewUser {
            username: username.into(),
            display_name: display_name.into(),
            password_hash: "not a real hash".into(),
            at: 1,
            invite: None,
        })
        .await
        .expect("create user")
        .id
}

async fn room(store: &dyn Store, owner: UserId) -> RoomId {
    store
        .create_room(NewRoom {
            creator: owner,
            creator_name: "owner".into(),
            community: None,
            title: "room".into(),
            visibility: Visibility::Public,
            at: 1,
        })
        .await
        .expect("create room")
        .0
        .id
}

async fn act(
    store: &dyn Store,
    room: RoomId,
    actor: UserId,
    action: Action,
) -> Result<Outcome, StoreError> {
    store
        .append(NewEvent {
            room,
            actor,
            actor_name: format!("user {actor}"),
            at: 1_000,
            action,
        })
        .await
        .map(|a| a.outcome)
}

fn appended(outcome: Result<Outcome, StoreError>) -> Seq {
    match outcome {
        Ok(Outcome::Appended(event)) => event.seq,
        other => panic!("expected an appended event, got {other:?}"),
    }
}

fn unchanged(outcome: Result<Outcome, StoreError>) {
    assert!(
        matches!(outcome, Ok(Outcome::Unchanged(None))),
        "{outcome:?}"
    );
}

fn send(id: &str, text: &str) -> Action {
    Action::Send {
        client_msg_id: id.into(),
        text: text.into(),
        reply_to: None,
    }
}

async fn join(store: &dyn Store, room: RoomId, user: UserId) {
    appended(
        act(
            store,
            room,
            user,
            Action::Join {
                user,
                role: Role::Member,
            },
        )
        .await,
    );
}

async fn current(store: &dyn Store, room: RoomId, seq: Seq) -> Current {
    store
        .message(room, seq)
        .await
        .unwrap()
        .expect("the message")
}

/// The room list row of `room` for `user`.
async fn summary(store: &dyn Store, user: UserId, room: RoomId) -> super::RoomSummary {
    store
        .room_summaries(user)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.room.id == room)
        .expect("the room in the list")
}
