//! `natter backup`: a consistent copy of a data folder's database while
//! natter runs. `VACUUM INTO` reads one snapshot (WAL readers never block
//! the writer, nor it them) and writes a compact new file, which is then
//! checked. Copying `natter.db` alone is not a backup: committed messages
//! may still live only in `natter.db-wal`.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::folder::{self, refused};
use crate::store::StoreError;

/// What a backup holds.
#[derive(Debug)]
pub struct BackupSummary {
    pub users: i64,
    pub rooms: i64,
    pub events: i64,
    pub bytes: u64,
}

/// Copies the database of `data_dir` into a new data folder `dest`
/// (created; refused if it already holds a database) and checks the copy.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<BackupSummary, StoreError> {
    let source = folder::database_path(data_dir);
    if !source.exists() {
        return Err(refused(format!("{} does not exist", source.display())));
    }
    folder::check_file(&source)?;
    let target = folder::database_path(dest);
    if target.exists() {
        return Err(refused(format!(
            "{} already exists: back up into a new folder",
            target.display()
        )));
    }
    std::fs::create_dir_all(dest)
        .map_err(|e| refused(format!("cannot create {}: {e}", dest.display())))?;
    let sql = |what: &str, path: &Path| {
        let what = what.to_owned();
        let path = path.display().to_string();
        move |e: rusqlite::Error| refused(format!("{what} {path}: {e}"))
    };
    let conn = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql("cannot open", &source))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sql("cannot open", &source))?;
    let target_text = target
        .to_str()
        .ok_or_else(|| refused(format!("{} is not a UTF-8 path", target.display())))?;
    conn.execute("VACUUM INTO ?1", [target_text])
        .map_err(sql("cannot copy into", &target))?;
    let copy = Connection::open_with_flags(&target, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql("cannot open the copy", &target))?;
    folder::check_database_readonly(&copy, &target)?;
    let count = |table: &str| -> Result<i64, StoreError> {
        copy.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sql("cannot read the copy", &target))
    };
    Ok(BackupSummary {
        users: count("users")?,
        rooms: count("rooms")?,
        events: count("events")?,
        bytes: std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0),
    })
}
