//! The store's SQL schema, its version (`PRAGMA user_version`) and the
//! migrations that bring an older store up to date, plus the per-connection
//! settings (WAL, synchronous, caches).
//!
//! Durability: the store runs in WAL mode with `synchronous=NORMAL`. A
//! committed transaction is in the WAL before `commit` returns, so it
//! survives a crash of the process (SIGKILL, panic, OOM kill) at any point.
//! A power loss or kernel crash may lose the last transactions committed
//! before it (never corrupt the file, never keep part of a transaction):
//! that is the guarantee we give, and it lets a commit avoid an fsync.

use super::SqliteOptions;
use super::error;
use crate::api::{StoreErrorKind, StoreResult};
use rusqlite::Connection;
use std::path::Path;

/// `PRAGMA application_id` of an autosync store ("ASYN").
pub(crate) const APPLICATION_ID: i64 = 0x4153_594E;

/// The schema version this build writes and understands.
///
/// Version 2 stores connector-space and metaverse objects as binary bodies
/// (see `bin`); version 1 stored JSON and is refused with a clear error
/// (there is no migration: re-create it). Version 3 numbers management
/// agents (table `ma`: `cs.ma` is that number, not the name, so the keys of
/// the connector-space indexes are small integers) and drops two indexes a
/// write paid for: `mv_type` (listing or counting metaverse objects of one
/// type scans the table; only the CLI does it) and `mv_key_mv` (the keys of
/// an updated or deleted metaverse object are computed from its stored
/// body). Version 4 adds the name dictionary (table `name`, see `names`):
/// bodies written since carry numbers for the names it holds (format
/// `0xB2`); bodies of format `0xB1` are still read. Version 5 folds the
/// texts of the join indexes to lower case (joins ignore case, see
/// `mvindex`) and marks derived indexes (`mv_index.derived`); the
/// migration builds every index's keys again from the stored bodies, in
/// the same transaction. Version 6 adds the tables of references waiting
/// for the object they name (`ref_wait_in`, `ref_wait_out`, see
/// [`crate::api::RefWait`]) and of referred objects whose referrers are to
/// be worked out again (`ref_touched`). Version 7 adds value rows (see
/// `rows`): the tables `val_attr`, `val_decl`, `cs_val` and `mv_val`, and
/// the body marker of an attribute whose values are rows (which older
/// builds cannot read). Version 8 adds the per-object changes of runs
/// (table `run_change`, see `RUN_CHANGE_TABLE`). Version 9 adds the
/// targets of outbound waits whose connectors changed (`ref_out_due`, see
/// `REF_DUE`), so that the end of a sync step looks only at those; the
/// migration notes every target that waits now. Version 10 adds the names
/// of the connectors that left a noted object (`ref_touched_name`, see
/// `REF_NAMES`). Version 11 indexes each MA's objects joined to nothing
/// once synchronised (`cs_unjoined`; those with a pending import are found
/// by `cs_pending_import`), which provisioning looks at before it adds an
/// object: an object imported and joined by its sync never enters it, so
/// the index costs the import and the sync of joined objects nothing.
/// Version 12 folds the keys by DN as a directory compares DNs
/// (`crate::api::fold_dn`: spaces around separators, `\,` and `\2C`, the
/// order of a multi-valued RDN's parts do not count; before, only case
/// did not): the migration builds the DN index (`cs_dn`) again from the
/// stored bodies and folds again the keys of the references waiting for
/// a DN (`ref_wait_in` with `by_dn` = 1), in the same transaction.
/// A version-2 to -11 store is migrated in place when opened.
pub const SCHEMA_VERSION: i64 = 12;

/// The oldest schema version this build opens.
const OLDEST_SUPPORTED: i64 = 2;

