//! Substitutions made on the parsed document before it is read into the
//! definitions, keeping every span: `${NAME}` / `${NAME:-default}` in string
//! values (environment variables; `$${` is a literal `${`), and `X_file`
//! keys in secret-bearing tables (`connector`, `smtp`), replaced by `X` with
//! the file's contents. Secret values never appear in a message.

use crate::diagnostic::PathSegment;
use crate::document::Problem;
use std::borrow::Cow;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Tables in which `X_file = "path"` reads secret `X` from a file.
pub const SECRET_TABLES: &[&str] = &["connector", "smtp"];

/// Keys of those tables that end in `_file` but are settings of their own
/// (the path of a file the table uses), never a secret's file: `smtp`'s
/// `ca_file` is the CA certificate to trust, not the file of a secret `ca`.
pub const PATH_KEYS: &[&str] = &["ca_file"];

/// Where environment variables come from (the process, or a map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Applies `${ENV}` interpolation to every string value, then `*_file`
/// secrets; returns every problem found.
pub fn apply(root: &mut Spanned<DeTable<'_>>, env: EnvLookup<'_>, base_dir: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut path = Vec::new();
    walk_table(root.get_mut(), &mut path, env, base_dir, &mut problems);
    problems
}

fn walk_table(
    table: &mut DeTable<'_>,
    path: &mut Vec<PathSegment>,
    env: EnvLookup<'_>,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in table.iter_mut() {
        path.push(PathSegment::key(key.get_ref().as_ref()));
        walk_value(value, path, env, base_dir, problems);
        path.pop();
    }
    let is_secret_table = matches!(
        path.last(),
        Some(PathSegment::Key(k)) if SECRET_TABLES.contains(&k.as_str())
    );
    if is_secret_table {
        read_secret_files(table, path, base_dir, problems);
    }
}

fn walk_value(
    value: &mut Spanned<DeValue<'_>>,
    path: &mut Vec<PathSegment>,
    env: EnvLookup<'_>,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => match interpolate(s, env) {
            Ok(new) => *s = Cow::Owned(new),
            Err(e) => problems.push(Problem::error(path.clone(), span, e.message).help(e.help)),
        },
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(PathSegment::Index(i));
                walk_value(item, path, env, base_dir, problems);
                path.pop();
            }
        }
        DeValue::Table(t) => walk_table(t, path, env, base_dir, problems),
        _ => {}
    }
}

/// Why a string could not be interpolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterpolationError {
    pub message: String,
    pub help: String,
}

/// Replaces `${NAME}` and `${NAME:-default}` (default also when NAME is set
/// but empty, as in the shell); `$${` gives a literal `${`.
pub fn interpolate(text: &str, env: EnvLookup<'_>) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(close) = tail.find('}') else {
                return Err(InterpolationError {
                    message: "`${` without a closing `}`".into(),
                    help: "write `${NAME}`, or `$${` for a literal `${`".into(),
                });
            };
            let inner = &tail[..close];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !valid_name(name) {
                return Err(InterpolationError {
                    message: format!("`${{{inner}}}` does not name an environment variable"),
                    help: "names are letters, digits and `_`, not starting with a digit; write `$${` for a literal `${`".into(),
                });
            }
            match (
                env(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(InterpolationError {
                        message: format!("environment variable `{name}` is not set"),
                        help: format!("set `{name}`, or give a default: `${{{name}:-value}}`"),
                    });
                }
            }
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn read_secret_files(
    table: &mut DeTable<'_>,
    path: &[PathSegment],
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) {
    let file_keys: Vec<Spanned<Cow<'_, str>>> = table
        .iter()
        .map(|(k, _)| k)
        .filter(|k| {
            k.get_ref()
                .strip_suffix("_file")
                .is_some_and(|base| !base.is_empty())
                && !PATH_KEYS.contains(&k.get_ref().as_ref())
        })
        .cloned()
        .collect();
    for key in file_keys {
        let name = key.get_ref().to_string();
        let base = name.trim_end_matches("_file").to_owned();
        let mut key_path = path.to_vec();
        key_path.push(PathSegment::key(name.as_str()));
        let Some(value) = table.get(name.as_str()) else {
            continue;
        };
        let span = value.span();
        if table.contains_key(base.as_str()) {
            problems.push(
                Problem::error(
                    key_path,
                    key.span(),
                    format!("both `{base}` and `{name}` are set"),
                )
                .help(format!(
                    "keep one: `{base}` gives the value, `{name}` names a file holding it"
                )),
            );
            table.remove(name.as_str());
            continue;
        }
        let Some(file) = value.get_ref().as_str() else {
            problems.push(Problem::error(
                key_path,
                span,
                format!("`{name}` must be a string: the path of the file holding `{base}`"),
            ));
            continue;
        };
        let file_path = base_dir.join(file);
        match std::fs::read_to_string(&file_path) {
            Ok(contents) => {
                let secret = contents.trim_end_matches(['\n', '\r']).to_owned();
                table.remove(name.as_str());
                table.insert(
                    Spanned::new(key.span(), Cow::Owned(base)),
                    Spanned::new(span, DeValue::String(Cow::Owned(secret))),
                );
            }
            Err(e) => problems.push(
                Problem::error(
                    key_path,
                    span,
                    format!("cannot read secret file `{}`: {e}", file_path.display()),
                )
                .help(format!(
                    "the path is relative to the configuration file's folder ({})",
                    base_dir.display()
                )),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("ldap.example.org".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn a_path_key_ending_in_file_is_kept_and_a_secret_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let text =
            "[controller.notifications.smtp]\nca_file = \"ca.pem\"\npassword_file = \"pw\"\n";
        let mut root = DeTable::parse(text).unwrap();
        let problems = apply(&mut root, &env, dir.path());
        assert!(
            problems.is_empty(),
            "{:?}",
            problems.iter().map(|p| &p.message).collect::<Vec<_>>()
        );
        let smtp = root.get_ref()["controller"].get_ref().as_table().unwrap()["notifications"]
            .get_ref()
            .as_table()
            .unwrap()["smtp"]
            .get_ref()
            .as_table()
            .unwrap()
            .clone();
        assert_eq!(smtp["ca_file"].get_ref().as_str(), Some("ca.pem"));
        assert!(!smtp.contains_key("ca"));
        assert_eq!(smtp["password"].get_ref().as_str(), Some("s3cret"));
        assert!(!smtp.contains_key("password_file"));
    }

    #[test]
    fn interpolate_should_replace_variables_and_apply_defaults() {
        assert_eq!(
            interpolate("ldap://${HOST}:${PORT:-389}", &env).unwrap(),
            "ldap://ldap.example.org:389"
        );
        assert_eq!(interpolate("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
    }

    #[test]
    fn interpolate_should_keep_escaped_and_lone_dollars() {
        assert_eq!(
            interpolate("$${HOST} costs $5", &env).unwrap(),
            "${HOST} costs $5"
        );
    }

    #[test]
    fn interpolate_should_name_an_unset_variable() {
        let e = interpolate("${NOPE}", &env).unwrap_err();
        assert_eq!(e.message, "environment variable `NOPE` is not set");
    }

    #[test]
    fn interpolate_should_reject_an_unclosed_reference() {
        let e = interpolate("${HOST", &env).unwrap_err();
        assert!(e.message.contains("without a closing"));
    }
}
