//! The SQLite connector (`type = "sqlite"`): one table, one row per object;
//! multi-valued attributes in a column (JSON) or in child tables, one row
//! per value (`child_tables`), exported value by value.
//! Import streams with keyset pagination inside one read transaction;
//! delta import through a change-tracking column or a changelog table
//! filled by triggers; export in one transaction per batch with a savepoint
//! per row. Identifiers are quoted and values bound: nothing from data or
//! configuration is spliced into SQL as text.
//!
//! Types (see `types`): each column's declared type (or `column_types`)
//! says how values are stored and read back: BOOLEAN 0/1 as booleans, JSON
//! as any value (lists as arrays), INTEGER, TEXT, BLOB, REAL (read as text,
//! no rounding), NULL absent; a value a column would alter fails its row.

mod change;
mod changelog;
mod children;
pub mod config;
mod db;
mod export;
mod import;
mod schema;
pub mod types;

use crate::settings::{self, Settings};
use autosync_connector::{
    BuildContext, Capabilities, ChangeDetection, Connector, ConnectorError, ConnectorFactory,
    ExportSession, ImportStream, SchemaLookup, ScriptFunction, SettingError, Shape,
};
pub use change::{SQL_SCALAR, SqliteProbe};
pub use config::{ChildTable, DeltaConfig, SqliteConfig, SqliteSettings};
use rusqlite::Connection;

/// Builds SQLite connectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct SqliteFactory;

impl ConnectorFactory for SqliteFactory {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn settings_shape(&self) -> Vec<(String, Shape)> {
        settings::shape(
            config::KEYS,
            vec![
                ("delta", Shape::tagged_of::<config::DeltaConfig>("kind")),
                ("column_types", Shape::Leaf.map("column")),
                (
                    "child_tables",
                    Shape::of::<config::ChildTable>().map("attribute"),
                ),
            ],
        )
    }

    fn validate(&self, settings: &Settings, ctx: &BuildContext) -> Result<(), Vec<SettingError>> {
        SqliteSettings::from_settings(settings, ctx).map(|_| ())
    }

    fn build(
        &self,
        settings: &Settings,
        ctx: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        let s = SqliteSettings::from_settings(settings, ctx)
            .map_err(|e| settings::into_connector_error(&ctx.ma, &e))?;
        Ok(Box::new(SqliteConnector::new(s)))
    }

    /// The table's columns as an import reads them (from `columns` when the
    /// connector will create the table), and the attributes of
    /// `child_tables`; the database is opened read-only.
    fn schema(&self, settings: &Settings, ctx: &BuildContext) -> SchemaLookup {
        match SqliteSettings::from_settings(settings, ctx) {
            Ok(s) => schema::read(&s, &settings::written_path(settings, &s.path)),
            Err(e) => {
                SchemaLookup::Unavailable(settings::into_connector_error(&ctx.ma, &e).message)
            }
        }
    }

    /// With `delta`, a poll of the changelog or the change-tracking column
    /// (proposed); always a file watch on the database file (not proposed:
    /// in WAL mode writes reach it late).
    fn change_detection(
        &self,
        settings: &Settings,
        shown: &Settings,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        let parsed = SqliteSettings::from_settings(settings, ctx);
        settings::change_detection("sqlite", ctx, parsed, |s| change::detection(s, shown))
    }

    /// `sql_scalar(sqlite_path, query)`.
    fn script_functions(&self) -> Vec<ScriptFunction> {
        vec![SQL_SCALAR]
    }
}

/// An SQLite connector bound to one MA's settings. The database is opened
/// (never created) and its table checked on first use.
pub struct SqliteConnector {
    settings: SqliteSettings,
    db: Option<(Connection, db::Schema)>,
    /// Objects the connector space holds with nothing to send (see
    /// `Connector::expect_existing`).
    existing: u64,
}

impl std::fmt::Debug for SqliteConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConnector")
            .field("settings", &self.settings)
            .finish()
    }
}

impl SqliteConnector {
    pub fn new(settings: SqliteSettings) -> Self {
        SqliteConnector {
            settings,
            db: None,
            existing: 0,
        }
    }

    /// The open database and its checked schema, for the `step`
    /// (`export`, `import`: named in the message of a lock).
    fn ready(
        &mut self,
        step: &str,
    ) -> Result<(&mut Connection, &db::Schema, &SqliteSettings), ConnectorError> {
        if self.db.is_none() {
            let conn = db::open(&self.settings, self.existing).map_err(|e| db::in_step(e, step))?;
            let schema =
                db::Schema::read(&conn, &self.settings).map_err(|e| db::in_step(e, step))?;
            self.db = Some((conn, schema));
        }
        match &mut self.db {
            Some((conn, schema)) => Ok((conn, &*schema, &self.settings)),
            None => Err(ConnectorError::new(
                autosync_connector::ConnectorErrorKind::Other,
                "the database connection is not open",
            )),
        }
    }

    fn import(
        &mut self,
        watermark: Option<&str>,
        delta: bool,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        let (conn, schema, s) = self.ready("import")?;
        let import = import::SqliteImport::start(conn, s, schema, watermark, delta)
            .map_err(|e| db::in_step(e, "import"))?;
        Ok(Box::new(import))
    }
}

impl Connector for SqliteConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Values of child tables are written one row each.
            value_changes: !self.settings.child_tables.is_empty(),
            delta_import: self.settings.delta.is_some(),
            export: true,
            change_notification: false,
        }
    }

    fn full_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        self.import(watermark, false)
    }

    fn delta_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        self.import(watermark, true)
    }

    fn expect_existing(&mut self, objects: u64) {
        self.existing = objects;
    }

    fn begin_export(&mut self) -> Result<Box<dyn ExportSession + '_>, ConnectorError> {
        if self.settings.create_table && self.existing > 0 && !self.settings.path.is_file() {
            // A connection kept open would write into the file removed;
            // opened again, `db::open` refuses the file lost.
            self.db = None;
        }
        let (conn, schema, s) = self.ready("export")?;
        Ok(Box::new(export::SqliteExport::new(conn, s, schema)))
    }

    fn takes_values(&self, attr: &str) -> bool {
        self.settings.child_tables.contains_key(attr)
    }

    fn looks_up(&self) -> bool {
        true
    }

    /// The rows of `anchors` (a confirming import of a table without
    /// change tracking reads only what the export wrote).
    fn look_up(
        &mut self,
        anchors: Vec<String>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        let (conn, schema, s) = self.ready("import")?;
        let import = import::SqliteImport::look_up(conn, s, schema, anchors)
            .map_err(|e| db::in_step(e, "import"))?;
        Ok(Box::new(import))
    }
}
