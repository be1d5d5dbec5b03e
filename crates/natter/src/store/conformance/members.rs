//! Who is in a room and what they hold there: membership windows, read
//! markers, notification choices and the peer's read marker, people
//! searches and member pages.

use std::sync::Arc;

use super::{act, appended, join, named, room, send, summary, unchanged, user};
use crate::model::{NotifyLevel, Role, RoomKind, UserId};
use crate::store::{
    Action, MemberPlace, MemberQuery, PeopleQuery, ProfilePatch, Store, StoreError,
};

pub(super) async fn membership_windows(store: Arc<dyn Store>) {
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

pub(super) async fn read_markers_move_forward_within_the_room(store: Arc<dyn Store>) {
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

pub(super) async fn notification_choices_and_the_peers_read_marker(store: Arc<dyn Store>) {
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

pub(super) async fn people_searches(store: Arc<dyn Store>) {
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

pub(super) async fn member_pages(store: Arc<dyn Store>) {
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
