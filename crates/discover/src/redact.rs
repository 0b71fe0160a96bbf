//! What may be a secret, hidden from the settings discovery shows as the
//! file writes them. `${ENV}` references and `X_file` keys are shown as
//! written (they name where a secret is, not the secret); a secret
//! written in the file itself is not:
//!
//! - the value of a key that names a secret (`password`, `token`, an
//!   `Authorization`...: [`autosync_config::scrub::secret_key`], the rule
//!   that keeps them out of configuration errors) and of every `headers`
//!   entry (a webhook's headers carry its credentials, whatever their
//!   names) is shown only as its `${NAME}` references, with at most an
//!   authorization scheme before them (`Bearer ${HOOK_TOKEN}`); written
//!   otherwise it is [`HIDDEN`];
//! - a `url` is shown as the notifications' log shows it
//!   ([`autosync_notify::config::redact_url`]: `https://hooks.example.org/…`,
//!   no userinfo, path or query) unless what follows its host is taken
//!   from the environment (`https://hooks.example.org/services/${HOOK_PATH}`)
//!   with no userinfo or query written in the file;
//! - the default of a reference in those places (`${SMTP_PASSWORD:-...}`)
//!   is the file's own text: hidden the same way.

use autosync_config::scrub::secret_key;
use autosync_notify::config::redact_url;
use serde_json::Value;

/// What is shown in place of a secret written in the file.
pub const HIDDEN: &str = "(hidden)";

/// Where a value sits, and so what of it may be a secret.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Plain,
    Secret,
    Url,
}

/// `value` (a table as the file writes it) with every secret it writes
/// hidden.
pub(crate) fn hide_secrets(value: &Value) -> Value {
    walk(value, Place::Plain)
}

fn walk(value: &Value, place: Place) -> Value {
    match value {
        Value::Object(table) => Value::Object(
            table
                .iter()
                .map(|(key, v)| {
                    let shown = match (place, key.as_str(), v) {
                        (Place::Secret, _, _) => walk(v, Place::Secret),
                        (_, "headers", Value::Object(headers)) => Value::Object(
                            headers
                                .iter()
                                .map(|(name, h)| (name.clone(), walk(h, Place::Secret)))
                                .collect(),
                        ),
                        _ if secret_key(key) => walk(v, Place::Secret),
                        (_, "url", _) => walk(v, Place::Url),
                        _ => walk(v, place),
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, place)).collect()),
        Value::String(text) => Value::String(match place {
            Place::Plain => text.clone(),
            Place::Secret => shown_secret(text),
            Place::Url => shown_url(text),
        }),
        Value::Null | Value::Bool(_) => value.clone(),
        Value::Number(_) if place == Place::Plain => value.clone(),
        Value::Number(_) => Value::String(HIDDEN.to_owned()),
    }
}

/// A piece of a string as `${ENV}` interpolation reads it.
enum Part<'a> {
    /// Text of the file (`$${` is a literal `${`).
    Text(&'a str),
    /// `${NAME}` or `${NAME:-default}`.
    Reference {
        name: &'a str,
        default: Option<&'a str>,
    },
}

/// `text` in pieces, as the configuration's interpolation reads it (an
/// unclosed `${` is text: such a file does not load anyway).
fn parts(text: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push(Part::Text(&rest[..dollar + 3]));
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${")
            && let Some(close) = tail.find('}')
        {
            out.push(Part::Text(&rest[..dollar]));
            let inner = &tail[..close];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            out.push(Part::Reference { name, default });
            rest = &tail[close + 1..];
        } else {
            out.push(Part::Text(&rest[..dollar + 1]));
            rest = &after[1..];
        }
    }
    out.push(Part::Text(rest));
    out.retain(|p| !matches!(p, Part::Text("")));
    out
}

/// Whether `parts` holds a reference.
fn has_reference(parts: &[Part<'_>]) -> bool {
    parts.iter().any(|p| matches!(p, Part::Reference { .. }))
}

/// `parts` written back, each reference's default replaced by what
/// `default` makes of it.
fn written_back(parts: &[Part<'_>], default: impl Fn(&str) -> String) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => (*t).to_owned(),
            Part::Reference {
                name,
                default: None,
            } => format!("${{{name}}}"),
            Part::Reference {
                name,
                default: Some(d),
            } => format!("${{{name}:-{}}}", default(d)),
        })
        .collect()
}

/// A secret's value as shown: its references (with an authorization
/// scheme before them, `Bearer ${TOKEN}`), else [`HIDDEN`].
fn shown_secret(text: &str) -> String {
    let parts = parts(text);
    let text_only_scheme = match parts.as_slice() {
        [Part::Text(scheme), rest @ ..] => {
            scheme
                .strip_suffix(' ')
                .is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()))
                && rest.iter().all(|p| matches!(p, Part::Reference { .. }))
        }
        all => all.iter().all(|p| matches!(p, Part::Reference { .. })),
    };
    if has_reference(&parts) && text_only_scheme {
        written_back(&parts, |_| HIDDEN.to_owned())
    } else {
        HIDDEN.to_owned()
    }
}

