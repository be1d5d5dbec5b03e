//! The one thing PostgreSQL `text` cannot hold: U+0000. The HTTP edge
//! refuses control characters already (text.rs); this guard keeps any
//! other caller (an archive import, a future endpoint) from sending one,
//! with an error instead of a failed statement.

use crate::store::{StoreError, StoreResult};

/// `Aborted` naming the first of `fields` (`(name, value)`) with a NUL.
pub(super) fn no_nul(fields: &[(&str, &str)]) -> StoreResult<()> {
    match fields.iter().find(|(_, value)| value.contains('\0')) {
        Some((name, _)) => Err(StoreError::Aborted(format!(
            "{name} contains U+0000, which PostgreSQL text cannot hold"
        ))),
        None => Ok(()),
    }
}

/// Whether a value to look up contains a NUL: nothing stored does, so a
/// read answers "none" without asking the database.
pub(super) fn has_nul(values: &[&str]) -> bool {
    values.iter().any(|v| v.contains('\0'))
}
