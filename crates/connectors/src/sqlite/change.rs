//! How the SQLite connector's changes are noticed, and `sql_scalar`, the
//! function it lends to trigger scripts.
//!
//! With `delta` (a changelog table or a change-tracking column), a **poll**:
//! `SELECT max(<sequence or tracking column>) FROM <table>` on the database
//! opened read-only; the answer moves whenever a change is recorded. The
//! database file can also be watched, but that offer is not proposed: in
//! WAL mode a write lands in the `-wal` file and reaches the database file
//! only at a checkpoint.

use super::config::{DeltaConfig, SqliteSettings};
use super::db::{file_error, q};
use crate::settings::Settings;
use crate::watch::{shown_or_key, shown_text};
use autosync_connector::{
    ChangeDetection, ChangeOffer, ChangeOfferKind, ChangeProbe, ConnectorError, FileWatchOffer,
    PollOffer, ScriptFunction, ScriptValue,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What an SQLite MA whose settings are `s` offers (`shown`: as written).
pub fn detection(s: &SqliteSettings, shown: &Settings) -> ChangeDetection {
    let shown_path = shown_text(shown, &["path"]);
    let file = shown_path.as_deref().unwrap_or("its database file");
    let watch = ChangeOffer {
        kind: ChangeOfferKind::FileWatch(FileWatchOffer {
            path: s.path.clone(),
            shown_path: shown_path.clone(),
            content: None,
        }),
        proposed: false,
        sentence: format!(
            "sqlite connector: a file watch on {file} (in WAL mode a write reaches the file only at a checkpoint)"
        ),
    };
    let Some(delta) = &s.delta else {
        return ChangeDetection {
            offers: vec![watch],
            why_none: Some(
                "sqlite connector without `delta` (no changelog or change-tracking column to poll; the database file is not watched: in WAL mode its writes land in the -wal file)"
                    .into(),
            ),
        };
    };
    let ident = |path: &[&str]| match shown_text(shown, path) {
        Some(name) => q(&name),
        None => shown_or_key(shown, path),
    };
    let (table, column, shown_table, shown_column, what) = match delta {
        DeltaConfig::Changelog {
            table,
            sequence_column,
            ..
        } => (
            table,
            sequence_column,
            ident(&["delta", "table"]),
            ident(&["delta", "sequence_column"]),
            "changelog",
        ),
        DeltaConfig::Column { column } => (
            &s.table,
            column,
            ident(&["table"]),
            ident(&["delta", "column"]),
            "change-tracking column",
        ),
    };
    let probe = SqliteProbe {
        path: s.path.clone(),
        query: format!("SELECT max({}) FROM {}", q(column), q(table)),
        busy_timeout: Duration::from_millis(s.busy_timeout_ms),
    };
    let poll = ChangeOffer {
        kind: ChangeOfferKind::Poll(PollOffer {
            probe: Arc::new(probe),
        }),
        proposed: true,
        sentence: format!(
            "sqlite connector with a {what}: a change poll asks {file} for `SELECT max({shown_column}) FROM {shown_table}`"
        ),
    };
    ChangeDetection {
        offers: vec![poll, watch],
        why_none: None,
    }
}

/// Reads the largest sequence number or tracking value.
#[derive(Clone, Debug)]
pub struct SqliteProbe {
    pub path: PathBuf,
    /// `SELECT max(...) FROM ...`, identifiers quoted.
    pub query: String,
    pub busy_timeout: Duration,
}

impl ChangeProbe for SqliteProbe {
    fn token(&self) -> Result<Option<String>, ConnectorError> {
        let busy_ms = u64::try_from(self.busy_timeout.as_millis()).unwrap_or(u64::MAX);
        let value = scalar(&self.path, &self.query, self.busy_timeout)
            .map_err(|e| file_error(&e, &self.path, busy_ms, "cannot poll for changes"))?;
        Ok(match value {
            ScriptValue::Unit => None,
            ScriptValue::Integer(i) => Some(i.to_string()),
            ScriptValue::Float(f) => Some(f.to_string()),
            ScriptValue::Text(t) => Some(t),
            ScriptValue::Bytes(b) => Some(b.iter().fold(String::new(), |mut out, byte| {
                let _ = write!(out, "{byte:02x}");
                out
            })),
        })
    }
}

/// `sql_scalar(sqlite_path, query)` for trigger scripts.
pub const SQL_SCALAR: ScriptFunction = ScriptFunction {
    name: "sql_scalar",
    params: &["sqlite_path", "query"],
    doc: "the first column of the first row of a query on an SQLite file opened read-only (`()` when no row)",
    call: sql_scalar,
};

/// How long `sql_scalar` waits for a locked database.
const SQL_SCALAR_BUSY: Duration = Duration::from_secs(5);

fn sql_scalar(base_dir: &Path, args: &[&str]) -> Result<ScriptValue, String> {
    let [path, query] = args else {
        return Err(format!(
            "sql_scalar takes 2 arguments (sqlite_path, query), not {}",
            args.len()
        ));
    };
    scalar(&base_dir.join(path), query, SQL_SCALAR_BUSY)
        .map_err(|e| format!("sql_scalar({path}): {e}"))
}

/// The first column of the first row of `query`, from a read-only
/// connection.
fn scalar(path: &Path, query: &str, busy: Duration) -> Result<ScriptValue, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy)?;
    let mut statement = conn.prepare(query)?;
    let mut rows = statement.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(ScriptValue::Unit);
    };
    Ok(match row.get_ref(0)? {
        ValueRef::Null => ScriptValue::Unit,
        ValueRef::Integer(i) => ScriptValue::Integer(i),
        ValueRef::Real(f) => ScriptValue::Float(f),
        ValueRef::Text(t) => ScriptValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => ScriptValue::Bytes(b.to_vec()),
    })
}
