//! The first pass of an import (import.rs): every `.xml` file read once,
//! streaming, to learn its chat (by `mass`, or its one-to-one folder),
//! whether it holds messages or members, where its messages start in
//! time, and who is in it. A file that breaks the XML rules marks its chat
//! as skipped (with file and line); a file cut off mid-record keeps its
//! whole records. It holds files and people, never messages.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::import::Skip;
use super::reader::{Entry, FileReader, ReadError, Record};
use super::{ChatKey, direct_folder, pubtime_ms, xml_files};
use crate::progress::Progress;

/// Someone the archive names.
#[derive(Clone, Debug, Default)]
pub(super) struct Person {
    pub name: String,
    pub headpic: String,
    /// Named by a members file, whose name wins over messages'.
    from_members: bool,
}

/// What the survey learnt of one chat.
#[derive(Default)]
pub(super) struct ChatPlan {
    /// Content files by the time of their first message, then name.
    pub content: Vec<(i64, PathBuf)>,
    /// User ids in the order first met: members files first, then senders.
    pub people: Vec<String>,
    met: HashSet<String>,
    pub messages: u64,
    pub first_ms: Option<i64>,
    /// Why the chat cannot be imported.
    pub broken: Option<Skip>,
}

impl ChatPlan {
    fn meet(&mut self, userid: &str) {
        if self.met.insert(userid.to_owned()) {
            self.people.push(userid.to_owned());
        }
    }
}

/// The survey of the whole archive.
#[derive(Default)]
pub(super) struct Survey {
    pub chats: BTreeMap<ChatKey, ChatPlan>,
    pub people: HashMap<String, Person>,
    pub skipped: Vec<Skip>,
    pub files: usize,
}

/// A user id natter can keep: what the PHP chat's MySQL ids look like.
fn valid_userid(userid: &str) -> bool {
    (1..=64).contains(&userid.len())
        && userid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn place(file: &Path, line: u64) -> String {
    format!("{}:{line}", file.display())
}

/// Reads every file once; see the module docs.
pub(super) fn survey(root: &Path, progress: &Progress) -> anyhow::Result<Survey> {
    let mut survey = Survey::default();
    let files =
        xml_files(root).map_err(|e| anyhow::anyhow!("cannot list {}: {e}", root.display()))?;
    survey.files = files.len();
    for (n, file) in files.iter().enumerate() {
        progress.note(&format!("surveying {} of {} files", n + 1, files.len()));
        survey.file(root, file);
    }
    Ok(survey)
}

impl Survey {
    fn file(&mut self, root: &Path, file: &Path) {
        let skip = |reason: String| Skip {
            place: file.display().to_string(),
            reason,
        };
        let direct = direct_folder(root, file);
        let reader = match (FileReader::open(file), &direct) {
            (Ok(r), _) => r,
            // A one-to-one folder names its chat: it is skipped whole
            // rather than imported without this file.
            (Err(e), Some(hash)) => {
                let key = ChatKey::Direct(hash.clone());
                let reason = format!("{e}: chat {} is skipped", key.stored());
                let plan = self.chats.entry(key).or_default();
                plan.broken.get_or_insert(skip(reason));
                return;
            }
            (Err(e), None) => {
                self.skipped.push(skip(e.to_string()));
                return;
            }
        };
        let mut mass = None;
        let mut members = Vec::new();
        let mut is_members = false;
        let mut failure = None;
        let mut first_ms = None;
        let mut message_count = 0u64;
        let mut senders: Vec<String> = Vec::new();
        let mut seen_senders = HashSet::new();
        for record in reader {
            match record {
                Ok(Record::Mass(m)) => mass = Some(m),
                Ok(Record::MembersHeader) => is_members = true,
                Ok(Record::Member(m)) => {
                    is_members = true;
                    if valid_userid(&m.userid) {
                        self.people.insert(
                            m.userid.clone(),
                            Person {
                                name: m.username,
                                headpic: m.headpic,
                                from_members: true,
                            },
                        );
                        members.push(m.userid);
                    } else {
                        self.skipped.push(Skip {
                            place: place(file, m.line),
                            reason: format!("the member's userid {:?} is not an id", m.userid),
                        });
                    }
                }
                Ok(Record::Message(e)) => {
                    if let Some(reason) = unusable(&e) {
                        self.skipped.push(Skip {
                            place: place(file, e.line),
                            reason,
                        });
                        continue;
                    }
                    let ms = pubtime_ms(&e.pubtime).expect("checked by unusable");
                    first_ms = Some(first_ms.map_or(ms, |f: i64| f.min(ms)));
                    message_count += 1;
                    let person = self.people.entry(e.userid.clone()).or_default();
                    // A members file's name wins; else the latest a message gave.
                    if !person.from_members {
                        person.name = e.username.clone();
                        if !e.headpic.is_empty() {
                            person.headpic = e.headpic.clone();
                        }
                    }
                    if seen_senders.insert(e.userid.clone()) {
                        senders.push(e.userid.clone());
                    }
                }
                Err(ReadError::Truncated { line }) => {
                    self.skipped.push(Skip {
                        place: place(file, line),
                        reason: "the file ends mid-record (cut off while it was written?): the record from here on is left out".into(),
                    });
                }
                Err(e) => failure = Some(e),
            }
        }
        let key = match (direct, &mass) {
            (Some(hash), _) => ChatKey::Direct(hash),
            (None, Some(m)) if valid_userid(m) => ChatKey::Group(m.clone()),
            (None, Some(m)) => {
                self.skipped
                    .push(skip(format!("<mass>{m}</mass> is not a chat number")));
                return;
            }
            (None, None) => {
                let reason = match failure {
                    Some(e) => format!("{e} (before any <mass>)"),
                    None => "no <mass>: not a chat file".into(),
                };
                self.skipped.push(skip(reason));
                return;
            }
        };
        let plan = self.chats.entry(key.clone()).or_default();
        if let Some(e) = failure {
            let (line, reason) = match &e {
                ReadError::Malformed { line, reason } => (*line, reason.clone()),
                other => (0, other.to_string()),
            };
            plan.broken.get_or_insert(Skip {
                place: place(file, line),
                reason: format!("{reason}: chat {} is skipped", key.stored()),
            });
            return;
        }
        for m in &members {
            plan.meet(m);
        }
        for s in &senders {
            plan.meet(s);
        }
        if message_count > 0 || !is_members {
            plan.messages += message_count;
            plan.content
                .push((first_ms.unwrap_or(i64::MAX), file.to_path_buf()));
            plan.first_ms = match (plan.first_ms, first_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
}

/// Why a message cannot be imported, if it cannot.
pub(super) fn unusable(e: &Entry) -> Option<String> {
    if !valid_userid(&e.userid) {
        return Some(format!("the sender's userid {:?} is not an id", e.userid));
    }
    if pubtime_ms(&e.pubtime).is_none() {
        return Some(format!("pubtime {:?} is not a time", e.pubtime));
    }
    None
}
