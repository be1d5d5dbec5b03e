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

use std::future::Future;
use std::sync::Arc;

use super::{
    Action, ImportChat, ImportMessage, ImportSource, MemberPlace, MemberQuery, NewEvent, NewRoom,
    NewSession, NewUser, Outcome, PeopleQuery, ProfilePatch, Store, StoreError,
};
use crate::model::{
    Current, EndReason, EventBody, MAX_REACTIONS_PER_MESSAGE, NotifyLevel, Role, RoomId, RoomKind,
    Seq, SessionId, UserId, Visibility,
};

/// Runs every conformance test, each on a store `fresh()` makes.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    gapless_sequences_under_concurrent_appends(fresh().await).await;
    sends_are_idempotent(fresh().await).await;
    membership_windows(fresh().await).await;
    read_markers_move_forward_within_the_room(fresh().await).await;
    edits(fresh().await).await;
    deletions(fresh().await).await;
    reactions(fresh().await).await;
    replies(fresh().await).await;
    mentions_are_counted_from_the_current_text(fresh().await).await;
    notification_choices_and_the_peers_read_marker(fresh().await).await;
    people_searches(fresh().await).await;
    member_pages(fresh().await).await;
    archive_imports(fresh().await).await;
    concurrent_duplicates_resolve_to_one(fresh().await).await;
    room_heads(fresh().await).await;
    ended_sessions(fresh().await).await;
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

async fn gapless_sequences_under_concurrent_appends(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let room = room(&*store, owner).await;
    let mut members = Vec::new();
    for w in 0..8 {
        let member = user(&*store, &format!("writer{w}")).await;
        join(&*store, room, member).await;
        members.push(member);
    }
    let before = store.room(room).await.unwrap().unwrap().head;
    // A reader following the room while they write, as a node catching
    // up from the store does, must never see a later seq before an
    // earlier one has committed: its position would pass the earlier one
    // for ever.
    let (done, finished) = tokio::sync::watch::channel(false);
    let reader = {
        let store = store.clone();
        tokio::spawn(reader_without_holes(store, room, before, finished))
    };
    let mut writers = Vec::new();
    for (w, member) in members.into_iter().enumerate() {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                appended(act(&*store, room, member, send(&format!("w{w}-{i}"), "hi")).await);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.send(true).unwrap();
    let head = store.room(room).await.unwrap().unwrap().head;
    assert_eq!(reader.await.unwrap(), head, "the reader got to the head");
    let events = store.events_after(room, 0, 10_000).await.unwrap();
    let seqs: Vec<Seq> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "one gapless sequence");
    let messages = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::Message { .. }))
        .count();
    assert_eq!(messages, 8 * 25);
}

/// Several nodes' stores on one database send in one room while
/// `hold(room)` keeps the room busy for 300 ms from its start, as a slow
/// transaction of another node would (it returns once it lets go), five
/// rounds: every send waits and
/// then commits, seqs stay one gapless sequence, and a reader following
/// the room never sees a seq before the ones below it have committed.
pub async fn racing_nodes_behind_a_slow_transaction<H, HF>(nodes: Vec<Arc<dyn Store>>, hold: H)
where
    H: Fn(RoomId) -> HF,
    HF: Future<Output = ()>,
{
    let first = nodes[0].clone();
    let owner = user(&*first, "owner").await;
    let room = room(&*first, owner).await;
    let mut members = Vec::new();
    for w in 0..4 {
        let member = user(&*first, &format!("writer{w}")).await;
        join(&*first, room, member).await;
        members.push(member);
    }
    for round in 0..5 {
        let before = first.room(room).await.unwrap().unwrap().head;
        let (done, finished) = tokio::sync::watch::channel(false);
        let reader = tokio::spawn(reader_without_holes(first.clone(), room, before, finished));
        let writing = async {
            // The hold has the room by then.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let started = std::time::Instant::now();
            let writers: Vec<_> = members
                .iter()
                .enumerate()
                .map(|(w, &member)| {
                    let store = nodes[w % nodes.len()].clone();
                    tokio::spawn(async move {
                        for i in 0..10 {
                            let id = format!("r{round}-w{w}-{i}");
                            appended(act(&*store, room, member, send(&id, "hi")).await);
                        }
                    })
                })
                .collect();
            for w in writers {
                w.await.unwrap();
            }
            started.elapsed()
        };
        let ((), took) = tokio::join!(hold(room), writing);
        assert!(
            took >= std::time::Duration::from_millis(200),
            "round {round}: the sends did not wait for the held room ({took:?})"
        );
        done.send(true).unwrap();
        let head = first.room(room).await.unwrap().unwrap().head;
        assert_eq!(head, before + 40, "round {round}: every send committed");
        assert_eq!(reader.await.unwrap(), head, "round {round}");
    }
}

