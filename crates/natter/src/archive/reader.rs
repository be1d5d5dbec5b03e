//! Reads one file of the archive, streaming: its encoding (a BOM, else the
//! XML declaration's `encoding`, else UTF-8) is decoded on the way in, and
//! the records come out one at a time, so a file of any size costs a
//! buffer, not its size.
//!
//! A file that ends inside a record (a crash mid-append) gives every
//! complete record and then [`ReadError::Truncated`]; a file that breaks
//! the XML rules anywhere else gives [`ReadError::Malformed`], with the
//! line it was found on.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use encoding_rs::Encoding;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use quick_xml::events::Event;

/// One `<chatcontent>`: a message as the PHP chat wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    pub username: String,
    pub userid: String,
    pub content: String,
    pub pubtime: String,
    pub headpic: String,
    /// Where its element starts in the file.
    pub line: u64,
}

/// One `<chatmember>` of a members file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    pub username: String,
    pub userid: String,
    pub headpic: String,
    pub line: u64,
}

/// What a file holds, in the order it holds it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// The chat's number, `<mass>`.
    Mass(String),
    /// A members file's header (`<member>`, `<lastmodify>`): tells a
    /// members file from a content file even when it lists nobody.
    MembersHeader,
    Message(Entry),
    Member(Member),
}

