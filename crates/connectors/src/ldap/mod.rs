//! The LDAP connector (`type = "ldap"`): entries of one or more subtrees
//! of a directory (OpenLDAP, 389-ds, FreeIPA, Active Directory), over
//! `ldap://` (optionally with StartTLS), `ldaps://` or `ldapi://`, bound
//! with a DN and password or SASL EXTERNAL.
//!
//! * Import ([`import`]): paged searches, entries typed by object class,
//!   anchored by `entryUUID` (or `objectGUID`, `nsUniqueId`,
//!   `ipaUniqueID`, the DN, or an attribute the export writes), shown by
//!   their DN; values typed from the directory's schema ([`schema`]).
//! * Delta import ([`watermark`]): content synchronisation (RFC 4533,
//!   [`content_sync`]) where the server offers it and the anchor is
//!   `entryUUID`, else change stamps ([`stamps`]); a cookie the server no
//!   longer takes makes it read everything, and say so.
//! * Export ([`export`]): add, modify (whole attributes replaced,
//!   multi-valued ones changed value by value), delete, rename and move,
//!   one result per change.
//! * Filters are built from data only through `ldap3::ldap_escape`; DNs
//!   come whole from the engine and are parsed, never pasted together.
//!   An import whose configured `filter` names an attribute the schema
//!   lacks stops before it reads ([`filter`]): it would match nothing.
//!
//! * Schema ([`discovery`]): for `autosync check`, the attributes each
//!   object type's classes allow, read from the subschema entry.
//! * Change notification ([`listen`]): a persistent search (content
//!   synchronisation, or the persistent-search control) on a connection
//!   of its own, for the `change-notification` trigger.

mod ber;
mod classes;
pub mod config;
mod content_sync;
pub mod controls;
mod discovery;
pub mod dn;
mod export;
mod filter;
mod import;
mod listen;
mod pool;
mod schema;
mod session;
mod stamps;
mod values;
mod watermark;

use crate::settings::{self, Settings};
use autosync_connector::{
    BuildContext, Capabilities, ChangeDetection, ChangeOffer, ChangeOfferKind, Connector,
    ConnectorError, ConnectorErrorKind, ConnectorFactory, ExportSession, ImportStream,
    NotificationOffer, SchemaLookup, SettingError, Shape,
};
pub use config::{LdapConfig, LdapSettings};
use content_sync::SyncImport;
use import::{LdapImport, Track};
use session::Session;
use stamps::Stamps;
use std::sync::Arc;
use watermark::{Mode, Watermark};

/// Builds LDAP connectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct LdapFactory;

impl ConnectorFactory for LdapFactory {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn write_only_attributes(&self) -> Vec<&'static str> {
        vec!["userPassword", "unicodePwd"]
    }

    fn settings_shape(&self) -> Vec<(String, Shape)> {
        settings::shape(
            config::KEYS,
            vec![("object_classes", Shape::Leaf.map("object type"))],
        )
    }

    fn validate(&self, settings: &Settings, ctx: &BuildContext) -> Result<(), Vec<SettingError>> {
        LdapSettings::from_settings(settings, ctx).map(|_| ())
    }

    /// A persistent search of its base DNs (proposed): the server tells
    /// each change as it is made.
    fn change_detection(
        &self,
        settings: &Settings,
        shown: &Settings,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        let parsed = LdapSettings::from_settings(settings, ctx);
        settings::change_detection("ldap", ctx, parsed, |s| {
            let bases = match shown.get("base_dns") {
                Some(serde_json::Value::Array(b)) => b
                    .iter()
                    .map(|v| v.as_str().unwrap_or("?").to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "`base_dns`".to_owned(),
            };
            let url = match crate::watch::shown_text(shown, &["url"]) {
                Some(url) => discovery::shown_url(&url),
                None => "`url`".to_owned(),
            };
            let channel = format!("a persistent search of {bases} on {url}");
            ChangeDetection {
                offers: vec![ChangeOffer {
                    sentence: format!(
                        "ldap connector: {channel} (content synchronisation, or the persistent-search control)"
                    ),
                    kind: ChangeOfferKind::Notification(NotificationOffer {
                        channel,
                        source: Arc::new(listen::LdapChanges::new(s.clone())),
                    }),
                    proposed: true,
                }],
                why_none: None,
            }
        })
    }

    /// Connects and reads the subschema entry (nothing is changed).
    fn schema(&self, settings: &Settings, ctx: &BuildContext) -> SchemaLookup {
        match LdapSettings::from_settings(settings, ctx) {
            Ok(s) => discovery::read(&s),
            Err(e) => {
                SchemaLookup::Unavailable(settings::into_connector_error(&ctx.ma, &e).message)
            }
        }
    }

    fn build(
        &self,
        settings: &Settings,
        ctx: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        let s = LdapSettings::from_settings(settings, ctx)
            .map_err(|e| settings::into_connector_error(&ctx.ma, &e))?;
        Ok(Box::new(LdapConnector::new(s)))
    }
}

