//! The connector contract: how the engine reads from and writes to a
//! connected system. A connector knows its system and nothing else: not the
//! store, not the rules, not the controller.
//!
//! * Import is a stream of batches, so memory does not grow with the size of
//!   the source. Each item is an object or a per-object error (a malformed
//!   row, a missing anchor, ...): one bad record never stops the rest.
//! * Export is a session: batches of changes go in, one outcome per change
//!   comes back, and `commit` makes the session's work durable. An export is
//!   replayable: re-sending an add for an object that already exists updates
//!   it in place, so a crash between the target accepting a change and the
//!   engine recording it never creates an object twice.
//! * Whole-step failures (server down, connectivity, bad settings) are a
//!   [`ConnectorError`] whose kind maps to a `stopped-*` run status.
//! * A factory can say what attributes its system's objects have before
//!   any run ([`ConnectorFactory::schema`]: a CSV header, a table's
//!   columns), so that `autosync check` finds a rule reading a name the
//!   system does not have; where that cannot be known (JSON lines), the
//!   answer says so and a full import warns instead.
//! * A factory says how its system's changes can be noticed (a file to
//!   watch, a value to poll, a channel to listen to:
//!   [`ConnectorFactory::change_detection`], see [`change`]) and may lend functions to trigger scripts
//!   ([`ConnectorFactory::script_functions`]), so that discovery, the
//!   default triggers and the triggers themselves know no connector type.

pub mod change;
#[cfg(feature = "compliance")]
pub mod compliance;
pub mod keys;
mod schema;

pub use change::{
    ChangeDetection, ChangeEvent, ChangeListener, ChangeOffer, ChangeOfferKind, ChangeProbe,
    ChangeSource, FileContent, FileWatchOffer, NotificationOffer, PollOffer, ScriptFunction,
    ScriptValue,
};
pub use keys::Shape;
pub use schema::{ObjectTypeSchema, Restrictions, SchemaLookup, SourceSchema};

use autosync_model::{AttrChanges, Attributes, ExportKind, RunStatus, ValueChanges};
use std::path::PathBuf;

/// What a connector can do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// It can read only what changed since a watermark. Without it, a delta
    /// import reads everything and the engine stages the differences.
    pub delta_import: bool,
    /// It can write to its system.
    pub export: bool,
    /// It can tell when its system changed (a change-notification trigger).
    pub change_notification: bool,
    /// Its export applies value-level changes of multi-valued attributes
    /// ([`ExportChange::values`]: one member added to a group is one value
    /// written). Without it, the engine sends the whole new value in
    /// `changes` instead.
    pub value_changes: bool,
}

/// The kind of a whole-step failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorErrorKind {
    /// The system did not answer (file missing, server refused).
    ServerDown,
    /// The connection broke during the step.
    Connectivity,
    /// The system answered but kept the data locked (a database deadlock,
    /// another writer holding the lock past the timeout): MIM's
    /// `stopped-deadlocked`, retried by default.
    Deadlocked,
    /// The settings are wrong (caught at validation where possible).
    Configuration,
    /// The system's data cannot be read at all (not one object).
    Data,
    /// Anything else.
    Other,
}

impl ConnectorErrorKind {
    /// The run status a step that failed this way ends with.
    pub fn status(self) -> RunStatus {
        match self {
            ConnectorErrorKind::ServerDown => RunStatus::StoppedServerDown,
            ConnectorErrorKind::Connectivity => RunStatus::StoppedConnectivity,
            ConnectorErrorKind::Deadlocked => RunStatus::StoppedDeadlocked,
            ConnectorErrorKind::Configuration => RunStatus::StoppedConfiguration,
            ConnectorErrorKind::Data | ConnectorErrorKind::Other => RunStatus::StoppedError,
        }
    }
}

/// A whole-step failure of a connector.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub kind: ConnectorErrorKind,
    /// What failed and where, with no secret in it.
    pub message: String,
}