/// Reads `room` from just after `from` over and over until `finished`
/// and then to its end, asserting that every read continues exactly
/// where the last stopped; returns the last seq read.
pub(crate) async fn reader_without_holes(
    store: Arc<dyn Store>,
    room: RoomId,
    from: Seq,
    mut finished: tokio::sync::watch::Receiver<bool>,
) -> Seq {
    let mut last = from;
    loop {
        let done = *finished.borrow_and_update();
        let events = store.events_after(room, last, 1_000).await.unwrap();
        for event in &events {
            assert_eq!(
                event.seq,
                last + 1,
                "a reader at {last} was shown seq {}",
                event.seq
            );
            last = event.seq;
        }
        if done && events.is_empty() {
            return last;
        }
        tokio::task::yield_now().await;
    }
}

async fn sends_are_idempotent(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let (one, two) = (room(&*store, owner).await, room(&*store, owner).await);
    let first = appended(act(&*store, one, owner, send("c-1", "hello")).await);
    match act(&*store, one, owner, send("c-1", "hello")).await {
        Ok(Outcome::Unchanged(Some(e))) => assert_eq!(e.seq, first),
        other => panic!("a retry returns the stored message: {other:?}"),
    }
    assert!(matches!(
        act(&*store, one, owner, send("c-1", "other text")).await,
        Err(StoreError::IdempotencyConflict)
    ));
    // The same client id in another room is another message.
    appended(act(&*store, two, owner, send("c-1", "hello")).await);
    assert_eq!(store.room(one).await.unwrap().unwrap().head, first);
}

async fn membership_windows(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let guest = user(&*store, "guest").await;
    let room = room(&*store, owner).await;
    assert!(matches!(
        act(&*store, room, guest, send("g", "not yet")).await,
        Err(StoreError::NotAMember)
    ));
    join(&*store, room, guest).await;
    unchanged(
        act(
            &*store,
            room,
            guest,
            Action::Join {
                user: guest,
                role: Role::Member,
            },
        )
        .await,
    );
    let left = appended(act(&*store, room, guest, Action::Leave { user: guest }).await);
    unchanged(act(&*store, room, guest, Action::Leave { user: guest }).await);
    assert!(matches!(
        act(&*store, room, guest, send("g2", "gone")).await,
        Err(StoreError::NotAMember)
    ));
    appended(act(&*store, room, owner, send("o", "while away")).await);
    join(&*store, room, guest).await;
    let record = store
        .memberships_of(guest)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.room == room)
        .unwrap();
    assert!(record.active);
    assert_eq!(
        record.since_seq,
        left + 2,
        "the rejoin is the window's start"
    );
    assert_eq!(record.changed_seq, record.since_seq);
    let snapshot = store.room_snapshot(room).await.unwrap().unwrap();
    assert_eq!(snapshot.members.len(), 2);
    assert_eq!(snapshot.head_event.map(|e| e.seq), Some(snapshot.room.head));
}

