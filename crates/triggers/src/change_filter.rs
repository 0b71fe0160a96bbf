//! Attribute filter for change-notification triggers of connectors that know
//! which attributes changed (directories): a change that touches **only**
//! ignored attributes (e.g. `lastLogonTimestamp`, which Active Directory
//! updates at every logon) does not ask for an import. The original fired
//! non-stop on such changes and could not filter them.
//!
//! Attribute names compare case-insensitively, as LDAP's do. A change whose
//! attributes are unknown (an add, a delete, a rename, or a notification that
//! does not list attributes) is always relevant: a change is never dropped on
//! a guess.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// `ignore_attributes = ["lastLogonTimestamp", "logonCount"]`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeFilter {
    #[serde(default)]
    pub ignore_attributes: BTreeSet<String>,
}

impl ChangeFilter {
    pub fn new<I, S>(ignore: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ChangeFilter {
            ignore_attributes: ignore.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `attribute` is ignored (names compare case-insensitively).
    pub fn ignores(&self, attribute: &str) -> bool {
        self.ignore_attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }

    /// Whether a change to `changed` attributes should ask for an import:
    /// `None` (attributes unknown) and an empty list are relevant; otherwise
    /// relevant when at least one changed attribute is not ignored.
    pub fn is_relevant<'a, I>(&self, changed: Option<I>) -> bool
    where
        I: IntoIterator<Item = &'a str>,
    {
        let Some(changed) = changed else {
            return true;
        };
        let mut any = false;
        for attribute in changed {
            any = true;
            if !self.ignores(attribute) {
                return true;
            }
        }
        !any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> ChangeFilter {
        ChangeFilter::new(["lastLogonTimestamp", "logonCount"])
    }

    #[test]
    fn a_change_touching_only_ignored_attributes_should_not_be_relevant() {
        assert!(!filter().is_relevant(Some(["lastLogonTimestamp"])));
        assert!(
            !filter().is_relevant(Some(["lastlogontimestamp", "LOGONCOUNT"])),
            "names compare case-insensitively"
        );
    }

    #[test]
    fn a_change_touching_any_other_attribute_should_be_relevant() {
        assert!(filter().is_relevant(Some(["lastLogonTimestamp", "title"])));
        assert!(filter().is_relevant(Some(["mail"])));
    }

    #[test]
    fn a_change_with_unknown_or_no_attributes_should_be_relevant() {
        assert!(filter().is_relevant(None::<Vec<&str>>));
        assert!(filter().is_relevant(Some(Vec::<&str>::new())));
    }

    #[test]
    fn an_empty_filter_should_let_every_change_through() {
        assert!(ChangeFilter::default().is_relevant(Some(["lastLogonTimestamp"])));
    }

    #[test]
    fn the_filter_should_read_from_its_toml_form_and_reject_unknown_keys() {
        let f: ChangeFilter =
            toml::from_str(r#"ignore_attributes = ["lastLogonTimestamp"]"#).unwrap();
        assert!(!f.is_relevant(Some(["lastLogonTimestamp"])));
        assert!(toml::from_str::<ChangeFilter>(r#"ignore = ["x"]"#).is_err());
    }
}