impl ConnectorError {
    pub fn new(kind: ConnectorErrorKind, message: impl Into<String>) -> Self {
        ConnectorError {
            kind,
            message: message.into(),
        }
    }
}

/// How an imported object changed, as the source says. Full imports and
/// connectors without delta support send `Full`: the complete current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportChange {
    /// The object as it is now (full import, or delta "add or update").
    Full,
    /// The object was deleted (delta import only).
    Delete,
    /// Part of the object changed (delta import only): `attributes` holds
    /// the attributes that changed, whole (an attribute not there is
    /// unchanged: to remove one, send `Full`), and `values` the value-level
    /// changes of multi-valued attributes (a member added to a group of
    /// 500,000 is one value, never the 500,000).
    ///
    /// An `Update` that names nothing (no attribute, no value) says the
    /// object is there and unchanged (RFC 4533's *present* state): nothing
    /// is staged and its `dn` and `object_type` are not read; in a
    /// [complete](ImportStream::complete) stream it counts as seen. The
    /// engine reports one for an object its connector space lacks as a
    /// record error (only a full import can read that object).
    Update,
}

/// One object read from the connected system.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedObject {
    pub object_type: String,
    pub anchor: String,
    /// Display key (DN); the anchor when the system has none.
    pub dn: String,
    pub change: ImportChange,
    /// Complete attributes (empty for a delete; only the changed ones for
    /// an `Update`).
    pub attributes: Attributes,
    /// Value-level changes (an `Update` only; empty otherwise).
    pub values: ValueChanges,
}

/// A record the connector could not turn into an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecordError {
    /// The anchor, when it could be read: a record that fails for another
    /// reason than its anchor should still name it, since a full import
    /// keeps a known object named by an error (with the error) and stages
    /// the delete of an object it did not see.
    pub anchor: Option<String>,
    /// Where the record is, e.g. `hr.csv line 17`.
    pub location: String,
    /// Stable kebab-case type: `malformed-record`, `invalid-utf8`,
    /// `missing-anchor`, `duplicate-anchor`, `value-too-large`, ...
    pub error_type: String,
    pub detail: String,
}

/// One item of an import batch.
pub type ImportItem = Result<ImportedObject, ImportRecordError>;

/// A running import: call `next_batch` until it returns `None`.
pub trait ImportStream: Send {
    /// The next batch of items, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<Vec<ImportItem>>, ConnectorError>;

    /// The watermark to save once every batch is staged (only meaningful at
    /// the end of the stream). `None` when the connector keeps none.
    fn watermark(&self) -> Option<String>;

    /// Whether the source is unchanged since the watermark given to
    /// `full_import`/`delta_import` (so nothing will be read). Lets the
    /// engine skip diffing a source that did not change.
    fn unchanged(&self) -> bool {
        false
    }

    /// Whether this stream turned out to hold every object of the source
    /// (asked once it has ended): a delta import that could not read only
    /// the changes (an LDAP content-synchronisation cookie the server no
    /// longer accepts) reads everything instead and says so here, and the
    /// engine then stages the deletes of the objects it did not see, as a
    /// full import does. False by default: a delta stream holds changes
    /// only.
    fn complete(&self) -> bool {
        false
    }
}

/// One change to send.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportChange {
    pub object_type: String,
    pub anchor: String,
    /// Current display key.
    pub dn: String,
    pub kind: ExportKind,
    /// For an add: the complete attributes. For an update: replacements
    /// (`None` removes the attribute).
    pub changes: AttrChanges,
    /// For an update, and only to a connector whose capabilities say
    /// `value_changes`: value-level changes of multi-valued attributes
    /// that `changes` does not name (add these values, remove those).
    pub values: ValueChanges,
    /// New display key (rename).
    pub new_dn: Option<String>,
}

