//! What a cluster node asks of the shared store: the committed heads of
//! the rooms it holds, and which of its cached sessions ended.

use std::sync::Arc;

use super::{act, appended, room, send, user};
use crate::model::{EndReason, RoomId, SessionId};
use crate::store::{NewSession, Store};

/// A cluster node's head check: the committed head of each room asked for
/// that exists, rooms it never heard of left out.
pub(super) async fn room_heads(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let quiet = room(&*store, owner).await;
    let busy = room(&*store, owner).await;
    for i in 0..3 {
        appended(act(&*store, busy, owner, send(&format!("h{i}"), "hi")).await);
    }
    let mut heads = store
        .room_heads(&[busy, quiet, RoomId(999_999)])
        .await
        .unwrap();
    heads.sort();
    let mut want = vec![
        (quiet, store.room(quiet).await.unwrap().unwrap().head),
        (busy, store.room(busy).await.unwrap().unwrap().head),
    ];
    want.sort();
    assert_eq!(heads, want);
    assert_eq!(
        want.iter().find(|h| h.0 == busy).unwrap().1,
        4,
        "created, then three"
    );
    assert!(store.room_heads(&[]).await.unwrap().is_empty());
}

/// A cluster node's recheck: of the sessions it names, the ended ones,
/// with their user and reason; live and unknown ones are not listed.
pub(super) async fn ended_sessions(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await;
    let session = |n: u8| {
        let store = store.clone();
        async move {
            store
                .create_session(NewSession {
                    user: alice,
                    token_hash: [n; 32],
                    at: 1,
                    expires_at: i64::MAX,
                    end_others: None,
                    password_hash: None,
                })
                .await
                .unwrap()
                .0
        }
    };
    let (ended, live) = (session(1).await, session(2).await);
    store
        .end_session(ended, EndReason::LoggedOut, 5)
        .await
        .unwrap();
    let unknown = SessionId(ended.0 + live.0 + 1000);
    assert_eq!(
        store.ended_sessions(&[live, ended, unknown]).await.unwrap(),
        [(alice, ended, EndReason::LoggedOut)]
    );
    assert!(store.ended_sessions(&[]).await.unwrap().is_empty());
}
