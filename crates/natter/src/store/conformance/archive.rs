//! Importing an archive's chats: a chat's room made once, a second
//! import adding only what is new, a source that fails midway writing
//! nothing of its chat, and a one-to-one chat landing in the pair's
//! direct conversation.

use std::sync::Arc;

use super::user;
use crate::model::{EventBody, RoomId, UserId};
use crate::store::{ImportChat, ImportMessage, ImportSource, Store, StoreError};

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

pub(super) async fn archive_imports(store: Arc<dyn Store>) {
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