/// What happened to one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportOutcome {
    /// Applied. `anchor` is set when the system assigned a new anchor.
    Applied { anchor: Option<String> },
    /// Rejected by the system (constraint violation, schema violation, ...).
    /// The object keeps its pending export and is retried by later runs.
    Failed { error_type: String, detail: String },
}

/// A running export.
pub trait ExportSession: Send {
    /// Send a batch; one outcome per change, in order.
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError>;

    /// Whether a batch is durable in the system as soon as `apply` returns
    /// (a database transaction per batch). When false, nothing is durable
    /// until `commit` (a file written atomically at the end).
    fn durable_per_batch(&self) -> bool;

    /// After `apply` failed (the connection lost halfway through a batch):
    /// per change of that batch, in order, its outcome when the system
    /// answered it before the failure (`None`: not sent, or no answer, so
    /// it stays pending). Only a session whose batches are durable as the
    /// system answers (`durable_per_batch`) may answer anything; the
    /// default is nothing.
    fn answered_before_failure(&mut self) -> Vec<Option<ExportOutcome>> {
        Vec::new()
    }

    /// Make everything applied durable.
    fn commit(self: Box<Self>) -> Result<(), ConnectorError>;
}

/// A connector bound to one MA's settings.
pub trait Connector: Send {
    fn capabilities(&self) -> Capabilities;

    /// Read every object. `watermark`, when given, is the one saved by the
    /// last successful import, so a connector can tell that nothing changed
    /// ([`ImportStream::unchanged`]). The engine gives it only for a delta
    /// import step of a connector without delta support; a full import step
    /// gives `None`, so the source is read, and its bad records reported,
    /// every time.
    fn full_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError>;

    /// Read the changes since `watermark` (`None`: from the beginning).
    /// Connectors without delta support read everything.
    fn delta_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError>;

    fn begin_export(&mut self) -> Result<Box<dyn ExportSession + '_>, ConnectorError>;

    /// Told before an export or an import begins whether the connector
    /// space holds objects with nothing to send, so exported or read from
    /// the system before (0: none yet, a first export; otherwise 1). A
    /// connector that makes its system when it is missing (SQLite's
    /// `create_table`, a file target) makes it only for a first export: a
    /// system that is gone after objects were there was lost, and made
    /// again empty it would take every object for deleted. By default
    /// nothing.
    fn expect_existing(&mut self, objects: u64) {
        let _ = objects;
    }

    /// Whether [`Connector::look_up`] reads objects by anchor. The engine
    /// uses it for a confirming import on a connector without delta
    /// support: it reads back the objects whose export is unconfirmed
    /// instead of the whole source.
    fn looks_up(&self) -> bool {
        false
    }

    /// The objects of `anchors` as they are now: each one found as a
    /// `Full` item, each one not there as a `Delete`; nothing else. The
    /// stream is never complete and has no watermark (the last import's
    /// stays). Only called when [`Connector::looks_up`] says so.
    fn look_up(
        &mut self,
        anchors: Vec<String>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        let _ = anchors;
        Err(ConnectorError::new(
            ConnectorErrorKind::Other,
            "this connector cannot read objects by anchor",
        ))
    }

    /// Whether its export takes value-level changes of `attr`
    /// ([`ExportChange::values`]); by default what its capabilities say of
    /// every attribute. A connector that takes them for some attributes
    /// only (SQLite: its child tables) says which; the others get whole
    /// values.
    fn takes_values(&self, attr: &str) -> bool {
        let _ = attr;
        self.capabilities().value_changes
    }
}

/// One problem with a connector's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingError {
    /// The key inside the `connector` table, e.g. `path`.
    pub key: String,
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Everything a factory needs besides the settings.
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// The MA's name.
    pub ma: String,
    /// Folder of the configuration file; relative paths resolve against it.
    pub base_dir: PathBuf,
    /// The MA's object types with their anchor and DN attributes.
    pub object_types: Vec<autosync_model::ObjectTypeDef>,
}

