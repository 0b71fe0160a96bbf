//! The JSON Lines connector (`type = "jsonl"`): one JSON object per line,
//! `{"attr": value, ...}` with values in the model's JSON form (strings,
//! integers, booleans, arrays for multi-valued attributes,
//! `{"base64": ...}` for binary data; `null` means absent). Same semantics
//! as the CSV connector: streaming import with per-line errors, fingerprint
//! watermark, no delta, atomic export with lines sorted by anchor.

mod change;
pub mod config;
mod export;
mod import;

use crate::settings::{self, Settings};
use autosync_connector::{
    BuildContext, Capabilities, ChangeDetection, Connector, ConnectorError, ConnectorFactory,
    ExportSession, ImportStream, SchemaLookup, SettingError, Shape,
};
pub use change::JsonlContent;
pub use config::{JsonlConfig, JsonlSettings};

/// Builds JSON Lines connectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonlFactory;

impl ConnectorFactory for JsonlFactory {
    fn kind(&self) -> &'static str {
        "jsonl"
    }

    fn settings_shape(&self) -> Vec<(String, Shape)> {
        settings::shape(config::KEYS, Vec::new())
    }

    fn validate(&self, settings: &Settings, ctx: &BuildContext) -> Result<(), Vec<SettingError>> {
        JsonlSettings::from_settings(settings, ctx).map(|_| ())
    }

    fn build(
        &self,
        settings: &Settings,
        ctx: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        let s = JsonlSettings::from_settings(settings, ctx)
            .map_err(|e| settings::into_connector_error(&ctx.ma, &e))?;
        Ok(Box::new(JsonlConnector::new(s)))
    }

    /// Each line has the keys it has: no schema before a run (a full
    /// import warns about a flow whose attribute no object has).
    fn schema(&self, _settings: &Settings, _ctx: &BuildContext) -> SchemaLookup {
        SchemaLookup::Undeclared
    }

    /// A file watch on the file, read line by line as JSON objects.
    fn change_detection(
        &self,
        settings: &Settings,
        shown: &Settings,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        let parsed = JsonlSettings::from_settings(settings, ctx);
        settings::change_detection("jsonl", ctx, parsed, |s| change::detection(s, shown))
    }
}

/// A JSON Lines connector bound to one MA's settings.
#[derive(Clone, Debug)]
pub struct JsonlConnector {
    settings: JsonlSettings,
    /// Objects the connector space holds with nothing to send (see
    /// `Connector::expect_existing`).
    existing: u64,
}

impl JsonlConnector {
    pub fn new(settings: JsonlSettings) -> Self {
        JsonlConnector {
            settings,
            existing: 0,
        }
    }
}

impl Connector for JsonlConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            value_changes: false,
            delta_import: false,
            export: true,
            change_notification: false,
        }
    }

    fn full_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        Ok(Box::new(import::JsonlImport::start(
            &self.settings,
            watermark,
        )?))
    }

    fn delta_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        self.full_import(watermark)
    }

    fn expect_existing(&mut self, objects: u64) {
        self.existing = objects;
    }

    fn begin_export(&mut self) -> Result<Box<dyn ExportSession + '_>, ConnectorError> {
        check_not_lost(&self.settings.path, self.existing)?;
        Ok(Box::new(export::JsonlExport::begin(&self.settings)?))
    }
}

/// A target file missing although objects were exported to it or read from
/// it (`existing`, see `Connector::expect_existing`) was lost: refused
/// rather than made again empty, which the next import would take for every
/// object deleted. A first export creates it.
fn check_not_lost(path: &std::path::Path, existing: u64) -> Result<(), ConnectorError> {
    if existing == 0 || path.exists() {
        return Ok(());
    }
    Err(ConnectorError::new(
        autosync_connector::ConnectorErrorKind::ServerDown,
        format!(
            "file {} does not exist, yet objects were exported to it or read from it: it was lost or moved; restore it (it is not made again empty: the next import would take every object for deleted). If it was removed on purpose, `autosync cs delete` of this MA starts it again",
            path.display(),
        ),
    ))
}