/// A URL as shown: as written when what may be secret in it (userinfo,
/// path, query) comes from the environment, else as the notifications'
/// log shows it (`scheme://host/…`).
fn shown_url(text: &str) -> String {
    let parts = parts(text);
    if !has_reference(&parts) {
        return redact_url(text);
    }
    let shown = written_back(&parts, |d| {
        if d.contains("://") {
            redact_url(d)
        } else {
            HIDDEN.to_owned()
        }
    });
    // The file's own text, each reference a NUL: what the file writes
    // and what the environment gives.
    let skeleton: String = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => *t,
            Part::Reference { .. } => "\0",
        })
        .collect();
    let written_secret = match skeleton.split_once("://") {
        Some((_, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            // A userinfo or a query written in the file, or a path
            // with nothing from the environment.
            rest[..end].contains('@')
                || rest.contains('?')
                || (end < rest.len() && !rest[end..].contains('\0'))
        }
        // Scheme and host from the environment: only a query can be the
        // file's.
        None => skeleton.contains('?'),
    };
    match (written_secret, skeleton.contains("://")) {
        (false, _) => shown,
        (true, true) => redact_url(&shown),
        (true, false) => HIDDEN.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_written_in_the_file_should_be_hidden_and_references_kept() {
        let table = json!({
            "notifications": {
                "smtp": {
                    "host": "smtp.example.org",
                    "username": "autosync",
                    "password": "LiteralSmtpPw123",
                    "from": "Autosync <autosync@example.org>",
                    "to": ["ops@example.org"],
                },
                "webhooks": [
                    {
                        "url": "https://hooks.example.org/services/T000/B000/XXXXSECRETXXXX",
                        "headers": { "Authorization": "Bearer LiteralHeaderTok", "X-Key": 12345678 },
                    },
                    {
                        "url": "https://hooks.example.org/services/${HOOK_PATH}",
                        "headers": { "Authorization": "Bearer ${HOOK_TOKEN}" },
                    },
                    {
                        "url": "${HOOK_URL:-https://u:p@hooks.example.org/services/T/B/DEFAULTSECRET}",
                        "headers": { "X-Token": "pre${TOKEN}", "Y": "${Y:-DefaultHeaderSecret}" },
                    },
                    { "url": "https://sync:UserInfoPw@hooks.example.org/${P}" },
                    { "url": "https://hooks.example.org/${P}?token=QueryTok" },
                    { "url": "https://hooks.example.org" },
                ],
            },
            "token": { "inner": "NestedSecret" },
            "password_file": "smtp.secret",
            "start_stagger": "0s",
        });
        let shown = hide_secrets(&table);
        let text = shown.to_string();
        for secret in [
            "LiteralSmtpPw123",
            "XXXXSECRETXXXX",
            "LiteralHeaderTok",
            "12345678",
            "DEFAULTSECRET",
            "u:p@",
            "pre",
            "DefaultHeaderSecret",
            "UserInfoPw",
            "QueryTok",
            "NestedSecret",
        ] {
            assert!(!text.contains(secret), "{secret}: {text}");
        }
        let n = &shown["notifications"];
        assert_eq!(n["smtp"]["password"], HIDDEN);
        assert_eq!(n["smtp"]["username"], "autosync");
        assert_eq!(n["webhooks"][0]["url"], "https://hooks.example.org/…");
        assert_eq!(n["webhooks"][0]["headers"]["Authorization"], HIDDEN);
        assert_eq!(
            n["webhooks"][1]["url"],
            "https://hooks.example.org/services/${HOOK_PATH}"
        );
        assert_eq!(
            n["webhooks"][1]["headers"]["Authorization"],
            "Bearer ${HOOK_TOKEN}"
        );
        assert_eq!(
            n["webhooks"][2]["url"],
            "${HOOK_URL:-https://hooks.example.org/…}"
        );
        assert_eq!(n["webhooks"][2]["headers"]["X-Token"], HIDDEN);
        assert_eq!(n["webhooks"][2]["headers"]["Y"], "${Y:-(hidden)}");
        assert_eq!(n["webhooks"][3]["url"], "https://hooks.example.org/…");
        assert_eq!(n["webhooks"][4]["url"], "https://hooks.example.org/…");
        assert_eq!(n["webhooks"][5]["url"], "https://hooks.example.org");
        assert_eq!(shown["password_file"], "smtp.secret");
        assert_eq!(shown["start_stagger"], "0s");
    }
}