/// Builds connectors of one type.
pub trait ConnectorFactory: Send + Sync {
    /// The `type` in configuration, e.g. `csv`.
    fn kind(&self) -> &'static str;

    /// Check settings without touching the system.
    fn validate(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
        ctx: &BuildContext,
    ) -> Result<(), Vec<SettingError>>;

    fn build(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
        ctx: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError>;

    /// The attributes the system's objects have, read without importing
    /// and without changing anything (no file or table is created), from
    /// settings that passed [`validate`](Self::validate). The default is
    /// [`SchemaLookup::Undeclared`]: a connector type whose system has a
    /// schema (a header, columns, an LDAP schema) implements this.
    fn schema(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
        ctx: &BuildContext,
    ) -> SchemaLookup {
        let _ = (settings, ctx);
        SchemaLookup::Undeclared
    }

    /// How changes of the system can be noticed, best first, from settings
    /// that passed [`validate`](Self::validate), without contacting the
    /// system. `shown` is the same `connector` table as the configuration
    /// file writes it (`${ENV}` references and `X_file` keys as they are):
    /// the offers' sentences and shown paths quote it, never `settings`,
    /// so they print no value a reference or a file stands for. The
    /// default offers nothing.
    fn change_detection(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
        shown: &serde_json::Map<String, serde_json::Value>,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        let _ = (settings, shown, ctx);
        ChangeDetection::none(format!("{} connector: no change notification", self.kind()))
    }

    /// The attributes of this type's systems that are write-only whether
    /// or not the configuration says so (passwords: the LDAP connector's
    /// `userPassword` and `unicodePwd`): never read back by an import,
    /// never kept in clear text. The default is none.
    fn write_only_attributes(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Functions this connector type lends to trigger scripts (the SQLite
    /// connector's `sql_scalar`). The default lends none.
    fn script_functions(&self) -> Vec<ScriptFunction> {
        Vec::new()
    }

    /// The keys its `connector` table accepts besides `type` (the keys
    /// [`validate`](Self::validate) does not reject as unknown), with the
    /// shape of those that hold tables: the list of every key the
    /// configuration accepts, and the docs test that checks the reference
    /// documents each, read it. The default declares none.
    fn settings_shape(&self) -> Vec<(String, Shape)> {
        Vec::new()
    }
}

/// The connector types a program knows.
#[derive(Default)]
pub struct Registry {
    factories: Vec<Box<dyn ConnectorFactory>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.factories.iter().map(|x| x.kind()))
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn register(&mut self, factory: Box<dyn ConnectorFactory>) {
        self.factories.push(factory);
    }
    pub fn get(&self, kind: &str) -> Option<&dyn ConnectorFactory> {
        self.factories
            .iter()
            .find(|f| f.kind() == kind)
            .map(|f| f.as_ref())
    }
    pub fn kinds(&self) -> Vec<&'static str> {
        self.factories.iter().map(|f| f.kind()).collect()
    }

    /// What the factory of `kind` offers to notice changes (see
    /// [`ConnectorFactory::change_detection`]); nothing, and why, for a
    /// type this registry does not know.
    pub fn change_detection(
        &self,
        kind: &str,
        settings: &serde_json::Map<String, serde_json::Value>,
        shown: &serde_json::Map<String, serde_json::Value>,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        match self.get(kind) {
            Some(factory) => factory.change_detection(settings, shown, ctx),
            None => ChangeDetection::none(format!("{kind} connector: unknown connector type")),
        }
    }

    /// Every function the registered connector types lend to trigger
    /// scripts (the first of a name wins).
    pub fn script_functions(&self) -> Vec<ScriptFunction> {
        let mut out: Vec<ScriptFunction> = Vec::new();
        for f in self.factories.iter().flat_map(|f| f.script_functions()) {
            if !out.iter().any(|o| o.name == f.name) {
                out.push(f);
            }
        }
        out
    }
}
