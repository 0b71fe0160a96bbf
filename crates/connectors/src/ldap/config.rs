//! Settings of the LDAP connector and their validation. The password comes
//! through the configuration's `${ENV}` and `password_file` (the factory
//! sees `password`); it never appears in a message, a log or `Debug`.

mod object_classes;
mod url;

use super::discovery::shown_url;
use super::dn::Dn;
use crate::settings::{self, KeyHelp, Settings, error};
use autosync_connector::{BuildContext, SettingError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `connector` table of a `type = "ldap"` MA.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:port`, `ldaps://host:port` or `ldapi://<socket>`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub start_tls: bool,
    /// PEM file of CA certificates trusted besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `false` turns certificate verification off (logged).
    #[serde(default)]
    pub tls_verify: Option<bool>,
    /// The DN to bind as (simple bind).
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// Its password (write `password_file` or `${ENV}`).
    #[serde(default)]
    pub password: Option<String>,
    /// `"external"`: SASL EXTERNAL bind.
    #[serde(default)]
    pub sasl: Option<Sasl>,
    /// The subtrees read (one or more).
    pub base_dns: Vec<String>,
    /// An LDAP filter (default `(objectClass=*)`).
    #[serde(default)]
    pub filter: Option<String>,
    /// `sub` (default), `one` or `base`.
    #[serde(default)]
    pub scope: Option<Scope>,
    /// Entries per page of a paged search (default 500).
    #[serde(default)]
    pub page_size: Option<usize>,
    /// The attribute holding the anchor (default: the object types'
    /// anchor).
    #[serde(default)]
    pub anchor_attribute: Option<String>,
    /// Object type -> its object class(es).
    #[serde(default)]
    pub object_classes: BTreeMap<String, OneOrMany>,
    /// The attributes read (default: every user attribute).
    #[serde(default)]
    pub attributes: Option<Vec<String>>,
    /// Attributes whose values are binary whatever they hold.
    #[serde(default)]
    pub binary_attributes: Vec<String>,
    /// Make the missing `ou=` entries above an entry added or moved.
    #[serde(default)]
    pub create_parents: bool,
    /// Milliseconds to wait for the server to accept a connection.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Milliseconds to wait for the answer to one operation (one page).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &super::discovery::shown_url(&self.url))
            .field("bind_dn", &self.bind_dn)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("base_dns", &self.base_dns)
            .finish_non_exhaustive()
    }
}

/// A SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sasl {
    /// The identity the transport proves (the peer's user over `ldapi://`,
    /// a client certificate over TLS).
    External,
}

/// A search scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The base entry and everything under it.
    #[default]
    #[serde(alias = "subtree")]
    Sub,
    /// The entries right under the base.
    #[serde(alias = "onelevel")]
    One,
    /// The base entry only.
    Base,
}

/// One string or a list of them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

pub const DEFAULT_PAGE_SIZE: usize = 500;
pub const DEFAULT_FILTER: &str = "(objectClass=*)";

