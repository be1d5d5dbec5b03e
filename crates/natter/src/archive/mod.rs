//! The XML chat archive of the PHP long-polling chat natter grows out of
//! (section 3.3 of the paper in `shared/seed/`): `natter import-xml` moves
//! a site's years of chat in, `natter export-xml` writes natter's rooms
//! back out in the same layout, so the old front end can read them.
//!
//! The layout, as the paper gives it: folders by date (in no named
//! format, nested any way); per chat a content file
//! (`<chatroom><mass/><chatcontent>…`) and a members file
//! (`<chatroom><mass/><member/><lastmodify/><chatmember>…`), told apart
//! by what they hold, not by their names; group chats keyed by `mass`;
//! one-to-one chats in a folder named by a hash of the two user ids.
//! docs/migrating.md walks a site owner through it.
//!
//! `reader.rs` reads one file, streaming; `survey.rs` reads every file
//! once to plan an import; `import.rs` imports chat by chat, each in one
//! transaction of the store (`crate::progress` shows how far it is);
//! `export.rs` writes the layout back.

pub mod export;
pub mod import;
pub mod reader;
mod survey;

use std::path::{Path, PathBuf};

/// How a chat is named in the store (`archive_chats`): by its `mass` for
/// a group, by its folder's hash for a one-to-one chat.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ChatKey {
    Group(String),
    Direct(String),
}

impl ChatKey {
    /// The stored form: `mass:215`, `direct:<hash>`.
    pub fn stored(&self) -> String {
        match self {
            ChatKey::Group(mass) => format!("mass:{mass}"),
            ChatKey::Direct(hash) => format!("direct:{hash}"),
        }
    }

    /// From the stored form.
    pub fn parse(stored: &str) -> Option<ChatKey> {
        match stored.split_once(':')? {
            ("mass", mass) => Some(ChatKey::Group(mass.to_owned())),
            ("direct", hash) => Some(ChatKey::Direct(hash.to_owned())),
            _ => None,
        }
    }
}

/// The hash folder a file lies in, if any: a folder whose name is 16 or
/// more hex digits holds one one-to-one chat.
pub(crate) fn direct_folder(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?;
    relative
        .parent()?
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .find(|name| name.len() >= 16 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}

/// The `.xml` files under `root`, at any depth, in name order.
pub(crate) fn xml_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Milliseconds since the epoch from a `pubtime` (seconds, with or without
/// a fraction); `None` for anything else.
pub(crate) fn pubtime_ms(pubtime: &str) -> Option<i64> {
    let (whole, fraction) = pubtime.split_once('.').unwrap_or((pubtime, ""));
    if whole.is_empty()
        || whole.len() > 12
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let digits: String = fraction.chars().chain("000".chars()).take(4).collect();
    let tenths_of_ms: i64 = digits.parse().ok()?;
    Some(seconds * 1000 + (tenths_of_ms + 5) / 10)
}

/// A `pubtime` for milliseconds since the epoch.
pub(crate) fn pubtime_of(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// `YYYY-MM-DD` (UTC) of milliseconds since the epoch: the export's date
/// folders.
pub fn utc_date(ms: i64) -> String {
    // Days to civil date, after Howard Hinnant's `civil_from_days`.
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{ChatKey, direct_folder, pubtime_ms, pubtime_of, utc_date};

    #[test]
    fn pubtimes_are_read_to_the_millisecond() {
        assert_eq!(pubtime_ms("1330408066.3712"), Some(1_330_408_066_371));
        assert_eq!(pubtime_ms("1330408066.3716"), Some(1_330_408_066_372));
        assert_eq!(pubtime_ms("1330408524.13"), Some(1_330_408_524_130));
        assert_eq!(pubtime_ms("1330408062"), Some(1_330_408_062_000));
        for bad in ["", ".5", "-1", "1e9", "12.3.4", "13304080620000000", "abc"] {
            assert_eq!(pubtime_ms(bad), None, "{bad}");
        }
        assert_eq!(
            pubtime_ms(&pubtime_of(1_330_408_066_371)),
            Some(1_330_408_066_371)
        );
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_330_408_066_371), "2012-02-28");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn keys_and_hash_folders() {
        let key = ChatKey::Direct("ab12".into());
        assert_eq!(ChatKey::parse(&key.stored()), Some(key));
        assert_eq!(
            ChatKey::parse("mass:215"),
            Some(ChatKey::Group("215".into()))
        );
        assert_eq!(ChatKey::parse("other:1"), None);
        let root = Path::new("/a");
        assert_eq!(
            direct_folder(root, Path::new("/a/0123456789ABCDEF0123/2012-02-28/x.xml")),
            Some("0123456789abcdef0123".into())
        );
        assert_eq!(
            direct_folder(root, Path::new("/a/2012-02-28/215.xml")),
            None
        );
        assert_eq!(direct_folder(root, Path::new("/a/20120228/x.xml")), None);
    }
}
