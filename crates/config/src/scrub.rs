//! Secret values kept out of configuration errors. A value read from the
//! environment (`${NAME}`), or written for a key that names a secret
//! (`password`, `token`, an `Authorization` header...), may be quoted by a
//! parser's message (`invalid type: integer `123456789``, `invalid
//! duration `...``): every diagnostic of a file has those values replaced
//! by `(hidden)` before it is shown, logged, mailed or answered. A
//! connector's `url` names the server that messages name (`the schema of
//! the directory at ldap://...`): of a `${NAME}` written there only what
//! may hold a secret is hidden, its userinfo (`user:password@`) and query.

use crate::diagnostic::Diagnostic;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Shorter values are not hidden (they would hide ordinary words).
const SHORTEST: usize = 4;

/// Whether a key names a secret (`password_file` names the file that
/// holds one: a path, shown).
pub fn secret_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.ends_with("_file")
        && (autosync_model::secret::secret_name(&lower)
            || ["authorization", "api_key", "apikey"]
                .iter()
                .any(|s| lower.contains(s)))
}

/// The secret values of configuration `source`: the environment's values
/// of every `${NAME}` it names, and the values written for secret keys.
pub fn secrets_of(source: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut out = Vec::new();
    let (root, _) = DeTable::parse_recoverable(source);
    let urls = connector_urls(root.get_ref());
    let mut rest = source;
    while let Some(at) = rest.find("${") {
        let offset = source.len() - rest.len() + at;
        rest = &rest[at + 2..];
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        if let Some(v) = env(&rest[..end]) {
            if urls.iter().any(|u| u.contains(&offset)) {
                out.extend(url_secrets(&v));
            } else {
                out.push(v);
            }
        }
    }
    walk_table(root.get_ref(), source, &mut out);
    out.retain(|v| v.chars().count() >= SHORTEST);
    // Longer first: a secret that holds another is hidden whole.
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

/// Where the `url` of each MA's `connector` table is written.
fn connector_urls(root: &DeTable<'_>) -> Vec<std::ops::Range<usize>> {
    let Some(DeValue::Array(mas)) = root.get("ma").map(|v| v.get_ref()) else {
        return Vec::new();
    };
    mas.iter()
        .filter_map(|ma| match ma.get_ref() {
            DeValue::Table(t) => match t.get("connector").map(|c| c.get_ref()) {
                Some(DeValue::Table(c)) => c.get("url").map(|u| u.span()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// What may be secret in URL `v`: its userinfo and its query (the whole
/// of it when it is no URL, or when its userinfo is too short to be
/// hidden alone).
fn url_secrets(v: &str) -> Vec<String> {
    let Some((_, rest)) = v.split_once("://") else {
        return vec![v.to_owned()];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut out = Vec::new();
    if let Some(at) = rest[..end].rfind('@') {
        if rest[..at].chars().count() < SHORTEST {
            return vec![v.to_owned()];
        }
        out.push(rest[..at].to_owned());
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        if !query.is_empty() {
            out.push(query.to_owned());
        }
    }
    out
}

fn walk_table(table: &DeTable<'_>, source: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let key = key.get_ref();
        if key == "headers" {
            // A webhook's headers carry its credentials, whatever their
            // names (`X-Api-Key`).
            if let DeValue::Table(t) = value.get_ref() {
                for (_, v) in t {
                    walk_value(v, true, source, out);
                }
                continue;
            }
        }
        walk_value(value, secret_key(key), source, out);
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, secret: bool, source: &str, out: &mut Vec<String>) {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, source, out),
        DeValue::Array(items) => {
            for item in items {
                walk_value(item, secret, source, out);
            }
        }
        DeValue::String(s) if secret => out.push(s.to_string()),
        _ if secret => {
            if let Some(raw) = source.get(value.span()) {
                out.push(raw.trim().to_owned());
            }
        }
        _ => {}
    }
}

/// `diagnostics` with every one of `secrets` replaced by `(hidden)`.
pub fn scrub(diagnostics: &mut [Diagnostic], secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let hide = |text: &mut String| {
        for s in secrets {
            if text.contains(s.as_str()) {
                *text = text.replace(s.as_str(), "(hidden)");
            }
        }
    };
    for d in diagnostics {
        hide(&mut d.message);
        if let Some(h) = &mut d.help {
            hide(h);
        }
        if let Some(l) = &mut d.label {
            hide(l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_should_be_the_values_of_secret_keys_and_of_the_environment() {
        let source = r#"
[[ma]]
name = "ldap"
connector = { type = "ldap", password = 123456789, url = "${URL}" }
[controller.notifications]
webhook = { url = "https://x", headers = { Authorization = "Bearer abcdef", "X-Api-Key" = 12345678 }, timeout = "${T}" }
[other]
name = "plainvalue"
"#;
        let env = |n: &str| match n {
            "T" => Some("s3cr3tvalue".to_owned()),
            "URL" => Some("ldap://127.0.0.1".to_owned()),
            _ => None,
        };
        let secrets = secrets_of(source, &env);
        for s in ["123456789", "Bearer abcdef", "12345678", "s3cr3tvalue"] {
            assert!(secrets.contains(&s.to_owned()), "{s}: {secrets:?}");
        }
        assert!(!secrets.contains(&"plainvalue".to_owned()), "{secrets:?}");
        // A connector's URL names its server, which messages say.
        assert!(
            !secrets.iter().any(|s| s.contains("127.0.0.1")),
            "{secrets:?}"
        );
        let mut d = vec![
            Diagnostic::error("x", "invalid type: integer `123456789`, expected a string")
                .with_help("invalid duration `s3cr3tvalue`"),
        ];
        scrub(&mut d, &secrets);
        assert_eq!(
            d[0].message,
            "invalid type: integer `(hidden)`, expected a string"
        );
        assert_eq!(d[0].help.as_deref(), Some("invalid duration `(hidden)`"));
    }

    #[test]
    fn of_a_connector_url_only_its_userinfo_and_query_should_be_hidden() {
        let source = r#"
[[ma]]
name = "a"
connector = { type = "ldap", url = "${A}" }
[[ma]]
name = "b"
[ma.connector]
type = "ldap"
url = "${B}"
[[ma]]
name = "c"
connector = { type = "ldap", url = "${C}" }
[controller.notifications]
webhook = { url = "${HOOK}" }
"#;
        let env = |n: &str| {
            Some(
                match n {
                    "A" => "ldap://sync:pa55word@ldap.example.org:389/",
                    "B" => "ldaps://ldap.example.org?secret=xyz1",
                    "C" => "not-a-url-value",
                    "HOOK" => "https://hooks.example.org/services/T0/B0/tokentoken",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let mut secrets = secrets_of(source, &env);
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "https://hooks.example.org/services/T0/B0/tokentoken",
                "not-a-url-value",
                "secret=xyz1",
                "sync:pa55word",
            ]
        );
        let mut d = vec![Diagnostic::error(
            "x",
            "the schema of the directory at ldap://sync:pa55word@ldap.example.org:389/",
        )];
        scrub(&mut d, &secrets);
        assert_eq!(
            d[0].message,
            "the schema of the directory at ldap://(hidden)@ldap.example.org:389/"
        );
        assert_eq!(
            url_secrets("ldap://a:b@h"),
            ["ldap://a:b@h"],
            "too short alone"
        );
    }
}
