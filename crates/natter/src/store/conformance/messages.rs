//! Every change to a message: who may edit, delete, react and reply,
//! what is refused, what the current state and the log say afterwards,
//! and mention counts taken from the current text.

use std::sync::Arc;

use super::{act, appended, current, join, room, send, summary, unchanged, user};
use crate::model::{Current, EventBody, MAX_REACTIONS_PER_MESSAGE, Seq, UserId};
use crate::store::{Action, RoomSummary, Store, StoreError};

pub(super) async fn edits(store: Arc<dyn Store>) {
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

pub(super) async fn deletions(store: Arc<dyn Store>) {
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

pub(super) async fn reactions(store: Arc<dyn Store>) {
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

pub(super) async fn replies(store: Arc<dyn Store>) {
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

pub(super) async fn mentions_are_counted_from_the_current_text(store: Arc<dyn Store>) {
    let owner = user(&*store, "owner").await;
    let other = user(&*store, "other").await;
    let late = user(&*store, "late").await;
    let room = room(&*store, owner).await;
    join(&*store, room, other).await;
    let text = format!("<@{}> <@{}> <@{}>", other.0, owner.0, late.0);
    let seq = appended(act(&*store, room, owner, send("a", &text)).await);
    appended(act(&*store, room, owner, send("b", "no mention")).await);
    let counted = |s: RoomSummary| (s.unread, s.mentions);
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
