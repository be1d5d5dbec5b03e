//! `natter import-xml`: an archive in, chat by chat.
//!
//! 1. **Survey** (survey.rs): every `.xml` file is read once, streaming, to learn its
//!    chat (by `mass`, or its one-to-one folder), whether it holds
//!    messages or members, where its messages start in time, and who is in
//!    it. A file that breaks the XML rules marks its chat as skipped (with
//!    file and line); a file cut off mid-record keeps its whole records.
//! 2. **People**: each user id becomes one natter user — with `--site`,
//!    that host site's user of that id (the same person signs in through
//!    the site's tokens and sees their history); without it, a local
//!    account `xml-<id>` that has no usable password (the `xml-` prefix
//!    is reserved, so nobody can register such an account first and
//!    receive the history).
//! 3. **Chats**: each chat is imported in one transaction of the store
//!    (`Store::import_chat`): its room (found again by its key on a second
//!    run), its members, then its messages read again from disk, merged
//!    from its files in `pubtime` order (a file's own records keep their
//!    order), so seqs follow the times people wrote. A message's client id
//!    comes from its time, its sender and its rank among equal ones, so a
//!    second run stores nothing twice and a run after new days were added
//!    imports only those.
//!
//! Memory holds the survey (files and people), never the messages.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::reader::{Entry, FileReader, ReadError, Record};
use super::survey::{ChatPlan, Survey, place, survey, unusable};
use super::{ChatKey, pubtime_ms};
use crate::model::{UserId, now_ms};
use crate::progress::Progress;
use crate::store::{
    ImportChat, ImportMessage, ImportSource, NewUser, ProfilePatch, Store, StoreError,
};
use crate::text::{AvatarUrl, DisplayName, IMPORTED_PREFIX, MessageText, Username};

/// What to import and how.
pub struct ImportOptions {
    pub dir: PathBuf,
    /// The configured host site whose users the archive's user ids are.
    pub site: Option<String>,
    /// Group titles by `mass` (from `--titles`); others are `mass N`.
    pub titles: HashMap<String, String>,
    /// Resolves relative `headpic` paths into avatar URLs.
    pub headpic_base: Option<String>,
    /// Survey only: say what would be done, write nothing.
    pub dry_run: bool,
    /// The server's longest message: longer ones are skipped and reported.
    pub max_message_chars: usize,
}

/// Something left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// `file:line`, a file, or a chat.
    pub place: String,
    pub reason: String,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Default)]
pub struct Summary {
    pub files: usize,
    pub users_created: u64,
    pub users_found: u64,
    pub rooms_created: u64,
    pub direct_created: u64,
    pub chats: u64,
    /// Messages the archive holds that can be imported.
    pub messages_found: u64,
    pub messages_imported: u64,
    pub messages_already: u64,
    /// Messages at a place an earlier import stored with another text.
    pub messages_conflicting: u64,
    /// New messages of people who have left their room since an earlier
    /// import: not added (nobody is put back into a room they left).
    pub messages_from_leavers: u64,
    pub skipped: Vec<Skip>,
    pub seconds: f64,
}

/// An avatar URL for a `headpic`: absolute URLs as they are, paths against
/// `base`; the PHP chat's "no picture" placeholder is no avatar.
fn avatar_of(headpic: &str, base: Option<&str>) -> Option<String> {
    if headpic.is_empty() || headpic.contains("NoPictures") {
        return None;
    }
    let lower = headpic.to_ascii_lowercase();
    let url = if lower.starts_with("http://") || lower.starts_with("https://") {
        headpic.to_owned()
    } else {
        let base = base?;
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            headpic.trim_start_matches('/')
        )
    };
    AvatarUrl::parse(&url).ok().map(AvatarUrl::into_string)
}

/// A display name for someone the archive names as `name`.
fn display_name(name: &str, userid: &str) -> String {
    DisplayName::parse(name)
        .map(DisplayName::into_string)
        .unwrap_or_else(|_| format!("user {userid}"))
}