/// An LDAP connector bound to one MA's settings. It takes the MA's idle
/// session, or connects, on first use, and again when the connection was
/// lost; it leaves its session open for the next one ([`pool`]).
#[derive(Debug)]
pub struct LdapConnector {
    settings: LdapSettings,
    session: Option<pool::Held>,
}

impl LdapConnector {
    pub fn new(settings: LdapSettings) -> Self {
        LdapConnector {
            settings,
            session: None,
        }
    }

    fn ready(&mut self) -> Result<(&mut Session, &LdapSettings), ConnectorError> {
        if self.session.as_mut().is_none_or(|h| h.session.is_closed()) {
            self.session = Some(pool::take(&self.settings)?);
        }
        match &mut self.session {
            Some(held) => Ok((&mut held.session, &self.settings)),
            None => Err(ConnectorError::new(
                ConnectorErrorKind::Other,
                "the LDAP connection is not open",
            )),
        }
    }
}

impl Drop for LdapConnector {
    fn drop(&mut self) {
        if let Some(held) = self.session.take() {
            pool::give_back(&self.settings, held);
        }
    }
}

impl Connector for LdapConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delta_import: true,
            export: true,
            change_notification: true,
            value_changes: true,
        }
    }

    fn full_import(
        &mut self,
        _watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        let (session, s) = self.ready()?;
        filter::check_import(s, &session.schema)?;
        Ok(match Mode::of(session, s) {
            Mode::ContentSync => Box::new(content_sync::full_read(session, s)),
            Mode::Stamp(a) => {
                let stamps = Stamps::new(&a, watermark::fingerprint(s), None);
                Box::new(LdapImport::new(session, s, Track::Stamps(stamps)))
            }
        })
    }

    /// The changes since `watermark`; everything when there is none (or
    /// one made for other settings), and then the stream says it is
    /// complete.
    fn delta_import(
        &mut self,
        watermark: Option<&str>,
    ) -> Result<Box<dyn ImportStream + '_>, ConnectorError> {
        let (session, s) = self.ready()?;
        filter::check_import(s, &session.schema)?;
        let mode = Mode::of(session, s);
        let saved = Watermark::read(watermark, s, &mode);
        Ok(match mode {
            Mode::ContentSync => match saved.and_then(|w| w.cookies()) {
                Some(cookies) => Box::new(SyncImport::new(session, s, cookies)),
                None => Box::new(content_sync::full_read(session, s)),
            },
            Mode::Stamp(a) => {
                let stamps = Stamps::new(&a, watermark::fingerprint(s), saved);
                Box::new(LdapImport::new(session, s, Track::Stamps(stamps)))
            }
        })
    }

    fn begin_export(&mut self) -> Result<Box<dyn ExportSession + '_>, ConnectorError> {
        let (session, s) = self.ready()?;
        Ok(Box::new(export::LdapExport::new(session, s)))
    }
}
