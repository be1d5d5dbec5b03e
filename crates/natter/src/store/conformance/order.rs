//! One gapless sequence per room whoever writes at once, read in commit
//! order by a reader following the room; and a send, or a pair's direct
//! conversation, made once however often or however concurrently it is
//! asked for.

use std::future::Future;
use std::sync::Arc;

use super::{act, appended, join, room, send, user};
use crate::model::{EventBody, RoomId, Seq};
use crate::store::{Action, Outcome, Store, StoreError};

pub(super) async fn gapless_sequences_under_concurrent_appends(store: Arc<dyn Store>) {
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
async fn reader_without_holes(
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

pub(super) async fn sends_are_idempotent(store: Arc<dyn Store>) {
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
    // A room that is not there says so, and nothing is stored.
    let missing = RoomId(two.0 + 1_000);
    assert!(matches!(
        act(&*store, missing, owner, send("c-2", "hello")).await,
        Err(StoreError::NotFound("room"))
    ));
    assert!(store.room(missing).await.unwrap().is_none());
}

/// Many sends at once to several rooms, some of them refused (an
/// outsider's, a reply to no message): each is answered on its own, a
/// refused one stores nothing and takes no seq, and whom the stored ones
/// mention is counted. A store that writes the sends that queue up
/// together (PostgreSQL's batches) must keep every one of them apart.
pub(super) async fn sends_at_once_are_answered_each_on_its_own(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let reader = user(&*store, "reader").await;
    let outsider = user(&*store, "outsider").await;
    let mut rooms = Vec::new();
    // Five rooms and eight kinds of send: each room gets six of each kind.
    for _ in 0..5 {
        let r = room(&*store, owner).await;
        join(&*store, r, reader).await;
        rooms.push(r);
    }
    let mut heads = Vec::new();
    for r in &rooms {
        heads.push(store.room(*r).await.unwrap().unwrap().head);
    }
    let sends: Vec<_> = (0..240)
        .map(|i| {
            let store = store.clone();
            let room = rooms[i % rooms.len()];
            let mention = format!("number {i} for <@{}>", reader.0);
            tokio::spawn(async move {
                let id = format!("at-once-{i}");
                let answer = match i % 8 {
                    0 => act(&*store, room, outsider, send(&id, "not in")).await,
                    1 => {
                        let reply = Action::Send {
                            client_msg_id: id,
                            text: "to nothing".into(),
                            reply_to: Some(1_000_000),
                        };
                        act(&*store, room, owner, reply).await
                    }
                    2 => act(&*store, room, owner, send(&id, &mention)).await,
                    _ => act(&*store, room, owner, send(&id, &format!("number {i}"))).await,
                };
                (i, room, answer)
            })
        })
        .collect();
    let mut stored = vec![Vec::new(); rooms.len()];
    for task in sends {
        let (i, room, answer) = task.await.unwrap();
        match (i % 8, answer) {
            (0, Err(StoreError::NotAMember)) => {}
            (1, Err(StoreError::NotFound("message"))) => {}
            (2.., Ok(Outcome::Appended(event))) => {
                assert_eq!(event.room, room);
                let at = rooms.iter().position(|r| *r == room).unwrap();
                stored[at].push((event.seq, i));
            }
            (kind, other) => panic!("send {i} (kind {kind}) was answered {other:?}"),
        }
    }
    for (at, room) in rooms.iter().enumerate() {
        let events = store.events_after(*room, heads[at], 1_000).await.unwrap();
        let logged: Vec<(Seq, String)> = events
            .iter()
            .map(|e| match &e.body {
                EventBody::Message { text, .. } => (e.seq, text.clone()),
                other => panic!("only messages were sent: {other:?}"),
            })
            .collect();
        let seqs: Vec<Seq> = logged.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<Seq> = (heads[at] + 1..=heads[at] + 36).collect();
        assert_eq!(seqs, expected, "room {at}: 36 stored, no gap");
        for (seq, i) in &stored[at] {
            let text = &logged[usize::try_from(seq - heads[at] - 1).unwrap()].1;
            let own = format!("number {i}");
            assert!(
                *text == own || text.starts_with(&format!("{own} ")),
                "{seq}: {text}"
            );
        }
    }
    let mentioned = store.room_summaries(reader).await.unwrap();
    assert_eq!(mentioned.len(), rooms.len());
    for summary in mentioned {
        assert_eq!(
            (summary.unread, summary.mentions),
            (36, 6),
            "{:?}",
            summary.room.id
        );
    }
}

/// The same send from many tasks at once is stored once, and every other
/// one gets the idempotent replay; a pair opening their conversation at
/// once gets one conversation, made once.
pub(super) async fn concurrent_duplicates_resolve_to_one(store: Arc<dyn Store>) {
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