/// Finds or creates the natter user of each user id; returns ids and
/// names. A dry run (`opts.dry_run`) only counts who would be created.
async fn people(
    store: &dyn Store,
    survey: &Survey,
    opts: &ImportOptions,
    summary: &mut Summary,
) -> anyhow::Result<HashMap<String, (UserId, String)>> {
    let needed: std::collections::BTreeSet<&String> = survey
        .chats
        .values()
        .filter(|c| c.broken.is_none())
        .flat_map(|c| c.people.iter())
        .collect();
    let mut unusable_hash = None;
    let mut found = HashMap::new();
    let mut local_names: HashMap<String, &String> = HashMap::new();
    for userid in needed {
        let person = survey.people.get(userid).cloned().unwrap_or_default();
        let name = display_name(&person.name, userid);
        let avatar = avatar_of(&person.headpic, opts.headpic_base.as_deref());
        let user = match &opts.site {
            Some(site) => match store.site_user(site, userid).await? {
                Some(user) => {
                    summary.users_found += 1;
                    user
                }
                None if opts.dry_run => {
                    summary.users_created += 1;
                    continue;
                }
                None => {
                    summary.users_created += 1;
                    store
                        .upsert_site_user(site, userid, name.clone(), avatar, now_ms())
                        .await?
                }
            },
            None => {
                // `xml-<id>`, lower-cased: an id too long for a user name,
                // or one that differs from another only in case, cannot
                // have an account of its own here (--site keeps ids whole).
                let Ok(username) = Username::parse(&format!("{IMPORTED_PREFIX}{userid}")) else {
                    summary.skipped.push(Skip {
                        place: format!("user {userid}"),
                        reason: format!(
                            "too long for a local account name (`{IMPORTED_PREFIX}` and at most {} characters): their messages are left out; --site keeps such ids",
                            crate::text::USERNAME_MAX_CHARS - IMPORTED_PREFIX.len()
                        ),
                    });
                    continue;
                };
                if let Some(other) = local_names.insert(username.as_str().to_owned(), userid) {
                    summary.skipped.push(Skip {
                        place: format!("user {userid}"),
                        reason: format!(
                            "differs from user {other} only in case, and both would be the local account {}: their messages are left out; --site keeps such ids apart",
                            username.as_str()
                        ),
                    });
                    continue;
                }
                match store.credentials(username.as_str()).await? {
                    Some(c) => {
                        summary.users_found += 1;
                        c.user
                    }
                    None if opts.dry_run => {
                        summary.users_created += 1;
                        continue;
                    }
                    None => {
                        let hash = match &unusable_hash {
                            Some(h) => String::clone(h),
                            None => unusable_hash.insert(unusable_password_hash()?).clone(),
                        };
                        summary.users_created += 1;
                        let user = store
                            .create_user(NewUser {
                                username: username.as_str().to_owned(),
                                display_name: name.clone(),
                                password_hash: hash,
                                at: now_ms(),
                                invite: None,
                            })
                            .await?;
                        if avatar.is_some() {
                            store
                                .update_profile(
                                    user.id,
                                    ProfilePatch {
                                        display_name: None,
                                        avatar_url: Some(avatar),
                                    },
                                )
                                .await?
                        } else {
                            user
                        }
                    }
                }
            }
        };
        found.insert(userid.clone(), (user.id, name));
    }
    Ok(found)
}