/// Why a file could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// It ends inside the record that starts at this line (or, between
    /// records, here): the records before are whole.
    Truncated {
        line: u64,
    },
    /// It is not a well-formed chat file.
    Malformed {
        line: u64,
        reason: String,
    },
    Io(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Truncated { line } => write!(f, "line {line}: the file ends mid-record"),
            ReadError::Malformed { line, reason } => write!(f, "line {line}: {reason}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The fields a record collects, by element name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Username,
    Userid,
    Content,
    Pubtime,
    Headpic,
    Other,
}

impl Field {
    fn of(name: &[u8]) -> Field {
        match name {
            b"username" => Field::Username,
            b"userid" => Field::Userid,
            b"content" => Field::Content,
            b"pubtime" => Field::Pubtime,
            b"headpic" => Field::Headpic,
            _ => Field::Other,
        }
    }
}

type Decoded = BufReader<DecodeReaderBytes<File, Vec<u8>>>;

/// A file being read; see the module docs.
pub(crate) struct FileReader {
    xml: quick_xml::Reader<Decoded>,
    buf: Vec<u8>,
    /// The line the reader is on (1-based).
    line: u64,
    /// Open elements, outermost first.
    open: Vec<Vec<u8>>,
    /// The record being read, and the line it started on.
    entry: Option<(bool, Entry)>,
    /// Text of the innermost field being read.
    text: String,
    done: bool,
}

impl FileReader {
    /// Opens `path`, finding its encoding.
    pub fn open(path: &Path) -> Result<FileReader, ReadError> {
        let io = |e: std::io::Error| ReadError::Io(format!("{}: {e}", path.display()));
        let mut head = [0u8; 512];
        let mut file = File::open(path).map_err(io)?;
        let n = read_up_to(&mut file, &mut head).map_err(io)?;
        let declared = declared_encoding(&head[..n])?;
        let file = File::open(path).map_err(io)?;
        let decoded = DecodeReaderBytesBuilder::new()
            .encoding(Some(declared))
            // A BOM says more than a declaration: editors add BOMs and
            // leave declarations alone.
            .bom_override(true)
            .strip_bom(true)
            .build(file);
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, decoded));
        xml.config_mut().check_end_names = true;
        Ok(FileReader {
            xml,
            buf: Vec::with_capacity(1024),
            line: 1,
            open: Vec::new(),
            entry: None,
            text: String::new(),
            done: false,
        })
    }

    /// The file stops here: at the line its unfinished record starts.
    fn truncated(&self) -> ReadError {
        ReadError::Truncated {
            line: self.entry.as_ref().map_or(self.line, |(_, e)| e.line),
        }
    }

    fn malformed(&mut self, reason: impl Into<String>) -> ReadError {
        self.done = true;
        ReadError::Malformed {
            line: self.line,
            reason: reason.into(),
        }
    }

    /// The next record; `None` at the end of a whole file.
    pub fn next_record(&mut self) -> Option<Result<Record, ReadError>> {
        while !self.done {
            // The previous event's lines: `line` is where this one starts.
            self.line += self.buf.iter().filter(|b| **b == b'\n').count() as u64;
            self.buf.clear();
            let line_before = self.line;
            let event = match self.xml.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(quick_xml::Error::Syntax(
                    quick_xml::errors::SyntaxError::InvalidBangMarkup,
                )) => {
                    return Some(Err(
                        self.malformed("a `<!` that starts no comment, CDATA or DOCTYPE")
                    ));
                }
                Err(quick_xml::Error::Syntax(_)) => {
                    // An unclosed tag, comment, CDATA or declaration runs
                    // to the end: the file stops in the middle of one.
                    self.done = true;
                    return Some(Err(self.truncated()));
                }
                Err(quick_xml::Error::Io(e)) => {
                    self.done = true;
                    return Some(Err(ReadError::Io(e.to_string())));
                }
                Err(e) => return Some(Err(self.malformed(e.to_string()))),
            };
            match event {
                Event::Start(start) => {
                    let name = start.name().as_ref().to_vec();
                    match (self.open.len(), name.as_slice()) {
                        (0, b"chatroom") => {}
                        (0, _) => {
                            return Some(Err(self.malformed(format!(
                                "the root element is <{}>, not <chatroom>",
                                String::from_utf8_lossy(&name)
                            ))));
                        }
                        (1, b"chatcontent") => self.entry = Some((true, Entry::default())),
                        (1, b"chatmember") => self.entry = Some((false, Entry::default())),
                        _ => {}
                    }
                    if let Some((_, entry)) = &mut self.entry
                        && self.open.len() == 1
                    {
                        entry.line = line_before;
                    }
                    // Markup inside a field (`a<br/>b`) keeps the field's
                    // text around it.
                    if self.open.len() < 3 {
                        self.text.clear();
                    }
                    self.open.push(name);
                }
                Event::Empty(_) => {
                    if self.open.len() < 3 {
                        self.text.clear();
                    }
                }
                Event::Text(text) => match text.xml10_content() {
                    Ok(t) => self.text.push_str(&t),
                    Err(e) => return Some(Err(self.malformed(e.to_string()))),
                },
                Event::CData(data) => match data.decode() {
                    Ok(t) => self.text.push_str(&t.replace("\r\n", "\n")),
                    Err(e) => return Some(Err(self.malformed(e.to_string()))),
                },
                Event::GeneralRef(reference) => match resolve_reference(&reference) {
                    Some(t) => self.text.push_str(&t),
                    None => {
                        return Some(Err(
                            self.malformed("a character reference names no character")
                        ));
                    }
                },
                Event::End(_) => {
                    let name = self.open.pop().unwrap_or_default();
                    if let Some(record) = self.close(&name) {
                        return Some(Ok(record));
                    }
                }
                Event::Eof => {
                    self.done = true;
                    if !self.open.is_empty() {
                        return Some(Err(self.truncated()));
                    }
                    if self.xml.buffer_position() == 0 {
                        return Some(Err(ReadError::Malformed {
                            line: 1,
                            reason: "the file is empty".into(),
                        }));
                    }
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
        None
    }

    /// What closing element `name` completes, if anything.
    fn close(&mut self, name: &[u8]) -> Option<Record> {
        if self.open.len() >= 3 {
            return None; // markup inside a field: its text stays the field's
        }
        let text = std::mem::take(&mut self.text);
        match self.open.len() {
            // A field of the record being read.
            2 => {
                if let Some((_, entry)) = &mut self.entry {
                    let value = match Field::of(name) {
                        Field::Username => &mut entry.username,
                        Field::Userid => &mut entry.userid,
                        Field::Content => &mut entry.content,
                        Field::Pubtime => &mut entry.pubtime,
                        Field::Headpic => &mut entry.headpic,
                        Field::Other => return None,
                    };
                    *value = text;
                }
                None
            }
            1 => match name {
                b"mass" => Some(Record::Mass(text.trim().to_owned())),
                b"member" | b"lastmodify" => Some(Record::MembersHeader),
                b"chatcontent" | b"chatmember" => {
                    let (is_message, e) = self.entry.take()?;
                    let e = Entry {
                        username: e.username.trim().to_owned(),
                        userid: e.userid.trim().to_owned(),
                        pubtime: e.pubtime.trim().to_owned(),
                        headpic: e.headpic.split_whitespace().collect(),
                        ..e
                    };
                    Some(if is_message {
                        Record::Message(e)
                    } else {
                        Record::Member(Member {
                            username: e.username,
                            userid: e.userid,
                            headpic: e.headpic,
                            line: e.line,
                        })
                    })
                }
                _ => None,
            },
            _ => None,
        }
    }
}

impl Iterator for FileReader {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}

/// The encoding the XML declaration at the start of `head` names, else
/// UTF-8. (A BOM, if any, wins later.)
fn declared_encoding(head: &[u8]) -> Result<&'static Encoding, ReadError> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let Some(rest) = head.strip_prefix(b"<?xml") else {
        return Ok(encoding_rs::UTF_8);
    };
    let end = rest
        .windows(2)
        .position(|w| w == b"?>")
        .unwrap_or(rest.len());
    let decl = String::from_utf8_lossy(&rest[..end]);
    let Some(at) = decl.find("encoding") else {
        return Ok(encoding_rs::UTF_8);
    };
    let value = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')
        .map(str::trim_start)
        .unwrap_or("");
    let label: String = match value.chars().next() {
        Some(q @ ('"' | '\'')) => value[1..].chars().take_while(|c| *c != q).collect(),
        _ => String::new(),
    };
    Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| ReadError::Malformed {
        line: 1,
        reason: format!("the declared encoding {label:?} is not one natter knows"),
    })
}

