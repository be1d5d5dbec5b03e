//! `natter export-xml`: natter's rooms written back in the archive's
//! layout, so the PHP front end can read them again (and `import-xml`
//! into a fresh data folder gives the same history back).
//!
//! The paper names no file or folder format, so natter picks one:
//!
//! ```text
//! DIR/titles.txt                          215 = 三年二班 (for import-xml --titles)
//! DIR/2012-02-28/215.xml                  a group's messages of that UTC day
//! DIR/2012-02-28/215-members.xml          its members
//! DIR/<hash>/2012-02-28/chat.xml          a one-to-one chat's messages
//! DIR/<hash>/2012-02-28/members.xml
//! ```
//!
//! Messages are written as they stand now (edited text; deleted ones left
//! out); the format has no place for reactions or replies. A group keeps
//! the `mass` an import gave it, and other rooms take their room id; a
//! one-to-one chat keeps its folder, others get the first 32 hex digits of
//! SHA-256 over their two user ids. User ids are the host site's ids with
//! `--site`, the archive's for accounts an import made, else natter's.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{ChatKey, pubtime_of, utc_date};
use crate::model::{EventBody, Millis, Room, RoomId, RoomKind, User};
use crate::store::{MemberProfile, Store};

/// What an export wrote.
#[derive(Debug, Default)]
pub struct ExportSummary {
    pub rooms: u64,
    pub direct: u64,
    pub messages: u64,
    pub files: u64,
}

/// The id a user has in the archive.
fn xml_id(user: &User, site: Option<&str>) -> String {
    if let Some((prefix, id)) = user.username.split_once(':')
        && Some(prefix) == site
    {
        return id.to_owned();
    }
    match user.username.strip_prefix("xml-") {
        Some(id) if !user.username.contains(':') => id.to_owned(),
        _ => user.id.0.to_string(),
    }
}

/// Text for XML element content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A reader turns a raw CR into a line feed.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Where one chat's files go.
struct ChatPlace {
    mass: String,
    /// `None` for a group: its files lie in the date folders themselves.
    folder: Option<String>,
}

impl ChatPlace {
    fn files(&self, root: &Path, date: &str) -> (PathBuf, PathBuf) {
        match &self.folder {
            None => (
                root.join(date).join(format!("{}.xml", self.mass)),
                root.join(date).join(format!("{}-members.xml", self.mass)),
            ),
            Some(hash) => {
                let day = root.join(hash).join(date);
                (day.join("chat.xml"), day.join("members.xml"))
            }
        }
    }
}

/// The day's content file being written.
struct Day {
    date: String,
    out: BufWriter<File>,
    last_ms: Millis,
}

fn open_day(place: &ChatPlace, root: &Path, date: &str) -> anyhow::Result<Day> {
    let (content, _) = place.files(root, date);
    std::fs::create_dir_all(content.parent().expect("a file in a folder"))?;
    let mut out = BufWriter::new(File::create(&content)?);
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<chatroom>\n<mass>{}</mass>\n",
        escape(&place.mass)
    )?;
    Ok(Day {
        date: date.to_owned(),
        out,
        last_ms: 0,
    })
}

fn close_day(
    day: Day,
    place: &ChatPlace,
    root: &Path,
    members: &[(String, &MemberProfile)],
) -> anyhow::Result<()> {
    let mut out = day.out;
    out.write_all(b"</chatroom>\n")?;
    out.flush()?;
    let (_, members_path) = place.files(root, &day.date);
    let mut m = BufWriter::new(File::create(members_path)?);
    let last = pubtime_of(day.last_ms);
    write!(
        m,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<chatroom>\n<mass>{}</mass>\n<member>{}</member>\n<lastmodify>{last}</lastmodify>\n",
        escape(&place.mass),
        members.len()
    )?;
    for (id, member) in members {
        write!(
            m,
            "<chatmember>\n<username>{}</username>\n<userid>{}</userid>\n<logtime>{}</logtime>\n<mlastmodify>{last}</mlastmodify>\n<chatlastmodify>{last}</chatlastmodify>\n<headpic>{}</headpic>\n<chatkey></chatkey>\n</chatmember>\n",
            escape(&member.user.display_name),
            escape(id),
            day.last_ms / 1000,
            escape(member.user.avatar_url.as_deref().unwrap_or("")),
        )?;
    }
    m.write_all(b"</chatroom>\n")?;
    m.flush()?;
    Ok(())
}

