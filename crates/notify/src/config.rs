//! `[controller.notifications]`: which statuses to ignore, the reminder
//! period, the SMTP server and the webhooks. Secrets (the SMTP password,
//! webhook header values, webhook URLs, which often carry a token) are
//! redacted in `Debug` output.

use autosync_model::RunStatus;
use autosync_model::duration::HumanDuration;
use autosync_model::suggest;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default time after which a repeated failure is notified again.
pub const DEFAULT_REMINDER_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Default time limit of one send (SMTP conversation, webhook request).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest time limit of one webhook request: a webhook that takes
/// longer holds its own queue of notices that long for each.
pub const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Statuses not notified (and which reset suppression) by default.
pub const DEFAULT_IGNORE_STATUSES: &[RunStatus] =
    &[RunStatus::Success, RunStatus::CompletedNoObjects];

/// Every run status, to check and list names.
const ALL_STATUSES: &[RunStatus] = &[
    RunStatus::InProgress,
    RunStatus::Success,
    RunStatus::CompletedNoObjects,
    RunStatus::CompletedWarnings,
    RunStatus::CompletedExportErrors,
    RunStatus::CompletedSyncErrors,
    RunStatus::CompletedImportErrors,
    RunStatus::StoppedServerDown,
    RunStatus::StoppedConnectivity,
    RunStatus::StoppedDeadlocked,
    RunStatus::StoppedExtensionDllException,
    RunStatus::StoppedUserRequested,
    RunStatus::StoppedDeletionThresholdExceeded,
    RunStatus::StoppedStagingThresholdExceeded,
    RunStatus::StoppedServer,
    RunStatus::StoppedConfiguration,
    RunStatus::StoppedError,
    RunStatus::NoStartMaAlreadyRunning,
];

/// A secret string: readable with [`Secret::expose`], never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// `[controller.notifications]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Run statuses (MIM names) that are not notified; a run ending in one
    /// of them resets suppression for its MA and profile.
    pub ignore_statuses: Vec<String>,
    /// A failure that keeps repeating is notified again after this long.
    pub reminder_after: HumanDuration,
    /// Send a "recovered" notice when a notified failure clears.
    pub notify_recovered: bool,
    /// Email; none: no email.
    pub smtp: Option<SmtpConfig>,
    /// Webhooks (HTTP POST of a JSON document), each independent.
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            ignore_statuses: DEFAULT_IGNORE_STATUSES
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            reminder_after: HumanDuration(DEFAULT_REMINDER_AFTER),
            notify_recovered: true,
            smtp: None,
            webhooks: Vec::new(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// Plain text (only for a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl Security {
    /// The usual port for this security.
    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        }
    }
}

/// `[controller.notifications.smtp]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 25 (`none`), 587 (`starttls`), 465 (`tls`).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub username: Option<String>,
    /// Also `password_file` (read by the configuration layer).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender, `addr@example.org` or `Name <addr@example.org>`.
    pub from: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// PEM file of CA certificates trusted for the server's certificate in
    /// addition to the system's (an internal CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }
}

/// One `[[controller.notifications.webhooks]]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the JSON document is POSTed to.
    pub url: Secret,
    /// Extra request headers (e.g. `Authorization`); values are secret.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

impl WebhookConfig {
    /// The URL without what may be secret (user info, path, query): for
    /// logs and error messages.
    pub fn target(&self) -> String {
        redact_url(self.url.expose())
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &Secret> =
            self.headers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        f.debug_struct("WebhookConfig")
            .field("url", &self.target())
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn default_timeout() -> HumanDuration {
    HumanDuration(DEFAULT_SEND_TIMEOUT)
}

/// `scheme://host[:port]/…`: the URL with user info, path and query cut
/// (webhook URLs of chat services carry their token in the path).
/// Whether the port an URL authority (`user@host:port`, `[v6]:port`)
/// names, if any, is one (1 to 65535).
fn port_ok(authority: &str) -> bool {
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let port = if host_port.starts_with('[') {
        host_port.split_once("]:").map(|(_, p)| p)
    } else {
        host_port.rsplit_once(':').map(|(_, p)| p)
    };
    port.is_none_or(|p| p.is_empty() || p.parse::<u16>().is_ok_and(|p| p > 0))
}

pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "<invalid url>".into(),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let cut = rest.len() > authority.len();
    format!("{scheme}://{host}{}", if cut { "/…" } else { "" })
}

/// One step of the path to a key, relative to `[controller.notifications]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySegment {
    Key(String),
    Index(usize),
}

/// A problem found by [`NotifyConfig::validate`]: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Path below `[controller.notifications]`, e.g. `smtp`, `to`, `1`.
    pub path: Vec<KeySegment>,
    pub message: String,
}

