//! The forms a secret takes wherever the store keeps values: a write-only
//! attribute (a password) is never kept in clear text. Three forms, each a
//! string value with a prefix no connected system's data starts with:
//!
//! * sealed: `$autosync$sealed$v1$<tag>$<ciphertext>`, the value encrypted
//!   with the store's key (the engine's `secrets` module does the
//!   cryptography; this module only tells the forms apart). The same
//!   value sealed twice gives the same text (a synthetic nonce, `tag`), so
//!   an import of an unchanged source stages nothing.
//! * to be generated: `$autosync$generate$`, a provisioned object's
//!   password that the export generates by its policy as it sends it.
//! * set: `$autosync$set$<time>$<tag>`, what the connector space keeps once
//!   the value was sent: when, and the sealed value's tag (a keyed MAC,
//!   `generated` for a generated one) to notice a changed flowed value.
//!
//! Whatever shows values to people shows [`shown`] instead of these.

use crate::value::Value;

pub const SEALED: &str = "$autosync$sealed$v1$";
pub const GENERATE: &str = "$autosync$generate$";
pub const SET: &str = "$autosync$set$";
/// The tag of a set marker for a generated value.
pub const GENERATED_TAG: &str = "generated";

/// One of the three forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret<'a> {
    /// The tag and the ciphertext (base64).
    Sealed {
        tag: &'a str,
        data: &'a str,
    },
    Generate,
    /// When it was set and the tag of what was set.
    Set {
        at: &'a str,
        tag: &'a str,
    },
}

/// The form `v` is in, if it is a secret's.
pub fn classify(v: &Value) -> Option<Secret<'_>> {
    let Value::String(s) = v else { return None };
    if let Some(rest) = s.strip_prefix(SEALED) {
        let (tag, data) = rest.split_once('$')?;
        return Some(Secret::Sealed { tag, data });
    }
    if s == GENERATE {
        return Some(Secret::Generate);
    }
    let rest = s.strip_prefix(SET)?;
    let (at, tag) = rest.rsplit_once('$')?;
    Some(Secret::Set { at, tag })
}

/// The tag of a sealed value or a set marker: equal tags, equal values.
pub fn tag(v: &Value) -> Option<&str> {
    match classify(v)? {
        Secret::Sealed { tag, .. } | Secret::Set { tag, .. } => Some(tag),
        Secret::Generate => None,
    }
}

/// The marker of a value set at `at` (RFC 3339) whose tag was `tag`.
pub fn set_marker(at: &str, tag: &str) -> Value {
    Value::String(format!("{SET}{at}${tag}"))
}

/// The placeholder of a value to be generated.
pub fn generate() -> Value {
    Value::String(GENERATE.to_owned())
}

/// What to show people instead of `v`, when it is a secret's form.
pub fn shown(v: &Value) -> Option<&'static str> {
    Some(match classify(v)? {
        Secret::Sealed { .. } => "(write-only, sealed)",
        Secret::Generate => "(write-only, to be generated)",
        Secret::Set { .. } => "(write-only, set)",
    })
}

/// `v` with every secret's form (also within a list) replaced by what
/// [`shown`] says: for listings that print whole values.
pub fn hide(v: &mut Value) {
    match v {
        Value::Multi(vs) => vs.iter_mut().for_each(hide),
        other => {
            if let Some(s) = shown(other) {
                *other = Value::String(s.to_owned());
            }
        }
    }
}

/// Every value of `o` hidden as [`hide`] does: the hologram, the pending
/// import, the pending and unconfirmed exports.
pub fn hide_in(o: &mut crate::object::CsObject) {
    o.hologram.values_mut().for_each(hide);
    if let Some(p) = &mut o.pending_import {
        p.attributes.values_mut().for_each(hide);
    }
    for p in [&mut o.pending_export, &mut o.unconfirmed_export]
        .into_iter()
        .flatten()
    {
        p.changes.values_mut().flatten().for_each(hide);
    }
}

/// Whether an attribute's or a setting's name says it holds a secret (a
/// password, a token): its values are never shown in a message. The one
/// list of such words (connectors' export errors, the engine's
/// exported-change-not-reimported warning, configuration errors).
pub fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "pwd", "secret", "token", "credential"]
        .iter()
        .any(|w| name.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_should_be_told_apart_and_shown_without_its_value() {
        let sealed = Value::String(format!("{SEALED}abc$Zm9v"));
        assert_eq!(
            classify(&sealed),
            Some(Secret::Sealed {
                tag: "abc",
                data: "Zm9v"
            })
        );
        assert_eq!(tag(&sealed), Some("abc"));
        let set = set_marker("2024-05-01T10:00:00Z", "abc");
        assert_eq!(tag(&set), Some("abc"));
        assert_eq!(shown(&set), Some("(write-only, set)"));
        assert_eq!(shown(&generate()), Some("(write-only, to be generated)"));
        assert_eq!(shown(&sealed), Some("(write-only, sealed)"));
        assert_eq!(classify(&Value::String("secret".into())), None);
        assert_eq!(classify(&Value::String(format!("{SEALED}no-tag"))), None);
        assert_eq!(shown(&Value::Integer(1)), None);
    }
}