/// A real argon2 hash of a random password nobody keeps: imported local
/// accounts exist, and no password signs them in.
fn unusable_password_hash() -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let secret: [u8; 32] = rand::random();
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(&secret, &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// The messages of one chat, read again from its files and merged in
/// `pubtime` order: a chat's files may overlap in time (two folders of one
/// pair, a day file written past midnight), and its seqs follow the times
/// people wrote. Files open only when their first message is due, so a
/// chat of years of day files holds one or two open at a time. A file's
/// own records keep their order.
struct ChatMessages {
    /// Files not opened yet, by the time of their first message.
    waiting: VecDeque<(i64, PathBuf)>,
    /// Open files, each with its next message read.
    open: Vec<OpenFile>,
    users: Arc<HashMap<String, (UserId, String)>>,
    max_chars: usize,
    /// The time of the last message, and per sender how many messages
    /// of that same millisecond came before: a message's rank.
    last: Option<(i64, HashMap<String, u32>)>,
    skipped: Arc<Mutex<Vec<Skip>>>,
    read: Arc<AtomicU64>,
}

/// A file being read, and its next message with its time.
struct OpenFile {
    path: PathBuf,
    reader: FileReader,
    next: (i64, Entry),
}

impl ChatMessages {
    fn new(
        files: Vec<(i64, PathBuf)>,
        users: Arc<HashMap<String, (UserId, String)>>,
        max_chars: usize,
        skipped: Arc<Mutex<Vec<Skip>>>,
        read: Arc<AtomicU64>,
    ) -> ChatMessages {
        ChatMessages {
            waiting: files.into(),
            open: Vec::new(),
            users,
            max_chars,
            last: None,
            skipped,
            read,
        }
    }

    /// Opens the waiting files whose first message comes no later than
    /// the earliest next message of those open.
    fn open_due(&mut self) -> Result<(), String> {
        loop {
            let earliest = self.open.iter().map(|f| f.next.0).min();
            match self.waiting.front() {
                Some((first, _)) if earliest.is_none_or(|e| *first <= e) => {}
                _ => return Ok(()),
            }
            let (_, path) = self.waiting.pop_front().expect("a file waits");
            let mut reader =
                FileReader::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(next) = next_message(&path, &mut reader)? {
                self.open.push(OpenFile { path, reader, next });
            }
        }
    }

    /// The earliest next message of the open files (the first opened on a
    /// tie), and that file's message after it read.
    fn take_earliest(&mut self) -> Result<Option<(PathBuf, Entry, i64)>, String> {
        self.open_due()?;
        let Some(at) = (0..self.open.len()).min_by_key(|&i| self.open[i].next.0) else {
            return Ok(None);
        };
        let file = &mut self.open[at];
        let path = file.path.clone();
        let (ms, entry) = match next_message(&file.path, &mut file.reader)? {
            Some(after) => std::mem::replace(&mut file.next, after),
            None => self.open.remove(at).next,
        };
        Ok(Some((path, entry, ms)))
    }
}

/// The next message of `reader` the survey found usable, with its time;
/// `None` at the file's end (or where it was cut off).
fn next_message(path: &Path, reader: &mut FileReader) -> Result<Option<(i64, Entry)>, String> {
    loop {
        match reader.next_record() {
            None | Some(Err(ReadError::Truncated { .. })) => return Ok(None),
            Some(Err(e)) => return Err(format!("{}: {e}", path.display())),
            Some(Ok(Record::Message(entry))) => {
                // Those the survey reported as unusable are left out.
                if let Some(ms) = pubtime_ms(&entry.pubtime).filter(|_| unusable(&entry).is_none())
                {
                    return Ok(Some((ms, entry)));
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

impl Iterator for ChatMessages {
    type Item = Result<ImportMessage, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (path, entry, ms) = match self.take_earliest() {
                Ok(Some(next)) => next,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let Some((sender, _)) = self.users.get(&entry.userid).cloned() else {
                continue;
            };
            let text = match MessageText::parse(&entry.content, self.max_chars) {
                Ok(text) => text.into_string(),
                Err(e) => {
                    self.skipped.lock().expect("skips poisoned").push(Skip {
                        place: place(&path, entry.line),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let same_ms = match &mut self.last {
                Some((t, ranks)) if *t == ms => ranks,
                last => &mut last.insert((ms, HashMap::new())).1,
            };
            let counter = same_ms.entry(entry.userid.clone()).or_insert(0);
            let rank = *counter;
            *counter += 1;
            self.read.fetch_add(1, Ordering::Relaxed);
            let name = display_name(&entry.username, &entry.userid);
            return Some(Ok(ImportMessage {
                sender,
                sender_name: name,
                at: ms,
                client_msg_id: format!("xml:{ms}:{}:{rank}", entry.userid),
                text,
            }));
        }
    }
}

/// Imports the archive under `opts.dir` into `store`; see the module docs.
pub async fn import(store: Arc<dyn Store>, opts: ImportOptions) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let progress = Progress::new();
    let mut survey = {
        let root = opts.dir.clone();
        let p = progress.share();
        tokio::task::spawn_blocking(move || survey(&root, &p)).await??
    };
    let mut summary = Summary {
        files: survey.files,
        skipped: std::mem::take(&mut survey.skipped),
        ..Summary::default()
    };
    for (key, plan) in &survey.chats {
        if let Some(broken) = &plan.broken {
            summary.skipped.push(broken.clone());
        } else if plan.people.is_empty() {
            summary.skipped.push(Skip {
                place: key.stored(),
                reason: "nobody is in this chat: nothing to import".into(),
            });
        } else if matches!(key, ChatKey::Direct(_)) && plan.people.len() != 2 {
            summary.skipped.push(Skip {
                place: key.stored(),
                reason: format!(
                    "a one-to-one folder with {} people in it: skipped",
                    plan.people.len()
                ),
            });
        }
    }
    let importable = |key: &ChatKey, plan: &ChatPlan| {
        plan.broken.is_none()
            && !plan.people.is_empty()
            && (matches!(key, ChatKey::Group(_)) || plan.people.len() == 2)
    };
    survey.chats.retain(|k, p| importable(k, p));
    summary.messages_found = survey.chats.values().map(|c| c.messages).sum();
    if opts.dry_run {
        let known: HashMap<String, _> = store.archive_keys().await?.into_iter().collect();
        for (key, plan) in &survey.chats {
            let fresh = !known.contains_key(&key.stored());
            let counter = match key {
                ChatKey::Group(_) => &mut summary.rooms_created,
                ChatKey::Direct(_) => &mut summary.direct_created,
            };
            *counter += u64::from(fresh);
            summary.chats += 1;
            println!(
                "{}: {} people, {} messages in {} files{}",
                key.stored(),
                plan.people.len(),
                plan.messages,
                plan.content.len(),
                if fresh { "" } else { " (imported before)" }
            );
        }
        people(&*store, &survey, &opts, &mut summary).await?;
        progress.finish();
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let users = Arc::new(people(&*store, &survey, &opts, &mut summary).await?);
    let community = Some(opts.site.clone().unwrap_or_default());
    let skipped = Arc::new(Mutex::new(Vec::new()));
    let read = Arc::new(AtomicU64::new(0));
    let total = summary.messages_found;
    let (chats, mut chat_number) = (survey.chats.len(), 0);
    let importing = Instant::now();
    progress.set_total(total);
    for (key, mut plan) in std::mem::take(&mut survey.chats) {
        plan.content.sort();
        let members = plan
            .people
            .iter()
            .filter_map(|p| users.get(p).cloned())
            .collect();
        let title = match &key {
            ChatKey::Group(mass) => opts
                .titles
                .get(mass)
                .cloned()
                .unwrap_or_else(|| format!("mass {mass}")),
            ChatKey::Direct(_) => String::new(),
        };
        let chat = ImportChat {
            key: key.stored(),
            direct: matches!(key, ChatKey::Direct(_)),
            title,
            community: community.clone(),
            members,
            at: plan.first_ms.unwrap_or_else(now_ms),
        };
        let files = plan.content.len();
        let messages: ImportSource = Box::new(ChatMessages::new(
            plan.content,
            users.clone(),
            opts.max_message_chars,
            skipped.clone(),
            read.clone(),
        ));
        chat_number += 1;
        let ticker = {
            let (read, p) = (read.clone(), progress.share());
            let label = format!(
                "chat {chat_number} of {chats} ({}, {files} files)",
                key.stored()
            );
            tokio::spawn(async move {
                loop {
                    let done = read.load(Ordering::Relaxed);
                    let rate = done as f64 / importing.elapsed().as_secs_f64().max(0.001);
                    p.set_done(done);
                    p.note(&format!(
                        "{label}: {done} of {total} messages read ({rate:.0}/s)"
                    ));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let outcome = store.import_chat(chat, messages).await;
        ticker.abort();
        match outcome {
            Ok(done) => {
                summary.chats += 1;
                match (done.created, &key) {
                    (true, ChatKey::Group(_)) => summary.rooms_created += 1,
                    (true, ChatKey::Direct(_)) => summary.direct_created += 1,
                    _ => {}
                }
                summary.messages_imported += done.appended;
                summary.messages_already += done.already;
                summary.messages_conflicting += done.conflicting;
                summary.messages_from_leavers += done.from_leavers;
            }
            Err(StoreError::Aborted(reason)) => summary.skipped.push(Skip {
                place: key.stored(),
                reason: format!("{reason}: nothing of this chat was written"),
            }),
            Err(e) => return Err(e.into()),
        }
    }
    progress.finish();
    summary
        .skipped
        .extend(skipped.lock().expect("skips poisoned").drain(..));
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Reads a `--titles` file: lines `215 = 三年二班`; `#` starts a comment.
pub fn read_titles(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut titles = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (mass, title) = line.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("{}:{}: expected `mass = title`", path.display(), n + 1)
        })?;
        let title = crate::text::RoomTitle::parse(title.trim())
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        titles.insert(mass.trim().to_owned(), title.into_string());
    }
    Ok(titles)
}