impl ConfigProblem {
    fn new(path: Vec<KeySegment>, message: impl Into<String>) -> Self {
        ConfigProblem {
            path,
            message: message.into(),
        }
    }

    /// The dotted key, e.g. `controller.notifications.smtp.to[1]`.
    pub fn key(&self) -> String {
        let mut out = String::from("controller.notifications");
        for seg in &self.path {
            match seg {
                KeySegment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                KeySegment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key(), self.message)
    }
}

fn key(k: &str) -> KeySegment {
    KeySegment::Key(k.to_owned())
}

/// serde's message about a value in words (the unknown keys apart).
fn reword(message: &str) -> String {
    if let Some(field) = between(message, "missing field `", "`") {
        return format!("missing key `{field}` (add `{field} = ...` to this table)");
    }
    if let Some(variant) = between(message, "unknown variant `", "`") {
        let known = backticked(message.split_once("expected").map_or("", |(_, k)| k));
        let hint = suggest::did_you_mean(variant, known.iter().map(String::as_str))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        return format!(
            "unknown value `{variant}`{hint}; the values are: {}",
            known.join(", ")
        );
    }
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_owned();
    };
    let mut text = format!("wrong type of value: found {rest}");
    for (from, to) in [
        ("expected u16", "expected a whole number from 1 to 65535"),
        ("expected a sequence", "expected an array `[...]`"),
        ("expected a map", "expected a table"),
        ("expected a boolean", "expected `true` or `false`"),
        ("found sequence", "found an array"),
        ("found map", "found a table"),
    ] {
        text = text.replace(from, to);
    }
    if let Some(i) = text.find("expected struct ") {
        text.replace_range(i.., "expected a table");
    }
    text
}

/// The text of `text` between `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// The names serde lists in backticks (`a`, `b`).
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