pub const KEYS: &[KeyHelp] = &[
    KeyHelp {
        key: "url",
        help: "the server, e.g. url = \"ldaps://ldap.example.org\" (ldap://, ldaps:// or ldapi://)",
    },
    KeyHelp {
        key: "start_tls",
        help: "start_tls = true upgrades an ldap:// connection to TLS with StartTLS",
    },
    KeyHelp {
        key: "ca_file",
        help: "a PEM file of CA certificates trusted besides the system's, e.g. ca_file = \"ca.pem\" (with ldaps:// or start_tls)",
    },
    KeyHelp {
        key: "tls_verify",
        help: "tls_verify = false turns certificate verification off (logged as a warning; with ldaps:// or start_tls)",
    },
    KeyHelp {
        key: "bind_dn",
        help: "the DN to bind as, e.g. bind_dn = \"cn=sync,ou=services,dc=example,dc=org\" (with password)",
    },
    KeyHelp {
        key: "password",
        help: "the bind password: password = \"${LDAP_PASSWORD}\" or password_file = \"ldap.secret\" (with bind_dn)",
    },
    KeyHelp {
        key: "sasl",
        help: "sasl = \"external\" binds with SASL EXTERNAL (the ldapi:// peer or a TLS client certificate); not with bind_dn",
    },
    KeyHelp {
        key: "base_dns",
        help: "the subtrees read, e.g. base_dns = [\"ou=people,dc=example,dc=org\"]",
    },
    KeyHelp {
        key: "filter",
        help: "an LDAP filter, e.g. filter = \"(!(employeeType=contractor))\" (default (objectClass=*))",
    },
    KeyHelp {
        key: "scope",
        help: "scope = \"sub\" (default), \"one\" or \"base\"",
    },
    KeyHelp {
        key: "page_size",
        help: "entries per page of the paged search (and per import batch), 1 to 1000000 (default 500)",
    },
    KeyHelp {
        key: "anchor_attribute",
        help: "the attribute holding the anchor: entryUUID, objectGUID, nsUniqueId, ipaUniqueID, dn (the DN itself) or an attribute the export writes, e.g. uid (default: the object types' anchor)",
    },
    KeyHelp {
        key: "object_classes",
        help: "the object class(es) of each object type, e.g. object_classes = { person = \"inetOrgPerson\", group = \"groupOfNames\" }",
    },
    KeyHelp {
        key: "attributes",
        help: "the attributes read, e.g. attributes = [\"cn\", \"mail\", \"member\"] (default: every user attribute)",
    },
    KeyHelp {
        key: "binary_attributes",
        help: "attributes whose values are binary, e.g. binary_attributes = [\"jpegPhoto\", \"thumbnailPhoto\"]",
    },
    KeyHelp {
        key: "create_parents",
        help: "true: an entry added or moved under a missing `ou=` entry (below a base DN) gets it made, as an organizationalUnit (default false)",
    },
    KeyHelp {
        key: "connect_timeout_ms",
        help: "milliseconds to wait for a connection (default 10000)",
    },
    KeyHelp {
        key: "timeout_ms",
        help: "milliseconds to wait for the answer to one operation or page (default 120000)",
    },
];

fn help(key: &str) -> Option<String> {
    KEYS.iter()
        .find(|k| k.key == key)
        .map(|k| k.help.to_owned())
}

/// Where the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `ldap://` (optionally with StartTLS).
    Plain,
    /// `ldaps://`.
    Tls,
    /// `ldapi://` (a Unix socket).
    Socket,
}

/// How the connector binds.
#[derive(Clone, PartialEq, Eq)]
pub enum Bind {
    Anonymous,
    Simple { dn: String, password: String },
    External,
}

impl std::fmt::Debug for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bind::Anonymous => f.write_str("Anonymous"),
            Bind::Simple { dn, .. } => write!(f, "Simple({dn:?}, <secret>)"),
            Bind::External => f.write_str("External"),
        }
    }
}

/// What the anchor is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The entry's DN.
    Dn,
    /// An attribute the server assigns (entryUUID, objectGUID, ...).
    Assigned(String),
    /// An attribute the export writes (uid, employeeNumber, ...).
    Written(String),
}

impl Anchor {
    /// The attribute's name (`dn` for the DN).
    pub fn name(&self) -> &str {
        match self {
            Anchor::Dn => "dn",
            Anchor::Assigned(a) | Anchor::Written(a) => a,
        }
    }

    /// Whether it is AD's objectGUID (binary, shown as a GUID).
    pub fn is_guid(&self) -> bool {
        matches!(self, Anchor::Assigned(a) if a.eq_ignore_ascii_case("objectGUID"))
    }
}

/// Attributes a server assigns to every entry, usable as anchors.
pub const ASSIGNED_ANCHORS: &[&str] = &["entryUUID", "objectGUID", "nsUniqueId", "ipaUniqueID"];