/// `MIGRATIONS[v - OLDEST_SUPPORTED]` takes a store from version `v` to
/// `v + 1`; a new store gets `SCHEMA` directly.
const MIGRATIONS: &[&str] = &[
    // 2 -> 3: MA numbers in `cs`, no `mv_type` or `mv_key_mv`.
    "
CREATE TABLE ma (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO ma (name) SELECT DISTINCT ma FROM cs ORDER BY ma;
CREATE TABLE cs_v3 (
    id INTEGER PRIMARY KEY,
    ma INTEGER NOT NULL,
    anchor TEXT NOT NULL,
    mv_id INTEGER,
    has_pi INTEGER NOT NULL DEFAULT 0,
    has_pe INTEGER NOT NULL DEFAULT 0,
    has_ue INTEGER NOT NULL DEFAULT 0,
    has_err INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL
);
INSERT INTO cs_v3 (id, ma, anchor, mv_id, has_pi, has_pe, has_ue, has_err, data)
    SELECT c.id, m.id, c.anchor, c.mv_id, c.has_pi, c.has_pe, c.has_ue, c.has_err, c.data
    FROM cs AS c JOIN ma AS m ON m.name = c.ma ORDER BY c.id;
DROP TABLE cs;
ALTER TABLE cs_v3 RENAME TO cs;
CREATE UNIQUE INDEX cs_anchor ON cs (ma, anchor);
CREATE INDEX cs_ma ON cs (ma);
CREATE INDEX cs_pending_import ON cs (ma) WHERE has_pi = 1;
CREATE INDEX cs_pending_export ON cs (ma) WHERE has_pe = 1;
CREATE INDEX cs_unconfirmed_export ON cs (ma) WHERE has_ue = 1;
CREATE INDEX cs_error ON cs (ma) WHERE has_err = 1;
CREATE INDEX cs_mv ON cs (mv_id) WHERE mv_id IS NOT NULL;
DROP INDEX mv_type;
DROP INDEX mv_key_mv;
",
    // 3 -> 4: the name dictionary.
    NAME_TABLE,
    // 4 -> 5: derived join indexes; the keys are built again, folded
    // (`REBUILD_JOIN_KEYS`).
    "ALTER TABLE mv_index ADD COLUMN derived INTEGER NOT NULL DEFAULT 0;",
    // 5 -> 6: references waiting for the object they name.
    REF_TABLES,
    // 6 -> 7: value rows.
    VALUE_TABLES,
    // 7 -> 8: the per-object changes of runs.
    RUN_CHANGE_TABLE,
    // 8 -> 9: the targets of outbound waits whose connectors changed;
    // every target waited for now is looked at once.
    REF_DUE,
    // 9 -> 10: the names of the connectors that left noted objects.
    REF_NAMES,
    // 10 -> 11: each MA's objects joined to nothing.
    "CREATE INDEX IF NOT EXISTS cs_unjoined ON cs (ma) WHERE mv_id IS NULL AND has_pi = 0",
    // 11 -> 12: keys by DN folded as a directory compares DNs; the DN
    // index is built again (`REFOLD_DN_KEYS`).
    "DELETE FROM cs_dn",
];

/// How the connector that left a noted object (`ref_touched`) was named,
/// on which MA (`ref_touched_name`): the references to it that targets
/// hold by that name go value by value (`StoreTxn::ref_touched_names_add`);
/// forgotten with the note.
const REF_NAMES: &str = "
CREATE TABLE IF NOT EXISTS ref_touched_name (
    mv_id INTEGER NOT NULL,
    ma TEXT NOT NULL,
    anchor TEXT NOT NULL,
    dn TEXT NOT NULL,
    PRIMARY KEY (mv_id, ma, anchor, dn)
) WITHOUT ROWID;
";

/// The per-object changes recorded with a run (`autosync history RUN_ID`):
/// one row per object and step, up to the engine's cap per step; `data`
/// is the change's JSON (`RunChange`, its values capped). They go with
/// their run (`Store::trim_runs`).
const RUN_CHANGE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS run_change (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    step_index INTEGER NOT NULL,
    ma TEXT NOT NULL,
    object TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_change_run ON run_change (run_id);
";

/// Value rows (see `rows`): the multi-valued attributes kept one row per
/// value. `val_attr` numbers their names (append only); `val_decl` holds
/// every (side: 0 connector space, 1 metaverse; scope: MA or object type;
/// attribute) ever declared (`Store::set_value_rows`), `declared` = 1 for
/// the current declaration; `cs_val` and `mv_val` hold the values, each
/// as its canonical bytes (`bin::encode_value`), under the attribute's
/// number. `mv_val` also holds, under the attribute's number negated, the
/// single value a declared attribute keeps in the body, so that
/// `mv_val_value` finds every object by any value of the attribute.
const VALUE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS val_attr (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS val_decl (
    side INTEGER NOT NULL,
    scope TEXT NOT NULL,
    attr TEXT NOT NULL,
    declared INTEGER NOT NULL,
    PRIMARY KEY (side, scope, attr)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cs_val (
    cs_id INTEGER NOT NULL,
    attr INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (cs_id, attr, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mv_val (
    mv_id INTEGER NOT NULL,
    attr INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (mv_id, attr, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mv_val_value ON mv_val (attr, value);
";

/// References that wait: of a connector-space object (`cs_id`, attribute
/// `attr`) for the object of MA `ma` whose anchor is `key` to be there and
/// joined (`ref_wait_in`); of a metaverse object (`mv_id`), exported to
/// target MA `ma`, for a connector of the object it refers to (`target`)
/// on MA `via` (`ref_wait_out`). Each row is replaced whenever its referrer's
/// references are worked out again. `ref_touched`: metaverse objects a
/// sync deleted (`gone`), or whose connector somewhere was renamed or is
/// leaving, whose referrers are still to be worked out again; written with
/// the sync's batch, taken by the end of a sync step (of any MA, should
/// the process die in between). `cs_dn`: the DNs (folded by
/// `crate::api::fold_dn`) of the objects of the MAs in `cs_dn_ma`, those
/// whose objects references name by DN (`Store::set_dn_index`), kept
/// with every write of their objects.
const REF_TABLES: &str = "
CREATE TABLE IF NOT EXISTS ref_wait_in (
    cs_id INTEGER NOT NULL,
    attr TEXT NOT NULL,
    ma TEXT NOT NULL,
    key TEXT NOT NULL,
    by_dn INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cs_id, attr, ma, key, by_dn)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ref_wait_in_key ON ref_wait_in (ma, key);
CREATE TABLE IF NOT EXISTS ref_wait_out (
    mv_id INTEGER NOT NULL,
    ma TEXT NOT NULL,
    target INTEGER NOT NULL,
    via TEXT NOT NULL,
    PRIMARY KEY (mv_id, ma, target, via)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ref_wait_out_target ON ref_wait_out (target);
CREATE TABLE IF NOT EXISTS ref_touched (
    mv_id INTEGER PRIMARY KEY,
    gone INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cs_dn_ma (ma INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS cs_dn (
    ma INTEGER NOT NULL,
    dn TEXT NOT NULL,
    cs_id INTEGER NOT NULL,
    PRIMARY KEY (ma, dn, cs_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cs_dn_id ON cs_dn (cs_id);
";

/// The targets of outbound waits (`ref_wait_out.target`) that a write of
/// one of their connectors may have made ready (`ref_out_due`): noted by
/// the writes of connector-space objects (`hot`) whenever a connector of
/// an object some reference waits for is added, joined, moved, or has its
/// pending export changed or sent. `ref_out_ready` looks at these only
/// (not at every wait, which for a group of half a million members not
/// yet exported is half a million rows at the end of every sync step),
/// and the end of a sync step clears them (`StoreTxn::ref_out_due_clear`).
/// A wait written for a target whose connector is already ready is not
/// noted: the engine writes a wait only for a target with no connector on
/// the MA, or one whose add is still to be sent there. (Triggers on `cs`
/// did the same at twice the cost of a whole synchronisation: a statement
/// with a trigger keeps a journal of every page it changes.)
const REF_DUE: &str = "
CREATE TABLE IF NOT EXISTS ref_out_due (target INTEGER PRIMARY KEY);
";

/// The version whose migration notes every target waited for as due
/// (after its SQL, in the same transaction).
const NOTE_DUE_TARGETS: i64 = 9;

/// The version whose migration builds the join index's keys again from
/// the stored bodies (after its SQL, in the same transaction).
const REBUILD_JOIN_KEYS: i64 = 5;

/// The version whose migration builds the DN index again and folds the
/// keys of the references waiting for a DN again, with `fold_dn` (after
/// its SQL, which empties `cs_dn`, in the same transaction).
const REFOLD_DN_KEYS: i64 = 12;

/// The name dictionary (see `names`): append only.
const NAME_TABLE: &str = "
CREATE TABLE name (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
";

/// The whole schema of a new store.
const SCHEMA: &str = "
-- Management agents by number (`cs.ma`); a name gets its number when its
-- first connector-space object is written, and keeps it.
CREATE TABLE ma (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

CREATE TABLE cs (
    id INTEGER PRIMARY KEY,
    ma INTEGER NOT NULL,
    anchor TEXT NOT NULL,
    mv_id INTEGER,
    has_pi INTEGER NOT NULL DEFAULT 0,
    has_pe INTEGER NOT NULL DEFAULT 0,
    has_ue INTEGER NOT NULL DEFAULT 0,
    has_err INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX cs_anchor ON cs (ma, anchor);
CREATE INDEX cs_ma ON cs (ma);
CREATE INDEX cs_pending_import ON cs (ma) WHERE has_pi = 1;
CREATE INDEX cs_pending_export ON cs (ma) WHERE has_pe = 1;
CREATE INDEX cs_unconfirmed_export ON cs (ma) WHERE has_ue = 1;
CREATE INDEX cs_error ON cs (ma) WHERE has_err = 1;
CREATE INDEX cs_mv ON cs (mv_id) WHERE mv_id IS NOT NULL;
CREATE INDEX cs_unjoined ON cs (ma) WHERE mv_id IS NULL AND has_pi = 0;

CREATE TABLE mv (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    data BLOB NOT NULL
);

-- The declared join indexes: an attribute of a type, or (derived = 1) a
-- key the engine computes, by its name.
CREATE TABLE mv_index (
    k INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    attr TEXT NOT NULL,
    derived INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, attr)
);
-- One row per text an object is found by (strings in lower case).
CREATE TABLE mv_key (
    k INTEGER NOT NULL,
    value TEXT NOT NULL,
    mv_id INTEGER NOT NULL,
    PRIMARY KEY (k, value, mv_id)
) WITHOUT ROWID;

CREATE TABLE watermark (ma TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE run (
    id INTEGER PRIMARY KEY,
    ma TEXT NOT NULL,
    profile TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_ms INTEGER,
    data TEXT NOT NULL
);
CREATE INDEX run_ma ON run (ma);
CREATE INDEX run_in_progress ON run (status) WHERE status = 'in-progress';
CREATE INDEX run_ended ON run (ended_ms) WHERE ended_ms IS NOT NULL;

CREATE TABLE run_error (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    ma TEXT NOT NULL,
    object TEXT NOT NULL,
    error_type TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX run_error_run ON run_error (run_id);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

-- The name dictionary (see `names`): append only.
CREATE TABLE name (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

-- Next id to hand out per table, so that ids are never reused.
CREATE TABLE seq (name TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;
";

/// Settings every connection gets.
pub(crate) fn configure(
    conn: &Connection,
    path: &Path,
    opts: &SqliteOptions,
    writer: bool,
) -> StoreResult<()> {
    let cache_kib = if writer {
        opts.cache_kib
    } else {
        opts.reader_cache_kib
    };
    conn.busy_timeout(opts.busy_timeout)
        .map_err(|e| error::sql(path, "open store", e))?;
    let sql = format!(
        "PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA mmap_size = {};
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = OFF;
         PRAGMA wal_autocheckpoint = 0;",
        opts.mmap_bytes
    );
    conn.execute_batch(&sql)
        .map_err(|e| error::sql(path, "open store", e))?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

fn pragma_i64(conn: &Connection, path: &Path, name: &str) -> StoreResult<i64> {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .map_err(|e| error::sql(path, "open store", e))
}

/// Switches the store to WAL. Changing the journal mode of a fresh file
/// needs an exclusive lock, and SQLite answers "busy" at once (without the
/// busy handler) while another process opens the same file: try again
/// within the busy timeout.
fn wal_mode(conn: &Connection, opts: &SqliteOptions) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + opts.busy_timeout;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Check that the file is an autosync store that this build understands,
/// that it is intact (`PRAGMA quick_check`), and migrate it to
/// [`SCHEMA_VERSION`]. `new` is true for a file created just now.
pub(crate) fn prepare(
    conn: &Connection,
    path: &Path,
    opts: &SqliteOptions,
    new: bool,
    may_change: bool,
) -> StoreResult<()> {
    let open_err = |e| error::sql(path, "open store", e);
    if new {
        conn.execute_batch(&format!("PRAGMA page_size = {}", opts.page_size))
            .map_err(open_err)?;
    }
    let mode = wal_mode(conn, opts).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(error::other(
            StoreErrorKind::Io,
            path,
            format!(
                "cannot switch the store to WAL mode (journal mode is {mode}); is it on a network file system?"
            ),
        ));
    }
    // A store already at this version is only checked, in a read
    // transaction: opening it never waits for the write lock, so `autosync
    // history` or `status` works while a long sync (or another process)
    // holds it.
    if !new && current(conn, path, opts)? {
        return Ok(());
    }
    if !may_change {
        return refuse_change(conn, path);
    }
    // Checks and creation or migration happen in one write transaction, so
    // two processes opening a fresh store at once (the service and
    // `autosync status`, say) cannot both try to create it.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(open_err)?;
    let result = check_and_build(conn, path, opts);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if let Err(e) = conn.execute_batch(end) {
        let _ = conn.execute_batch("ROLLBACK");
        result?;
        return Err(error::sql(path, "prepare store", e));
    }
    result
}

/// Whether the store is an autosync store of this very schema version
/// (and, with `quick_check`, undamaged), read in a read transaction. Any
/// other answer (new, older, newer, foreign) is left to
/// [`check_and_build`], which says what is wrong under the write lock.
fn current(conn: &Connection, path: &Path, opts: &SqliteOptions) -> StoreResult<bool> {
    let open_err = |e| error::sql(path, "open store", e);
    conn.execute_batch("BEGIN DEFERRED").map_err(open_err)?;
    let result = (|| {
        let app_id = pragma_i64(conn, path, "application_id")?;
        let version = pragma_i64(conn, path, "user_version")?;
        if app_id != APPLICATION_ID || version != SCHEMA_VERSION {
            return Ok(false);
        }
        if opts.quick_check {
            quick_check(conn, path)?;
        }
        Ok(true)
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

/// Why a store that is not of this schema version is not opened by a
/// command that only reads: such a command never builds nor migrates a
/// store (under a service of the older version, that would stop it).
fn refuse_change(conn: &Connection, path: &Path) -> StoreResult<()> {
    let app_id = pragma_i64(conn, path, "application_id")?;
    let version = pragma_i64(conn, path, "user_version")?;
    let (kind, why) = if app_id != APPLICATION_ID {
        (
            StoreErrorKind::Corrupt,
            "the file is an SQLite database but not an autosync store (is the path right?)"
                .to_owned(),
        )
    } else if version > SCHEMA_VERSION {
        (
            StoreErrorKind::Version,
            format!(
                "it was written by a newer autosync (schema version {version}; this build understands up to {SCHEMA_VERSION}): upgrade autosync or use another store"
            ),
        )
    } else {
        (
            StoreErrorKind::Version,
            format!(
                "it is of schema version {version}, older than this build's {SCHEMA_VERSION}, and a command that only reads never migrates a store: stop the service of the older autosync, then `autosync run` or `autosync run-profile` of this one migrates it"
            ),
        )
    };
    Err(error::other(
        kind,
        path,
        format!("cannot read store: {why}"),
    ))
}

fn check_and_build(conn: &Connection, path: &Path, opts: &SqliteOptions) -> StoreResult<()> {
    let open_err = |e| error::sql(path, "open store", e);
    let app_id = pragma_i64(conn, path, "application_id")?;
    let version = pragma_i64(conn, path, "user_version")?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(open_err)?;
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(error::other(
            StoreErrorKind::Corrupt,
            path,
            "cannot open store: the file is an SQLite database but not an autosync store (is the path right?)",
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(error::other(
            StoreErrorKind::Version,
            path,
            format!(
                "cannot open store: it was written by a newer autosync (schema version {version}; this build understands up to {SCHEMA_VERSION}): upgrade autosync or use another store"
            ),
        ));
    }
    if tables > 0 && version < OLDEST_SUPPORTED {
        return Err(error::other(
            StoreErrorKind::Version,
            path,
            format!(
                "cannot open store: it was written by an older autosync (schema version {version}; this build reads schema version {OLDEST_SUPPORTED} and later, and has no migration from it): move the store away and run a full import and full sync again"
            ),
        ));
    }
    if opts.quick_check && tables > 0 {
        quick_check(conn, path)?;
    }
    if tables == 0 {
        return create(conn, path);
    }
    migrate(conn, path, version)
}

/// Creates the schema (inside the caller's transaction).
fn create(conn: &Connection, path: &Path) -> StoreResult<()> {
    let batch = format!(
        "{SCHEMA}; {REF_TABLES}; {REF_DUE}; {REF_NAMES}; {VALUE_TABLES}; {RUN_CHANGE_TABLE}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    );
    conn.execute_batch(&batch)
        .map_err(|e| error::sql(path, "create store", e))?;
    tracing::info!(store = %path.display(), version = SCHEMA_VERSION, "store created");
    Ok(())
}

fn quick_check(conn: &Connection, path: &Path) -> StoreResult<()> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| error::sql(path, "check store", e))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| error::sql(path, "check store", e))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(error::other(
        StoreErrorKind::Corrupt,
        path,
        format!(
            "cannot open store: the file is damaged ({}); restore it from a backup or move it away",
            problems.join("; ")
        ),
    ))
}

/// Migrates to [`SCHEMA_VERSION`] (inside the caller's transaction).
fn migrate(conn: &Connection, path: &Path, from: i64) -> StoreResult<()> {
    for v in from..SCHEMA_VERSION {
        let Some(sql) = usize::try_from(v - OLDEST_SUPPORTED)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            return Err(error::other(
                StoreErrorKind::Version,
                path,
                format!("no migration from schema version {v}"),
            ));
        };
        let next = v + 1;
        let batch = format!(
            "{sql}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {next};"
        );
        if let Err(e) = conn.execute_batch(&batch) {
            return Err(error::sql(
                path,
                format_args!("upgrade (to schema version {next}) store"),
                e,
            ));
        }
        if next == REBUILD_JOIN_KEYS {
            super::mvindex::rebuild(conn, path)?;
        }
        if next == REFOLD_DN_KEYS {
            refold_dn_keys(conn, path)?;
        }
        if next == NOTE_DUE_TARGETS {
            conn.execute_batch(
                "INSERT OR IGNORE INTO ref_out_due (target) SELECT DISTINCT target FROM ref_wait_out",
            )
            .map_err(|e| error::sql(path, "note the targets of waiting references", e))?;
        }
        tracing::info!(store = %path.display(), version = next, "store schema migrated");
    }
    Ok(())
}

/// Folds every key by DN again with `fold_dn` (schema version 12): the DN
/// index of each MA that has one is built again from the stored bodies
/// (`dnindex::set`, as for an MA added to it; the migration's SQL emptied
/// `cs_dn`), and each reference waiting for a DN gets its key folded
/// again (two that fold alike are one).
fn refold_dn_keys(conn: &Connection, path: &Path) -> StoreResult<()> {
    let err = |what: &str, e| error::sql(path, format_args!("{what} (schema version 12)"), e);
    let mas: Vec<String> = conn
        .prepare("SELECT m.name FROM cs_dn_ma AS d JOIN ma AS m ON m.id = d.ma ORDER BY m.name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| err("read the MAs whose DNs are indexed", e))?;
    conn.execute("DELETE FROM cs_dn_ma", [])
        .map_err(|e| err("empty the DN index", e))?;
    let names = super::names::Names::load(conn, path)?;
    let mas: Vec<&str> = mas.iter().map(String::as_str).collect();
    super::dnindex::set(conn, path, &names, &mas)?;
    let waits: Vec<(i64, String, String, String)> = conn
        .prepare("SELECT cs_id, attr, ma, key FROM ref_wait_in WHERE by_dn = 1")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| err("read the references waiting for a DN", e))?;
    let mut n = 0u64;
    for (cs_id, attr, ma, key) in &waits {
        let folded = crate::api::fold_dn(key);
        if folded == key.as_str() {
            continue;
        }
        conn.execute(
            "DELETE FROM ref_wait_in WHERE cs_id = ?1 AND attr = ?2 AND ma = ?3 AND key = ?4 AND by_dn = 1",
            rusqlite::params![cs_id, attr, ma, key],
        )
        .and_then(|_| {
            conn.execute(
                "INSERT OR IGNORE INTO ref_wait_in (cs_id, attr, ma, key, by_dn) VALUES (?1, ?2, ?3, ?4, 1)",
                rusqlite::params![cs_id, attr, ma, folded.as_ref()],
            )
        })
        .map_err(|e| err("fold the key of a reference waiting for a DN", e))?;
        n += 1;
    }
    tracing::info!(store = %path.display(), waits = n, "keys by DN folded again");
    Ok(())
}

/// The writer's cache of management-agent numbers (table `ma`): the names
/// committed, and those the open transaction numbered (forgotten if it rolls
/// back, since the numbers go with it).
#[derive(Debug, Default)]
pub(crate) struct MaIds {
    committed: rustc_hash::FxHashMap<String, i64>,
    added: Vec<(String, i64)>,
}

impl MaIds {
    /// The number of MA `name`, numbering it now (in the open transaction)
    /// if it has none yet.
    pub(crate) fn get(&mut self, conn: &Connection, path: &Path, name: &str) -> StoreResult<i64> {
        if let Some(&id) = self.committed.get(name) {
            return Ok(id);
        }
        if let Some((_, id)) = self.added.iter().find(|(n, _)| n == name) {
            return Ok(*id);
        }
        let err = |e| {
            error::sql(
                path,
                format_args!("number management agent {name} in store"),
                e,
            )
        };
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM ma WHERE name = ?1")
            .and_then(|mut s| {
                rusqlite::OptionalExtension::optional(s.query_row([name], |r| r.get(0)))
            })
            .map_err(err)?;
        if let Some(id) = found {
            // Not numbered by this transaction, so committed.
            self.committed.insert(name.to_owned(), id);
            return Ok(id);
        }
        let id: i64 = conn
            .prepare_cached("INSERT INTO ma (name) VALUES (?1) RETURNING id")
            .and_then(|mut s| s.query_row([name], |r| r.get(0)))
            .map_err(err)?;
        self.added.push((name.to_owned(), id));
        Ok(id)
    }

    /// The open transaction committed.
    pub(crate) fn committed(&mut self) {
        for (name, id) in self.added.drain(..) {
            self.committed.insert(name, id);
        }
    }

    /// The open transaction rolled back (or none was open).
    pub(crate) fn rolled_back(&mut self) {
        self.added.clear();
    }
}
