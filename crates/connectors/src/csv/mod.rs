//! The CSV connector (`type = "csv"`): a file with a header row, one object
//! per row. Streaming import in batches with per-record errors; no delta
//! support (a delta import reads the whole file) but a fingerprint watermark
//! so an untouched file is reported `unchanged`; atomic export.

mod change;
pub mod config;
mod export;
mod group;
mod import;
mod multi;
mod quotes;
mod schema;
mod source;

use crate::settings::{self, Settings};
use autosync_connector::{
    BuildContext, Capabilities, ChangeDetection, Connector, ConnectorError, ConnectorErrorKind,
    ConnectorFactory, ExportSession, ImportStream, SchemaLookup, SettingError, Shape,
};
pub use change::CsvContent;
pub use config::{CsvConfig, CsvSettings, Grouping};

/// Builds CSV connectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct CsvFactory;

impl ConnectorFactory for CsvFactory {
    fn kind(&self) -> &'static str {
        "csv"
    }

    fn settings_shape(&self) -> Vec<(String, Shape)> {
        settings::shape(
            config::KEYS,
            vec![("group_values", Shape::Leaf.map("attribute"))],
        )
    }

    fn validate(&self, settings: &Settings, ctx: &BuildContext) -> Result<(), Vec<SettingError>> {
        CsvSettings::from_settings(settings, ctx).map(|_| ())
    }

    fn build(
        &self,
        settings: &Settings,
        ctx: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        let s = CsvSettings::from_settings(settings, ctx)
            .map_err(|e| settings::into_connector_error(&ctx.ma, &e))?;
        Ok(Box::new(CsvConnector::new(s)))
    }

    /// The file's header row; unavailable while the file does not exist.
    fn schema(&self, settings: &Settings, ctx: &BuildContext) -> SchemaLookup {
        match CsvSettings::from_settings(settings, ctx) {
            Ok(s) => schema::read(&s, &settings::written_path(settings, &s.path)),
            Err(e) => {
                SchemaLookup::Unavailable(settings::into_connector_error(&ctx.ma, &e).message)
            }
        }
    }

    /// A file watch on the file, read with the connector's delimiter.
    fn change_detection(
        &self,
        settings: &Settings,
        shown: &Settings,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        let parsed = CsvSettings::from_settings(settings, ctx);
        settings::change_detection("csv", ctx, parsed, |s| change::detection(s, shown))
    }
}

/// A CSV connector bound to one MA's settings.
#[derive(Clone, Debug)]
pub struct CsvConnector {
    settings: CsvSettings,
    /// Objects the connector space holds with nothing to send (see
    /// `Connector::expect_existing`).
    existing: u64,
    /// With `group_by`: the settings its rows are read with.
    rows: Option<CsvSettings>,
}

impl CsvConnector {
    pub fn new(settings: CsvSettings) -> Self {
        let rows = settings
            .grouping
            .as_ref()
            .map(|g| group::row_settings(&settings, g));
        CsvConnector {
            settings,
            rows,
            existing: 0,
        }
    }
}

impl Connector for CsvConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            value_changes: false,
            delta_import: false,
            export: self.settings.grouping.is_none(),
            change_notification: false,
        }
    }

    fn full_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        if let (Some(g), Some(rows)) = (&self.settings.grouping, &self.rows) {
            let read = import::CsvImport::start(rows, watermark)?;
            return Ok(Box::new(group::GroupedImport::new(read, &self.settings, g)));
        }
        Ok(Box::new(import::CsvImport::start(
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

    fn begin_export(&mut self) -> Result<Box<dyn ExportSession + '_>, ConnectorError> {
        if let Some(g) = &self.settings.grouping {
            return Err(ConnectorError::new(
                ConnectorErrorKind::Configuration,
                format!(
                    "{}: a file read as groups (group_by = {:?}) is only imported; export to \
                     another MA",
                    self.settings.path.display(),
                    g.by
                ),
            ));
        }
        check_not_lost(&self.settings.path, self.existing)?;
        Ok(Box::new(export::CsvExport::begin(&self.settings)?))
    }

    fn expect_existing(&mut self, objects: u64) {
        self.existing = objects;
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