async fn read_markers_move_forward_within_the_room(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let other = user(&*store, "other").await;
    let room = room(&*store, owner).await;
    appended(act(&*store, room, owner, send("a", "one")).await);
    assert_eq!(store.set_read(room, owner, 2).await.unwrap(), 2);
    assert_eq!(
        store.set_read(room, owner, 1).await.unwrap(),
        2,
        "never back"
    );
    assert_eq!(
        store.set_read(room, owner, 99).await.unwrap(),
        2,
        "never past the head"
    );
    assert!(matches!(
        store.set_read(room, other, 1).await,
        Err(StoreError::NotAMember)
    ));
}

async fn edits(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let other = user(&*store, "other").await;
    let room = room(&*store, owner).await;
    join(&*store, room, other).await;
    let seq = appended(act(&*store, room, other, send("m", "first")).await);
    let edit = |text: &str, sent_after| Action::Edit {
        target: seq,
        text: text.into(),
        sent_after,
    };
    assert!(matches!(
        act(&*store, room, owner, edit("owner's", None)).await,
        Err(StoreError::NotAllowed(_))
    ));
    // Not a message (seq 1 is the room's creation), or no event at all.
    for target in [1, 999] {
        let elsewhere = Action::Edit {
            target,
            text: "x".into(),
            sent_after: None,
        };
        assert!(matches!(
            act(&*store, room, other, elsewhere).await,
            Err(StoreError::NotFound("message"))
        ));
    }
    assert!(matches!(
        act(&*store, room, other, edit("late", Some(i64::MAX))).await,
        Err(StoreError::EditWindowClosed)
    ));
    let edited = appended(act(&*store, room, other, edit("second", Some(0))).await);
    unchanged(act(&*store, room, other, edit("second", None)).await);
    let now = current(&*store, room, seq).await;
    assert_eq!(message_text(&now), "second");
    assert_eq!(now.edited_at, Some(1_000));
    // The log keeps both: the message as sent, then the edit.
    let log = store.events_after(room, seq - 1, 10).await.unwrap();
    assert_eq!(message_text_of(&log[0].body), "first");
    assert!(
        matches!(&log[1].body, EventBody::MessageEdited { target, text } if *target == seq && text == "second")
    );
    assert_eq!(log[1].seq, edited);
    // History shows the current state and never the edit itself.
    let page = store.history(room, None, 50).await.unwrap();
    assert_eq!(page.head, edited, "the page shows the room up to its head");
    let page = page.entries;
    assert!(
        page.iter()
            .all(|c| !matches!(c.event.body, EventBody::MessageEdited { .. }))
    );
    assert_eq!(
        message_text(page.iter().find(|c| c.event.seq == seq).unwrap()),
        "second"
    );
}

fn message_text_of(body: &EventBody) -> &str {
    match body {
        EventBody::Message { text, .. } => text,
        other => panic!("not a message: {other:?}"),
    }
}

fn message_text(c: &Current) -> &str {
    message_text_of(&c.event.body)
}