/// Writes every room of `store` under `dir`, which must be empty or new.
pub async fn export(
    store: Arc<dyn Store>,
    dir: &Path,
    site: Option<&str>,
) -> anyhow::Result<ExportSummary> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty: export-xml writes into a new or empty folder",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    let keys: HashMap<RoomId, ChatKey> = store
        .archive_keys()
        .await?
        .into_iter()
        .filter_map(|(k, room)| Some((room, ChatKey::parse(&k)?)))
        .collect();
    let taken: HashSet<String> = keys
        .values()
        .filter_map(|k| match k {
            ChatKey::Group(mass) => Some(mass.clone()),
            ChatKey::Direct(_) => None,
        })
        .collect();
    let mut summary = ExportSummary::default();
    let mut titles = String::from("# mass = title, for natter import-xml --titles\n");
    let mut after = RoomId(0);
    loop {
        let rooms = store.rooms_after(after, 200).await?;
        let Some(last) = rooms.last() else { break };
        after = last.id;
        for room in rooms {
            let members = store.members(room.id).await?;
            let members: Vec<(String, &MemberProfile)> =
                members.iter().map(|m| (xml_id(&m.user, site), m)).collect();
            let place = match (room.kind, keys.get(&room.id)) {
                (RoomKind::Group, Some(ChatKey::Group(mass))) => ChatPlace {
                    mass: mass.clone(),
                    folder: None,
                },
                (RoomKind::Group, _) => {
                    let own = room.id.0.to_string();
                    let mass = if taken.contains(&own) {
                        format!("natter-{own}")
                    } else {
                        own
                    };
                    ChatPlace { mass, folder: None }
                }
                (RoomKind::Direct, key) => {
                    let hash = match key {
                        Some(ChatKey::Direct(hash)) => hash.clone(),
                        _ => {
                            let mut ids: Vec<&str> =
                                members.iter().map(|(id, _)| id.as_str()).collect();
                            ids.sort();
                            let digest = Sha256::digest(ids.join(":").as_bytes());
                            digest[..16].iter().map(|b| format!("{b:02x}")).collect()
                        }
                    };
                    ChatPlace {
                        mass: room.id.0.to_string(),
                        folder: Some(hash),
                    }
                }
            };
            if room.kind == RoomKind::Group {
                summary.rooms += 1;
                titles.push_str(&format!("{} = {}\n", place.mass, room.title));
            } else {
                summary.direct += 1;
            }
            summary.messages += export_room(
                &*store,
                &room,
                &place,
                dir,
                &members,
                site,
                &mut summary.files,
            )
            .await?;
        }
    }
    std::fs::write(dir.join("titles.txt"), titles)?;
    summary.files += 1;
    Ok(summary)
}

/// Writes one room's messages day by day; returns how many.
async fn export_room(
    store: &dyn Store,
    room: &Room,
    place: &ChatPlace,
    root: &Path,
    members: &[(String, &MemberProfile)],
    site: Option<&str>,
    files: &mut u64,
) -> anyhow::Result<u64> {
    let mut day: Option<Day> = None;
    let mut written = 0;
    let mut after = 0;
    let mut names: HashMap<crate::model::UserId, (String, String)> = HashMap::new();
    for (id, m) in members {
        names.insert(
            m.user.id,
            (id.clone(), m.user.avatar_url.clone().unwrap_or_default()),
        );
    }
    loop {
        let events = store.events_after(room.id, after, 500).await?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        for event in events {
            let EventBody::Message {
                redacted: false, ..
            } = &event.body
            else {
                continue;
            };
            let Some(current) = store.message(room.id, event.seq).await? else {
                continue;
            };
            let EventBody::Message { text, .. } = &current.event.body else {
                continue;
            };
            if current.deleted {
                continue;
            }
            let (userid, headpic) = match names.get(&event.sender) {
                Some(known) => known.clone(),
                None => {
                    // Someone who has left since: their id all the same.
                    let user = store.user(event.sender).await?;
                    let known = match user {
                        Some(u) => (xml_id(&u, site), u.avatar_url.unwrap_or_default()),
                        None => (event.sender.0.to_string(), String::new()),
                    };
                    names.insert(event.sender, known.clone());
                    known
                }
            };
            let date = utc_date(event.at);
            // Days only move forward: a message dated before the day
            // being written (a clock set back) joins that day's file, so
            // no file is written twice.
            if day.as_ref().is_none_or(|d| d.date < date) {
                if let Some(done) = day.take() {
                    close_day(done, place, root, members)?;
                    *files += 2;
                }
                day = Some(open_day(place, root, &date)?);
            }
            let d = day.as_mut().expect("a day is open");
            d.last_ms = d.last_ms.max(event.at);
            write!(
                d.out,
                "<chatcontent>\n<username>{}</username>\n<userid>{}</userid>\n<content>{}</content>\n<pubtime>{}</pubtime>\n<headpic>{}</headpic>\n</chatcontent>\n",
                escape(&event.sender_name),
                escape(&userid),
                escape(text),
                pubtime_of(event.at),
                escape(&headpic),
            )?;
            written += 1;
        }
    }
    match day {
        Some(done) => {
            close_day(done, place, root, members)?;
            *files += 2;
        }
        // A room with nobody's messages still has its members.
        None if !members.is_empty() => {
            let done = open_day(place, root, &utc_date(room.created_at))?;
            close_day(done, place, root, members)?;
            *files += 2;
        }
        None => {}
    }
    Ok(written)
}