/// One object type: its name, classes (the first is written first on an
/// add) and the attribute holding the DN, if declared.
#[derive(Clone, Debug)]
pub struct TypeMap {
    pub name: String,
    pub classes: Vec<String>,
    pub dn_attr: Option<String>,
}

/// The validated settings.
#[derive(Clone, Debug)]
pub struct LdapSettings {
    pub ma: String,
    pub url: String,
    pub transport: Transport,
    pub start_tls: bool,
    pub ca_file: Option<PathBuf>,
    pub tls_verify: bool,
    pub bind: Bind,
    pub base_dns: Vec<String>,
    pub filter: String,
    pub scope: Scope,
    pub page_size: usize,
    pub anchor: Anchor,
    pub types: Vec<TypeMap>,
    /// `None`: every user attribute.
    pub attributes: Option<Vec<String>>,
    pub binary_attributes: Vec<String>,
    /// Make missing `ou=` parents on export (`create_parents`).
    pub create_parents: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl LdapSettings {
    /// Parse and check everything; one error per problem.
    pub fn from_settings(
        map: &Settings,
        ctx: &BuildContext,
    ) -> Result<LdapSettings, Vec<SettingError>> {
        let config: LdapConfig = settings::parse(map, KEYS, &["url", "base_dns"])?;
        let mut errors = Vec::new();
        let mut push = |key: &str, message: String| errors.push(error(key, &message, help(key)));

        let (transport, problem) = url::transport_of(&config.url);
        if let Some(problem) = problem {
            push("url", problem);
        }
        if config.start_tls && transport != Transport::Plain {
            push(
                "start_tls",
                "`start_tls` upgrades an ldap:// connection; this URL is not one".into(),
            );
        }
        let tls = transport == Transport::Tls || config.start_tls;
        if config.ca_file.is_some() && !tls {
            push(
                "ca_file",
                "`ca_file` is for TLS: use an ldaps:// URL or start_tls = true".into(),
            );
        }
        if matches!(&config.ca_file, Some(p) if p.as_os_str().is_empty()) {
            push("ca_file", "`ca_file` is empty".into());
        }
        if config.tls_verify.is_some() && !tls {
            push(
                "tls_verify",
                "`tls_verify` is for TLS: use an ldaps:// URL or start_tls = true".into(),
            );
        }
        let tls_verify = config.tls_verify.unwrap_or(true);
        if !tls_verify && config.ca_file.is_some() {
            push(
                "tls_verify",
                "`tls_verify = false` checks no certificate: `ca_file` would not be used; keep one"
                    .into(),
            );
        }

        let bind = match (&config.sasl, &config.bind_dn, &config.password) {
            (Some(Sasl::External), None, None) => Bind::External,
            (Some(_), _, _) => {
                push(
                    "sasl",
                    "`sasl = \"external\"` binds without a DN or password: remove `bind_dn` and `password`".into(),
                );
                Bind::Anonymous
            }
            (None, Some(dn), Some(password)) => {
                if dn.trim().is_empty() {
                    push("bind_dn", "`bind_dn` is empty".into());
                } else if let Err(e) = Dn::parse(dn) {
                    push("bind_dn", format!("`bind_dn` is not a DN: {e}"));
                }
                Bind::Simple {
                    dn: dn.clone(),
                    password: password.clone(),
                }
            }
            (None, Some(_), None) => {
                push(
                    "password",
                    "`bind_dn` needs a password: password = \"${LDAP_PASSWORD}\" or password_file = \"ldap.secret\"".into(),
                );
                Bind::Anonymous
            }
            (None, None, Some(_)) => {
                push(
                    "bind_dn",
                    "`password` is given without `bind_dn`: say who binds".into(),
                );
                Bind::Anonymous
            }
            (None, None, None) => Bind::Anonymous,
        };

        if config.base_dns.is_empty() {
            push(
                "base_dns",
                "`base_dns` is empty: name at least one subtree".into(),
            );
        }
        let mut parsed: Vec<Dn> = Vec::new();
        for b in &config.base_dns {
            match Dn::parse(b) {
                Ok(d) if !d.is_root() => parsed.push(d),
                Ok(_) => push("base_dns", "a base DN is empty".into()),
                Err(e) => push("base_dns", format!("`{b}` is not a DN: {e}")),
            }
        }
        for (i, a) in parsed.iter().enumerate() {
            for b in parsed.iter().skip(i + 1) {
                if a.is_within(b) || b.is_within(a) {
                    push(
                        "base_dns",
                        format!(
                            "`{a}` and `{b}` overlap: an entry would be read twice; keep the outer one"
                        ),
                    );
                }
            }
        }
        let filter = config
            .filter
            .clone()
            .unwrap_or_else(|| DEFAULT_FILTER.into());
        if let Err(e) = check_filter(&filter) {
            push("filter", format!("`{filter}` is not an LDAP filter: {e}"));
        }
        if let Some(n) = config.page_size
            && (n == 0 || n > 1_000_000)
        {
            push("page_size", format!("page_size {n} is out of range"));
        }

        let mut anchors: Vec<&str> = ctx.object_types.iter().map(|t| t.anchor.as_str()).collect();
        anchors.dedup();
        let anchor_name = match (&config.anchor_attribute, anchors.as_slice()) {
            (Some(a), _) => a.clone(),
            (None, [a]) => (*a).to_owned(),
            (None, []) => "entryUUID".to_owned(),
            (None, _) => {
                push(
                    "anchor_attribute",
                    "the object types have different anchors: say which attribute holds the anchor"
                        .into(),
                );
                "entryUUID".to_owned()
            }
        };
        if !valid_attribute(&anchor_name) {
            push(
                "anchor_attribute",
                format!("`{anchor_name}` is not an attribute name"),
            );
        }
        let anchor = if anchor_name.eq_ignore_ascii_case("dn") {
            Anchor::Dn
        } else if let Some(a) = ASSIGNED_ANCHORS
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&anchor_name))
        {
            Anchor::Assigned((*a).to_owned())
        } else {
            Anchor::Written(anchor_name)
        };