impl NotifyConfig {
    /// Decodes `[controller.notifications]` (as JSON, after `${ENV}` and
    /// `X_file`). An error names the key it is at, e.g.
    /// `webhooks[0].timeout` for a bad duration or a wrong type, the
    /// unknown key itself (with the closest known one), or the table that
    /// misses a key.
    pub fn decode(value: &serde_json::Value) -> Result<NotifyConfig, ConfigProblem> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let mut path: Vec<KeySegment> = e
                .path()
                .iter()
                .filter_map(|seg| match seg {
                    serde_path_to_error::Segment::Map { key } => Some(KeySegment::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(KeySegment::Index(*index)),
                    _ => None,
                })
                .collect();
            let message = e.inner().to_string();
            let message = match between(&message, "unknown field `", "`") {
                Some(field) => {
                    let known = backticked(message.split_once("expected").map_or("", |(_, k)| k));
                    let hint = suggest::did_you_mean(field, known.iter().map(String::as_str))
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    if path.last() != Some(&KeySegment::Key(field.to_owned())) {
                        path.push(key(field));
                    }
                    format!(
                        "unknown key `{field}`{hint}; the keys here are: {}",
                        known.join(", ")
                    )
                }
                None => reword(&message),
            };
            ConfigProblem::new(path, message)
        })
    }

    /// Every problem of the configuration, each naming its key; empty when
    /// it can be used.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        for (i, name) in self.ignore_statuses.iter().enumerate() {
            if RunStatus::parse(name).is_none() {
                let names: Vec<&str> = ALL_STATUSES.iter().map(|s| s.as_str()).collect();
                let hint = suggest::did_you_mean(name, names.iter().copied())
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                problems.push(ConfigProblem::new(
                    vec![key("ignore_statuses"), KeySegment::Index(i)],
                    format!(
                        "unknown run status `{name}`{hint}; the statuses are: {}",
                        names.join(", ")
                    ),
                ));
            }
        }
        if let Some(smtp) = &self.smtp {
            validate_smtp(smtp, &mut problems);
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            validate_webhook(hook, i, &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Makes relative file paths (`smtp.ca_file`) relative to `base` (the
    /// configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(smtp) = &mut self.smtp
            && let Some(ca) = &mut smtp.ca_file
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
    }

    /// The statuses that are not notified (names that do not parse are
    /// skipped: [`NotifyConfig::validate`] reports them).
    pub fn ignored_statuses(&self) -> Vec<RunStatus> {
        self.ignore_statuses
            .iter()
            .filter_map(|s| RunStatus::parse(s))
            .collect()
    }
}

fn validate_smtp(smtp: &SmtpConfig, problems: &mut Vec<ConfigProblem>) {
    let at = |k: &str| vec![key("smtp"), key(k)];
    if smtp.host.trim().is_empty() || smtp.host.contains(char::is_whitespace) {
        problems.push(ConfigProblem::new(
            at("host"),
            format!(
                "`{}` is not a host name or address (write e.g. \"smtp.example.org\")",
                smtp.host
            ),
        ));
    }
    if smtp.port == Some(0) {
        problems.push(ConfigProblem::new(at("port"), "port 0 is not a port"));
    }
    if let Err(e) = smtp.from.parse::<lettre::message::Mailbox>() {
        problems.push(ConfigProblem::new(
            at("from"),
            format!(
                "`{}` is not an email address ({e}); write e.g. \"autosync@example.org\" or \"Autosync <autosync@example.org>\"",
                smtp.from
            ),
        ));
    }
    if smtp.to.is_empty() {
        problems.push(ConfigProblem::new(
            at("to"),
            "no recipient: give at least one address, e.g. to = [\"ops@example.org\"]",
        ));
    }
    for (i, to) in smtp.to.iter().enumerate() {
        if let Err(e) = to.parse::<lettre::message::Mailbox>() {
            problems.push(ConfigProblem::new(
                vec![key("smtp"), key("to"), KeySegment::Index(i)],
                format!("`{to}` is not an email address ({e})"),
            ));
        }
    }
    match (&smtp.username, &smtp.password) {
        (Some(_), None) => problems.push(ConfigProblem::new(
            at("password"),
            "`username` is set but no `password` (or `password_file`)",
        )),
        (None, Some(_)) => problems.push(ConfigProblem::new(
            at("username"),
            "`password` is set but no `username`",
        )),
        _ => {}
    }
    if let Some(ca) = &smtp.ca_file {
        if smtp.security == Security::None {
            problems.push(ConfigProblem::new(
                at("ca_file"),
                "is only used with security = \"starttls\" or \"tls\"",
            ));
        } else if let Err(e) = crate::send::load_ca(ca) {
            problems.push(ConfigProblem::new(at("ca_file"), e.to_string()));
        }
    }
    if smtp.timeout.0.is_zero() {
        problems.push(ConfigProblem::new(
            at("timeout"),
            "must be more than 0 (e.g. \"10s\")",
        ));
    }
}

fn validate_webhook(hook: &WebhookConfig, i: usize, problems: &mut Vec<ConfigProblem>) {
    let at = |k: &str| vec![key("webhooks"), KeySegment::Index(i), key(k)];
    let url = hook.url.expose();
    match url.parse::<ureq::http::Uri>() {
        Ok(uri) => {
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            // A port the authority names but that is no port (`:abc`,
            // `:99999`, `:-1`): every notice would fail to go out.
            let port_ok = uri.authority().is_none_or(|a| port_ok(a.as_str()));
            if !port_ok {
                problems.push(ConfigProblem::new(
                    at("url"),
                    format!(
                        "`{}` names a port that does not exist (1 to 65535)",
                        redact_url(url)
                    ),
                ));
            } else if !scheme_ok || uri.host().is_none_or(str::is_empty) {
                problems.push(ConfigProblem::new(
                    at("url"),
                    format!(
                        "`{}` is not an http:// or https:// URL with a host",
                        redact_url(url)
                    ),
                ));
            }
        }
        Err(e) => problems.push(ConfigProblem::new(
            at("url"),
            format!("not a valid URL ({e}); write e.g. \"https://hooks.example.org/autosync\""),
        )),
    }
    for (name, value) in &hook.headers {
        if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(ConfigProblem::new(
                vec![key("webhooks"), KeySegment::Index(i), key("headers")],
                format!("`{name}` is not a valid HTTP header name"),
            ));
        }
        if ureq::http::HeaderValue::from_str(value.expose()).is_err() {
            problems.push(ConfigProblem::new(
                vec![
                    key("webhooks"),
                    KeySegment::Index(i),
                    key("headers"),
                    key(name),
                ],
                "the value is not a valid HTTP header value (control characters or line breaks)",
            ));
        }
    }
    if hook.timeout.0.is_zero() {
        problems.push(ConfigProblem::new(
            at("timeout"),
            "must be more than 0 (e.g. \"10s\")",
        ));
    } else if hook.timeout.0 > MAX_WEBHOOK_TIMEOUT {
        problems.push(ConfigProblem::new(
            at("timeout"),
            format!(
                "`{}` is longer than the most a webhook may take, `{}` (a webhook that does not answer holds each of its notices that long; the default is \"10s\")",
                HumanDuration(hook.timeout.0),
                HumanDuration(MAX_WEBHOOK_TIMEOUT)
            ),
        ));
    }
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn a_port_should_be_one() {
        for ok in ["h", "h:443", "u:p@h:8080", "[::1]", "[::1]:80", "h:"] {
            assert!(super::port_ok(ok), "{ok}");
        }
        for bad in ["h:abc", "h:99999", "h:-1", "h:0", "[::1]:x"] {
            assert!(!super::port_ok(bad), "{bad}");
        }
    }
}