async fn deletions(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let (a, b) = (user(&*store, "a").await, user(&*store, "b").await);
    let room = room(&*store, owner).await;
    join(&*store, room, a).await;
    join(&*store, room, b).await;
    let seq = appended(act(&*store, room, a, send("m", "secret")).await);
    appended(
        act(
            &*store,
            room,
            a,
            Action::Edit {
                target: seq,
                text: "still secret".into(),
                sent_after: None,
            },
        )
        .await,
    );
    appended(
        act(
            &*store,
            room,
            b,
            Action::React {
                target: seq,
                reaction: "👍".into(),
            },
        )
        .await,
    );
    assert!(matches!(
        act(&*store, room, b, Action::Delete { target: seq }).await,
        Err(StoreError::NotAllowed(_))
    ));
    // The room's owner may delete anyone's message; again changes nothing.
    appended(act(&*store, room, owner, Action::Delete { target: seq }).await);
    unchanged(act(&*store, room, a, Action::Delete { target: seq }).await);
    let now = current(&*store, room, seq).await;
    assert!(now.deleted);
    assert_eq!(message_text(&now), "");
    assert!(now.reactions.is_empty() && now.edited_at.is_none());
    // Gone from the log too.
    for e in store.events_after(room, 0, 100).await.unwrap() {
        match &e.body {
            EventBody::Message { text, redacted, .. } if e.seq == seq => {
                assert!(*redacted && text.is_empty())
            }
            EventBody::MessageEdited { text, .. } => assert!(text.is_empty()),
            _ => {}
        }
    }
    for action in [
        Action::Edit {
            target: seq,
            text: "back".into(),
            sent_after: None,
        },
        Action::React {
            target: seq,
            reaction: "👍".into(),
        },
        Action::Unreact {
            target: seq,
            reaction: "👍".into(),
        },
        Action::Send {
            client_msg_id: "r".into(),
            text: "re".into(),
            reply_to: Some(seq),
        },
    ] {
        assert!(matches!(
            act(&*store, room, a, action).await,
            Err(StoreError::MessageDeleted)
        ));
    }
    // The room list neither previews it as text nor counts it unread.
    let summary = store
        .room_summaries(b)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.room.id == room)
        .unwrap();
    assert!(summary.last_message.is_some_and(|m| m.deleted));
    assert_eq!(summary.unread, 0);
}

async fn reactions(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let other = user(&*store, "other").await;
    let outsider = user(&*store, "outsider").await;
    let room = room(&*store, owner).await;
    join(&*store, room, other).await;
    let seq = appended(act(&*store, room, owner, send("m", "react")).await);
    let react = |r: &str| Action::React {
        target: seq,
        reaction: r.into(),
    };
    let unreact = |r: &str| Action::Unreact {
        target: seq,
        reaction: r.into(),
    };
    appended(act(&*store, room, owner, react("👍")).await);
    appended(act(&*store, room, other, react("🎉")).await);
    let second = appended(act(&*store, room, other, react("👍")).await);
    unchanged(act(&*store, room, other, react("👍")).await);
    unchanged(act(&*store, room, owner, unreact("🎉")).await);
    assert!(matches!(
        act(&*store, room, outsider, react("👍")).await,
        Err(StoreError::NotAMember)
    ));
    // The first 👍 is taken back: the chip keeps its place before 🎉.
    appended(act(&*store, room, owner, unreact("👍")).await);
    let chips = |c: Current| -> Vec<(String, Vec<UserId>)> {
        c.reactions
            .into_iter()
            .map(|r| (r.reaction, r.users))
            .collect()
    };
    assert_eq!(
        chips(current(&*store, room, seq).await),
        [
            ("👍".to_owned(), vec![other]),
            ("🎉".to_owned(), vec![other])
        ]
    );
    assert!(second > seq);
    // Emptied and given again, a reaction comes last.
    appended(act(&*store, room, other, unreact("👍")).await);
    appended(act(&*store, room, owner, react("👍")).await);
    assert_eq!(
        chips(current(&*store, room, seq).await),
        [
            ("🎉".to_owned(), vec![other]),
            ("👍".to_owned(), vec![owner])
        ]
    );
    // The 👍 chip is back, so 18 more make the 20 distinct.
    // Bounded: at most MAX_REACTIONS_PER_MESSAGE distinct reactions.
    for i in 2..MAX_REACTIONS_PER_MESSAGE {
        let r = char::from_u32(0x1F600 + i as u32).unwrap().to_string();
        appended(act(&*store, room, owner, react(&r)).await);
    }
    assert!(matches!(
        act(&*store, room, owner, react("🚀")).await,
        Err(StoreError::TooMany(_))
    ));
    // An existing reaction may still be given by someone else.
    appended(act(&*store, room, owner, react("🎉")).await);
}

