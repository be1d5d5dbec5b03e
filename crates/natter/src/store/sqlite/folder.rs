//! The data folder, before anything is written to it: one natter at a
//! time (an exclusive lock), a folder natter can write to, and a
//! `natter.db` that is natter's and whole — anything else stops the start
//! with one line naming the file, rather than being turned into a fresh
//! deployment or failing request by request.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;

/// `PRAGMA application_id` of natter's databases: "NATT".
pub const APPLICATION_ID: i32 = 0x4E41_5454;

/// The exclusive lock on a data folder, held as long as the store is open.
pub struct FolderLock {
    _file: File,
}

/// A refusal to start (or back up), naming the file and why.
pub(super) fn refused(message: String) -> StoreError {
    StoreError::Refused(message)
}

/// Creates the folder if needed, checks that natter can write there, and
/// takes its lock: a second natter on the same folder is refused.
pub fn lock(data_dir: &Path) -> Result<FolderLock, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        refused(format!(
            "cannot create the data folder {}: {e}",
            data_dir.display()
        ))
    })?;
    let probe = data_dir.join(".natter-write-check");
    File::create(&probe)
        .and_then(|mut f| f.write_all(b"ok"))
        .map_err(|e| {
            refused(format!(
                "the data folder {} is not writable: {e}",
                data_dir.display()
            ))
        })?;
    let _ = std::fs::remove_file(&probe);
    let path = data_dir.join("natter.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| refused(format!("cannot open {}: {e}", path.display())))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let by = if holder.is_empty() {
            String::new()
        } else {
            format!(" (process {holder})")
        };
        return Err(refused(format!(
            "another natter{by} is using the data folder {}: only one may run on it",
            data_dir.display()
        )));
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    Ok(FolderLock { _file: file })
}

/// Refuses a `natter.db` that cannot be natter's before SQLite opens it:
/// an empty file, or one that is not an SQLite database at all.
pub fn check_file(path: &Path) -> Result<(), StoreError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // a new deployment
    };
    if meta.len() == 0 {
        return Err(refused(format!(
            "{} is empty (0 bytes), not a natter database: move it away to start a new deployment, or restore the right file",
            path.display()
        )));
    }
    let mut header = [0u8; 16];
    let read = File::open(path).and_then(|mut f| f.read_exact(&mut header));
    if read.is_err() || &header != b"SQLite format 3\0" {
        return Err(refused(format!(
            "{} is not an SQLite database, so not natter's",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses an open database that is not natter's (another program's, or
/// a foreign SQLite file), that SQLite opened read-only, or whose pages
/// fail SQLite's quick check. A database of an earlier natter, from
/// before the application id, is recognised by its deployment id.
pub fn check_database(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |e: rusqlite::Error| refused(format!("cannot read {}: {e}", path.display()));
    if conn
        .is_readonly(rusqlite::DatabaseName::Main)
        .map_err(sql)?
    {
        return Err(refused(format!(
            "{} can only be read, not written: check its permissions and the disk",
            path.display()
        )));
    }
    check_database_readonly(conn, path)
}

/// The checks of [`check_database`] that need no write access: whose
/// database it is, and whether its pages are whole.
pub fn check_database_readonly(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |e: rusqlite::Error| refused(format!("cannot read {}: {e}", path.display()));
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sql)?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(refused(format!(
            "{} belongs to another program (application id {application_id:#x}), not natter",
            path.display()
        )));
    }
    if application_id == 0 {
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        let natters: bool = tables > 0
            && conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'deployment_id'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .unwrap_or(None)
                .is_some();
        if tables > 0 && !natters {
            return Err(refused(format!(
                "{} is an SQLite database, but not natter's",
                path.display()
            )));
        }
    }
    let verdict: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(sql)?;
    if verdict != "ok" {
        return Err(refused(format!(
            "{} is damaged ({verdict}): restore it from a backup (docs/operations.md)",
            path.display()
        )));
    }
    Ok(())
}

/// Marks the database as natter's.
pub fn mark(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
}

/// Where the database lives in a data folder.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("natter.db")
}