/// `&amp;` and the other predefined entities, and character references;
/// any other entity (from a DTD natter does not read) stays as written.
fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Option<String> {
    if reference.is_char_ref() {
        return reference
            .resolve_char_ref()
            .ok()
            .flatten()
            .map(String::from);
    }
    let name = reference.decode().ok()?;
    Some(match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(text) => text.to_owned(),
        None => format!("&{name};"),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{FileReader, ReadError, Record};

    fn read(bytes: &[u8]) -> Vec<Result<Record, ReadError>> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        FileReader::open(file.path()).unwrap().collect()
    }

    fn messages(records: &[Result<Record, ReadError>]) -> Vec<(String, String, u64)> {
        records
            .iter()
            .filter_map(|r| match r {
                Ok(Record::Message(e)) => Some((e.userid.clone(), e.content.clone(), e.line)),
                _ => None,
            })
            .collect()
    }

    const CHAT: &str = "<?xml version=\"1.0\" ?>\n<chatroom>\n<mass>215</mass>\n<chatcontent>\n<username>王振兴</username>\n<userid>56</userid>\n<content>你好 [微笑] &amp; &lt;b&gt; &#x4F60;</content>\n<pubtime>1330408066.3712</pubtime>\n<headpic>image/No\nPictures.jpg</headpic>\n</chatcontent>\n<chatcontent><username>郭小宝</username><userid>96</userid><content><![CDATA[<嘿嘿> & 1\n2]]></content><pubtime>1330408077.3831</pubtime><headpic/></chatcontent>\n</chatroom>\n";

    #[test]
    fn a_content_file_gives_its_mass_then_its_messages() {
        let records = read(CHAT.as_bytes());
        assert_eq!(records[0], Ok(Record::Mass("215".into())));
        let Ok(Record::Message(first)) = &records[1] else {
            panic!("{records:?}")
        };
        assert_eq!(first.username, "王振兴");
        assert_eq!(first.content, "你好 [微笑] & <b> 你");
        assert_eq!(first.pubtime, "1330408066.3712");
        assert_eq!(
            first.headpic, "image/NoPictures.jpg",
            "a wrapped path is one path"
        );
        assert_eq!(first.line, 4);
        assert_eq!(
            messages(&records)[1],
            ("96".into(), "<嘿嘿> & 1\n2".into(), 12)
        );
        assert_eq!(records.len(), 3);
    }

    #[test]
    fn a_bom_and_a_gbk_declaration_are_decoded() {
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(CHAT.as_bytes());
        assert_eq!(messages(&read(&with_bom)).len(), 2);

        let gbk_text = CHAT.replace(
            "<?xml version=\"1.0\" ?>",
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>",
        );
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(&gbk_text);
        assert!(!unmappable);
        assert_ne!(&gbk[..], gbk_text.as_bytes(), "really another encoding");
        let got = messages(&read(&gbk));
        assert_eq!(got[0].1, "你好 [微笑] & <b> 你");
    }

    #[test]
    fn a_cut_off_file_gives_its_whole_records_then_says_where_it_stops() {
        let cut = &CHAT[..CHAT.find("<pubtime>1330408077").unwrap() + 12];
        let records = read(cut.as_bytes());
        assert_eq!(messages(&records).len(), 1);
        assert!(
            matches!(records.last(), Some(Err(ReadError::Truncated { line: 12 }))),
            "{records:?}"
        );
        let mid_tag = &CHAT[..CHAT.find("<pubtime>1330408077").unwrap() + 4];
        assert!(matches!(
            read(mid_tag.as_bytes()).last(),
            Some(Err(ReadError::Truncated { .. }))
        ));
    }

    #[test]
    fn broken_xml_is_malformed_with_its_line() {
        let broken = CHAT.replace("</username>\n<userid>56", "</usernme>\n<userid>56");
        let records = read(broken.as_bytes());
        assert!(
            matches!(
                records.last(),
                Some(Err(ReadError::Malformed { line: 5, .. }))
            ),
            "{records:?}"
        );
        assert!(matches!(
            read(b"<chatroom><mass>1</mass><!x></chatroom>").last(),
            Some(Err(ReadError::Malformed { .. }))
        ));
        assert!(matches!(
            read(b"<html><body/></html>").last(),
            Some(Err(ReadError::Malformed { line: 1, .. }))
        ));
        assert!(matches!(
            read(b"").last(),
            Some(Err(ReadError::Malformed { line: 1, .. }))
        ));
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"<?xml version='1.0' encoding='klingon'?><chatroom/>")
            .unwrap();
        assert!(FileReader::open(file.path()).is_err());
    }

    #[test]
    fn markup_inside_a_field_keeps_the_text_around_it() {
        let chat = CHAT.replace("你好 [微笑]", "你<b>好</b><br/> [微笑]");
        assert_eq!(
            messages(&read(chat.as_bytes()))[0].1,
            "你好 [微笑] & <b> 你"
        );
    }

    #[test]
    fn a_members_file_says_so_even_when_empty() {
        let members = "<?xml version=\"1.0\" ?>\n<chatroom>\n<mass>215</mass>\n<member>0</member>\n<lastmodify>1330408401.5466</lastmodify>\n</chatroom>";
        let records = read(members.as_bytes());
        assert!(records.contains(&Ok(Record::MembersHeader)), "{records:?}");
    }
}