async fn replies(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let room = room(&*store, owner).await;
    let original = appended(
        act(
            &*store,
            room,
            owner,
            send("o", "the question\nin two lines"),
        )
        .await,
    );
    let reply = |id: &str, to: Seq| Action::Send {
        client_msg_id: id.into(),
        text: "answer".into(),
        reply_to: Some(to),
    };
    assert!(matches!(
        act(&*store, room, owner, reply("r0", 1)).await,
        Err(StoreError::NotFound("message"))
    ));
    assert!(matches!(
        act(&*store, room, owner, reply("r1", 999)).await,
        Err(StoreError::NotFound("message"))
    ));
    let answer = appended(act(&*store, room, owner, reply("r2", original)).await);
    let now = current(&*store, room, answer).await;
    assert!(
        matches!(now.event.body, EventBody::Message { reply_to: Some(o), .. } if o == original)
    );
    let preview = now.reply_preview.expect("a quote");
    assert_eq!(
        (preview.seq, preview.text.as_str(), preview.deleted),
        (original, "the question", false)
    );
    appended(act(&*store, room, owner, Action::Delete { target: original }).await);
    let preview = current(&*store, room, answer).await.reply_preview.unwrap();
    assert!(preview.deleted && preview.text.is_empty());
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

async fn mentions_are_counted_from_the_current_text(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let other = user(&*store, "other").await;
    let late = user(&*store, "late").await;
    let room = room(&*store, owner).await;
    join(&*store, room, other).await;
    let text = format!("<@{}> <@{}> <@{}>", other.0, owner.0, late.0);
    let seq = appended(act(&*store, room, owner, send("a", &text)).await);
    appended(act(&*store, room, owner, send("b", "no mention")).await);
    let counted = |s: super::RoomSummary| (s.unread, s.mentions);
    assert_eq!(counted(summary(&*store, other, room).await), (2, 1));
    assert_eq!(
        counted(summary(&*store, owner, room).await),
        (0, 0),
        "the sender's own"
    );
    // Joined after the mention: nothing old counts.
    join(&*store, room, late).await;
    assert_eq!(counted(summary(&*store, late, room).await), (0, 0));

    let edit = |text: &str| Action::Edit {
        target: seq,
        text: text.into(),
        sent_after: None,
    };
    appended(act(&*store, room, owner, edit("nobody")).await);
    assert_eq!(counted(summary(&*store, other, room).await), (2, 0));
    appended(act(&*store, room, owner, edit(&text)).await);
    assert_eq!(counted(summary(&*store, other, room).await), (2, 1));
    store.set_read(room, other, seq).await.unwrap();
    assert_eq!(counted(summary(&*store, other, room).await), (1, 0));

    let again = appended(act(&*store, room, owner, send("c", &text)).await);
    assert_eq!(counted(summary(&*store, other, room).await), (2, 1));
    appended(act(&*store, room, owner, Action::Delete { target: again }).await);
    assert_eq!(
        counted(summary(&*store, other, room).await),
        (1, 0),
        "a deleted message mentions nobody"
    );
}

async fn notification_choices_and_the_peers_read_marker(store: Arc<dyn Store>) {
    let ann = user(&*store, "ann").await;
    let bob = user(&*store, "bob").await;
    let group = room(&*store, ann).await;
    join(&*store, group, bob).await;
    assert_eq!(summary(&*store, ann, group).await.notify, None);
    store
        .set_notify(group, ann, Some(NotifyLevel::All))
        .await
        .unwrap();
    assert_eq!(
        summary(&*store, ann, group).await.notify,
        Some(NotifyLevel::All)
    );
    assert_eq!(
        summary(&*store, bob, group).await.notify,
        None,
        "one member's choice"
    );
    store.set_notify(group, ann, None).await.unwrap();
    assert_eq!(summary(&*store, ann, group).await.notify, None);
    let carl = user(&*store, "carl").await;
    assert!(matches!(
        store.set_notify(group, carl, Some(NotifyLevel::None)).await,
        Err(StoreError::NotAMember)
    ));

    let (direct, _) = store.open_direct(ann, "ann".into(), bob, 1).await.unwrap();
    assert_eq!(direct.kind, RoomKind::Direct);
    let seq = appended(act(&*store, direct.id, ann, send("d", "hi")).await);
    assert_eq!(
        summary(&*store, ann, direct.id).await.peer_read_seq,
        Some(0)
    );
    store.set_read(direct.id, bob, seq).await.unwrap();
    let row = summary(&*store, ann, direct.id).await;
    assert_eq!(row.peer_read_seq, Some(seq));
    assert_eq!(row.peer.map(|p| p.id), Some(bob));
    assert_eq!(summary(&*store, ann, group).await.peer_read_seq, None);
}

async fn people_searches(store: Arc<dyn Store>) {
    let named = |username: &'static str, display: &'static str| {
        let store = store.clone();
        async move { named(&*store, username, display).await }
    };
    named("lilei", "李雷").await;
    named("jim", "Jim Green").await;
    named("odd", "50%_off").await;
    named("school:s1", "Li Lei").await;
    let gone = named("gone", "Jim Gone").await;
    store.set_deactivated(gone, true, 2).await.unwrap();
    let find = |text: &'static str, prefix: Option<&'static str>, local_only: bool| {
        let store = store.clone();
        async move {
            store
                .search_people(PeopleQuery {
                    text: text.into(),
                    username_prefix: prefix.map(str::to_owned),
                    local_only,
                    limit: 10,
                })
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.display_name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find("雷", None, true).await, ["李雷"]);
    assert_eq!(find("GREEN", None, true).await, ["Jim Green"]);
    assert_eq!(
        find("jim", None, true).await,
        ["Jim Green"],
        "not the deactivated"
    );
    assert_eq!(
        find("LiLei", None, true).await,
        ["李雷"],
        "by the whole username"
    );
    assert!(
        find("lil", None, true).await.is_empty(),
        "not by the start of one"
    );
    assert_eq!(find("li", Some("school:"), false).await, ["Li Lei"]);
    assert_eq!(
        find("s1", Some("school:"), false).await,
        ["Li Lei"],
        "by site id"
    );
    assert_eq!(find("%_", None, true).await, ["50%_off"], "no wildcards");
    assert_eq!(find("_", None, false).await, ["50%_off"]);
    // Names that start with the text come first.
    named("ljim", "Ann Jim").await;
    assert_eq!(find("jim", None, true).await, ["Jim Green", "Ann Jim"]);
}

async fn member_pages(store: Arc<dyn Store>) {
    let owner = named(&*store, "owner", "Zed Owner").await;
    let room = room(&*store, owner).await;
    let mut ids = Vec::new();
    for (username, display) in [
        ("b", "Bea"),
        ("a", "Al"),
        ("c", "50%_off"),
        ("d", "李雷"),
        ("e", "Al"),
    ] {
        let id = named(&*store, username, display).await;
        join(&*store, room, id).await;
        ids.push(id);
    }
    let at_place = |after: Option<MemberPlace>, text: Option<&str>, limit: usize| {
        let store = store.clone();
        let text = text.map(str::to_owned);
        async move {
            store
                .member_page(room, MemberQuery { after, text, limit })
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.user.display_name)
                .collect::<Vec<_>>()
        }
    };
    let page = |after: Option<UserId>, text: Option<&str>, limit: usize| {
        let after = after.map(|id| MemberPlace { id, name: None });
        at_place(after, text, limit)
    };
    let all = ["50%_off", "Al", "Al", "Bea", "Zed Owner", "李雷"];
    assert_eq!(page(None, None, 10).await, all, "by name, then id");
    assert_eq!(
        store
            .members(room)
            .await
            .unwrap()
            .iter()
            .map(|m| m.user.display_name.as_str())
            .collect::<Vec<_>>(),
        all
    );
    // Two pages of three; the second starts after the first's last, the
    // second of the two "Al"s, ordered by id.
    assert_eq!(page(None, None, 3).await, ["50%_off", "Al", "Al"]);
    let (first_al, second_al) = (ids[1], ids[4]);
    assert_eq!(
        page(Some(first_al), None, 3).await,
        ["Al", "Bea", "Zed Owner"]
    );
    assert_eq!(
        page(Some(second_al), None, 3).await,
        ["Bea", "Zed Owner", "李雷"]
    );
    // Someone who left is still a place to continue from.
    let bea = ids[0];
    appended(act(&*store, room, bea, Action::Leave { user: bea }).await);
    assert_eq!(page(Some(bea), None, 3).await, ["Zed Owner", "李雷"]);
    assert_eq!(page(None, None, 10).await.len(), 5, "not the leaver");
    // Search: anywhere in the name, ASCII case ignored, no wildcards.
    assert_eq!(page(None, Some("AL"), 10).await, ["Al", "Al"]);
    assert_eq!(page(None, Some("雷"), 10).await, ["李雷"]);
    assert_eq!(page(None, Some("%_"), 10).await, ["50%_off"]);
    assert!(
        page(None, Some("%o"), 10).await.is_empty(),
        "% is no wildcard"
    );
    assert_eq!(page(Some(first_al), Some("al"), 10).await, ["Al"]);
    assert!(
        page(None, Some("Bea"), 10).await.is_empty(),
        "not the leaver"
    );
    // A page's last member renamed before the next page is read: the
    // place the page carried (its name then) still continues where the
    // page ended, while the bare id follows the new name and skips.
    store
        .update_profile(
            second_al,
            ProfilePatch {
                display_name: Some("Zz".into()),
                avatar_url: None,
            },
        )
        .await
        .unwrap();
    let where_it_was = MemberPlace {
        id: second_al,
        name: Some("Al".into()),
    };
    assert_eq!(
        at_place(Some(where_it_was), None, 3).await,
        ["Zed Owner", "Zz", "李雷"]
    );
    assert_eq!(page(Some(second_al), None, 3).await, ["李雷"]);
    // A place by any name is only a place: it shows members, nobody else.
    let anywhere = MemberPlace {
        id: UserId(i64::MAX),
        name: Some("M".into()),
    };
    assert_eq!(
        at_place(Some(anywhere), None, 10).await,
        ["Zed Owner", "Zz", "李雷"]
    );
}

fn imported(sender: UserId, n: i64) -> ImportMessage {
    ImportMessage {
        sender,
        sender_name: format!("user {}", sender.0),
        at: 1_000 + n,
        client_msg_id: format!("xml:{n}"),
        text: format!("message {n}"),
    }
}

fn source(messages: Vec<Result<ImportMessage, String>>) -> ImportSource {
    Box::new(messages.into_iter())
}

async fn archive_imports(store: Arc<dyn Store>) {
    let ann = user(&*store, "ann").await;
    let bob = user(&*store, "bob").await;
    let chat = |key: &str, direct: bool| ImportChat {
        key: key.into(),
        direct,
        title: "class".into(),
        community: Some(String::new()),
        members: vec![(ann, "Ann".into()), (bob, "Bob".into())],
        at: 500,
    };
    let first = store
        .import_chat(
            chat("mass:1", false),
            source(vec![Ok(imported(ann, 1)), Ok(imported(bob, 2))]),
        )
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!((first.appended, first.already), (2, 0));
    let page = store.history(first.room, None, 10).await.unwrap();
    let shown: Vec<(UserId, i64, String)> = page
        .entries
        .iter()
        .filter_map(|c| match &c.event.body {
            EventBody::Message { text, .. } => Some((c.event.sender, c.event.at, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        shown,
        [
            (ann, 1_001, "message 1".into()),
            (bob, 1_002, "message 2".into())
        ],
        "each message with its own time, in order"
    );

    // Again, with one more: the same room, nothing twice.
    let again = store
        .import_chat(
            chat("mass:1", false),
            source(vec![
                Ok(imported(ann, 1)),
                Ok(imported(bob, 2)),
                Ok(imported(ann, 3)),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(again.room, first.room);
    assert!(!again.created);
    assert_eq!((again.appended, again.already), (1, 2));
    assert_eq!(
        store.archive_keys().await.unwrap(),
        [("mass:1".to_owned(), first.room)]
    );

    // A source that fails midway writes nothing of its chat.
    let failed = store
        .import_chat(
            chat("mass:2", false),
            source(vec![Ok(imported(ann, 1)), Err("broken file".into())]),
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Aborted(ref why)) if why == "broken file"));
    assert_eq!(store.archive_keys().await.unwrap().len(), 1);
    let head = store.room(first.room).await.unwrap().unwrap().head;
    let failed = store
        .import_chat(
            chat("mass:1", false),
            source(vec![Ok(imported(ann, 4)), Err("broken".into())]),
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(store.room(first.room).await.unwrap().unwrap().head, head);

    // A one-to-one chat is the pair's direct conversation.
    let (direct, _) = store.open_direct(ann, "Ann".into(), bob, 1).await.unwrap();
    let pair = store
        .import_chat(chat("direct:ab", true), source(vec![Ok(imported(bob, 5))]))
        .await
        .unwrap();
    assert_eq!(pair.room, direct.id);
    assert!(!pair.created);
    assert_eq!(pair.appended, 1);
    let rooms = store.rooms_after(RoomId(0), 10).await.unwrap();
    assert_eq!(
        rooms.iter().map(|r| r.id).collect::<Vec<_>>(),
        [first.room, direct.id]
    );
    assert_eq!(store.rooms_after(first.room, 10).await.unwrap().len(), 1);
}

/// The same send from many tasks at once is stored once, and every other
/// one gets the idempotent replay; a pair opening their conversation at
/// once gets one conversation, made once.
async fn concurrent_duplicates_resolve_to_one(store: Arc<dyn Store>) {
    let ann = user(&*store, "ann").await;
    let bob = user(&*store, "bob").await;
    let room = room(&*store, ann).await;
    let sends: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { act(&*store, room, ann, send("same", "once")).await })
        })
        .collect();
    let (mut appended_seqs, mut replayed) = (Vec::new(), Vec::new());
    for task in sends {
        match task.await.unwrap() {
            Ok(Outcome::Appended(e)) => appended_seqs.push(e.seq),
            Ok(Outcome::Unchanged(Some(e))) => replayed.push(e.seq),
            other => panic!("a duplicate send answers the stored message: {other:?}"),
        }
    }
    assert_eq!(appended_seqs.len(), 1, "stored once");
    assert!(
        replayed.iter().all(|s| *s == appended_seqs[0]),
        "{replayed:?}"
    );
    assert_eq!(
        store.room(room).await.unwrap().unwrap().head,
        appended_seqs[0]
    );

    let opens: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let (opener, peer) = if i % 2 == 0 { (ann, bob) } else { (bob, ann) };
            tokio::spawn(async move { store.open_direct(opener, "x".into(), peer, 1).await })
        })
        .collect();
    let mut rooms = Vec::new();
    let mut created = 0;
    for task in opens {
        let (room, event) = task.await.unwrap().expect("open the conversation");
        rooms.push(room.id);
        created += usize::from(event.is_some());
    }
    assert_eq!(created, 1, "made once");
    assert!(rooms.iter().all(|r| *r == rooms[0]), "{rooms:?}");
}

/// A cluster node's head check: the committed head of each room asked for
/// that exists, rooms it never heard of left out.
async fn room_heads(store: Arc<dyn Store>) {
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
async fn ended_sessions(store: Arc<dyn Store>) {
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