        for message in object_classes::problems(&config.object_classes, ctx) {
            push("object_classes", message);
        }
        for (key, list) in [
            (
                "attributes",
                config.attributes.as_deref().unwrap_or_default(),
            ),
            ("binary_attributes", config.binary_attributes.as_slice()),
        ] {
            for a in list {
                if !valid_attribute(a) {
                    push(key, format!("`{a}` is not an attribute name"));
                }
            }
        }
        for (key, v) in [
            ("connect_timeout_ms", config.connect_timeout_ms),
            ("timeout_ms", config.timeout_ms),
        ] {
            if v == Some(0) {
                push(key, format!("`{key}` must be more than 0"));
            }
        }
        if ctx.object_types.is_empty() {
            errors.push(error(
                "object_types",
                &format!("MA `{}` has no object type", ctx.ma),
                Some(
                    "add object_types = [{ name = \"person\", anchor = \"entryUUID\", dn = \"dn\" }] to the MA"
                        .into(),
                ),
            ));
        }
        // The CA file is read at every connection: one that cannot be
        // read would fail them all, so it is an error now (as a secret
        // file that cannot be read is), not a surprise at the first run.
        if let Some(ca) = config
            .ca_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
            && tls
            && tls_verify
            && let Err(message) = check_ca_file(&settings::resolve(ctx, ca), ca)
        {
            errors.push(error(
                "ca_file",
                &message,
                Some(
                    "a PEM file of CA certificates (-----BEGIN CERTIFICATE-----); a relative path is relative to the configuration file's folder"
                        .into(),
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if !tls_verify {
            tracing::warn!(
                ma = %ctx.ma,
                url = %shown_url(&config.url),
                "tls_verify = false: the LDAP server's certificate is not checked; anyone between autosync and the server can read and change what is sent, the password included"
            );
        }
        let types = ctx
            .object_types
            .iter()
            .map(|t| TypeMap {
                name: t.name.clone(),
                classes: config
                    .object_classes
                    .get(&t.name)
                    .map(OneOrMany::values)
                    .unwrap_or_default(),
                dn_attr: settings::ObjectTypes::dn_attr(t)
                    .filter(|d| !d.eq_ignore_ascii_case(anchor.name()) || anchor == Anchor::Dn)
                    .map(str::to_owned),
            })
            .collect();
        Ok(LdapSettings {
            ma: ctx.ma.clone(),
            url: config.url,
            transport,
            start_tls: config.start_tls,
            ca_file: config.ca_file.map(|p| settings::resolve(ctx, &p)),
            tls_verify,
            bind,
            base_dns: config.base_dns,
            filter,
            scope: config.scope.unwrap_or_default(),
            page_size: config.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            anchor,
            types,
            attributes: config.attributes,
            binary_attributes: config.binary_attributes,
            create_parents: config.create_parents,
            connect_timeout: Duration::from_millis(config.connect_timeout_ms.unwrap_or(10_000)),
            timeout: Duration::from_millis(config.timeout_ms.unwrap_or(120_000)),
        })
    }

    /// Whether `binary_attributes` names `name` (ignoring case).
    pub fn is_binary(&self, name: &str) -> bool {
        self.binary_attributes
            .iter()
            .any(|b| b.eq_ignore_ascii_case(name))
    }

    /// The filter a search uses: the configured one, narrowed to the
    /// object types' classes when they are given.
    pub fn search_filter(&self) -> String {
        let typed: Vec<String> = self
            .types
            .iter()
            .filter(|t| !t.classes.is_empty())
            .map(|t| {
                let each: Vec<String> = t
                    .classes
                    .iter()
                    .map(|c| format!("(objectClass={})", ldap3::ldap_escape(c.as_str())))
                    .collect();
                if each.len() == 1 {
                    each.concat()
                } else {
                    format!("(&{})", each.concat())
                }
            })
            .collect();
        if typed.is_empty() || typed.len() < self.types.len() {
            return self.filter.clone();
        }
        let classes = if typed.len() == 1 {
            typed.concat()
        } else {
            format!("(|{})", typed.concat())
        };
        if self.filter == DEFAULT_FILTER {
            classes
        } else {
            format!("(&{}{classes})", self.filter)
        }
    }
}

/// Whether the CA file at `path` (written `written`) can be read and holds
/// a certificate the TLS connection can trust, as a connection reads it.
fn check_ca_file(path: &Path, written: &Path) -> Result<(), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let shown = if written.is_absolute() {
        format!("`{}`", written.display())
    } else {
        format!("`{}` ({})", written.display(), path.display())
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read ca_file {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "ca_file {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    let (added, _) = rustls::RootCertStore::empty().add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "ca_file {shown} holds no certificate that can be used (none parses as an X.509 CA certificate)"
        ));
    }
    Ok(())
}

/// Whether `f` parses as an LDAP filter.
pub fn check_filter(f: &str) -> Result<(), String> {
    if !f.starts_with('(') {
        return Err("a filter is written in parentheses, e.g. (objectClass=person)".into());
    }
    ldap3::parse_filter(f)
        .map(drop)
        .map_err(|_| "it does not parse (check the parentheses and escape * ( ) \\ in values as \\2a \\28 \\29 \\5c)".into())
}

/// An attribute description: a name (letters, digits, hyphens, starting
/// with a letter) or an OID, optionally with options (`;binary`).
pub fn valid_attribute(a: &str) -> bool {
    let name = a.split(';').next().unwrap_or_default();
    let keystring = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !name.is_empty()
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    keystring || oid
}
