//! `autosync history RUN_ID`: the run's per-object changes, one line per
//! attribute: a replaced value as `old -> new`, values of a multi-valued
//! attribute as `+added` and `-removed`.

use crate::page::{Page, thousands};
use autosync_model::{AttrChange, RunChange, RunRecord, Value};
use std::fmt::Write as _;

/// The changes of a page, after the run's counters: a header (saying how
/// many the steps made when the history could not keep them all), the
/// changes aligned in columns, and where the next page starts.
pub fn run_changes(run: &RunRecord, changes: &[RunChange], page: &Page) -> String {
    let made: u64 = run.steps.iter().map(|s| s.changed_objects()).sum();
    let recorded = page.total.unwrap_or(0);
    if made == 0 && recorded == 0 {
        return String::new();
    }
    let mut out = String::new();
    if recorded < made {
        let _ = writeln!(
            out,
            "  changes ({} recorded of {}: the history keeps the first {} of each step):",
            thousands(recorded),
            thousands(made),
            thousands(autosync_engine::MAX_RECORDED_CHANGES)
        );
    } else {
        let _ = writeln!(out, "  changes:");
    }
    let steps = run.steps.len() > 1;
    let mut rows: Vec<[String; 3]> = Vec::new();
    for c in changes {
        // A directory entry whose anchor is not its DN (its entryUUID) by
        // its DN too: which entry it is, at a glance.
        let name = match &c.dn {
            Some(dn) if dn != &c.object && autosync_model::dn::is_dn(dn) => {
                format!("{dn} ({})", c.object)
            }
            _ => c.object.clone(),
        };
        let object = if steps {
            format!("step {}: {name}", c.step_index + 1)
        } else {
            name
        };
        let mut lines = attribute_lines(c);
        if lines.is_empty() {
            lines.push(String::new());
        }
        for (i, line) in lines.into_iter().enumerate() {
            if i == 0 {
                rows.push([object.clone(), c.kind.to_string(), line]);
            } else {
                rows.push([String::new(), String::new(), line]);
            }
        }
    }
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    for [object, kind, line] in &rows {
        let text = format!("    {object:<w0$}  {kind:<w1$}  {line}");
        let _ = writeln!(out, "{}", text.trim_end());
    }
    let footer = page.footer("changes");
    if !footer.is_empty() {
        let _ = write!(out, "  {footer}");
    }
    out
}

/// One line per attribute (and one for a new DN). A rename read from a
/// source whose DN is a column named `dn` changes that column too: its
/// line would say the DN's again, so it is shown once.
fn attribute_lines(c: &RunChange) -> Vec<String> {
    let mut lines = Vec::new();
    let mut renamed = None;
    if let Some(new) = &c.new_dn {
        let old = c.dn.as_deref().unwrap_or(&c.object);
        lines.push(format!("dn: {old} -> {new}"));
        renamed = Some((old, new.as_str()));
    }
    for (name, change) in &c.attributes {
        if renamed.is_some_and(|(old, new)| is_dn_line(name, change, old, new)) {
            continue;
        }
        lines.push(format!("{name}: {}", attribute(change)));
    }
    lines
}

/// Whether attribute `name`'s `change` is a rename's `dn: old -> new`
/// line again: named `dn` (in any case), replaced by the new DN, from the
/// old one or from nothing known.
fn is_dn_line(name: &str, change: &AttrChange, old: &str, new: &str) -> bool {
    let AttrChange::Replace {
        new: Some(to),
        old: from,
        ..
    } = change
    else {
        return false;
    };
    name.eq_ignore_ascii_case("dn")
        && to.to_text() == new
        && from.as_ref().is_none_or(|f| f.to_text() == old)
}

/// `old -> new`, `new` (nothing before), `old -> (none)`, or `+a -b`.
fn attribute(change: &AttrChange) -> String {
    match change {
        AttrChange::Replace {
            new,
            old,
            new_total,
            old_total,
        } => {
            let new = match new {
                Some(v) => value(v, *new_total),
                None => "(none)".to_owned(),
            };
            match old {
                Some(o) => format!("{} -> {new}", value(o, *old_total)),
                None => new,
            }
        }
        AttrChange::Values {
            add,
            remove,
            add_total,
            remove_total,
            sent_whole,
        } => {
            let mut parts: Vec<String> = add.iter().map(|v| format!("+{}", v.to_text())).collect();
            if *add_total > 0 {
                parts.push(format!(
                    "(first {} of {} added)",
                    add.len(),
                    thousands(*add_total)
                ));
            }
            parts.extend(remove.iter().map(|v| format!("-{}", v.to_text())));
            if *remove_total > 0 {
                parts.push(format!(
                    "(first {} of {} removed)",
                    remove.len(),
                    thousands(*remove_total)
                ));
            }
            match sent_whole {
                Some(0) => parts.push("(sent as the whole value: none left)".to_owned()),
                Some(n) => parts.push(format!(
                    "(sent as the whole value, {} values)",
                    thousands(*n)
                )),
                None => {}
            }
            parts.join(" ")
        }
    }
}

/// A value as text; a multi-valued one as its values joined by `; `, with
/// how many it had when the history keeps only the first.
fn value(v: &Value, total: u64) -> String {
    let Value::Multi(vs) = v else {
        return v.to_text();
    };
    let text = vs.iter().map(Value::to_text).collect::<Vec<_>>().join("; ");
    if total > 0 {
        format!("{text} (first {} of {} values)", vs.len(), thousands(total))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_model::ChangeKind;

    #[test]
    fn a_manager_change_and_a_member_added_should_each_be_one_value() {
        let mut m = RunChange {
            run_id: 1,
            step_index: 0,
            ma: "hr".into(),
            object: "E10005".into(),
            dn: None,
            kind: ChangeKind::Update,
            new_dn: None,
            attributes: Default::default(),
        };
        m.attributes.insert(
            "manager".into(),
            AttrChange::replace(Some(&Value::from("E10001")), Some(&Value::from("E10004"))),
        );
        assert_eq!(attribute_lines(&m), ["manager: E10004 -> E10001"]);
        let many: Vec<Value> = (0..150).map(|i| Value::from(format!("E{i}"))).collect();
        let c = AttrChange::values(&many, &[Value::from("x")]);
        let text = attribute(&c);
        assert!(text.starts_with("+E0 +E1 "), "{text}");
        assert!(text.ends_with("(first 100 of 150 added) -x"), "{text}");
        let r = AttrChange::replace(Some(&Value::Multi(many)), None);
        assert!(attribute(&r).ends_with("(first 100 of 150 values)"));
        assert_eq!(
            attribute(&AttrChange::replace(None, Some(&Value::from("a")))),
            "a -> (none)"
        );
        let emptied = AttrChange::Values {
            add: vec![],
            remove: vec![Value::from("a"), Value::from("b")],
            add_total: 0,
            remove_total: 0,
            sent_whole: Some(0),
        };
        assert_eq!(
            attribute(&emptied),
            "-a -b (sent as the whole value: none left)"
        );
    }

    #[test]
    fn a_rename_should_show_its_dn_once_and_a_dn_attribute_that_says_otherwise() {
        let mut r = RunChange {
            run_id: 1,
            step_index: 0,
            ma: "hr".into(),
            object: "1".into(),
            dn: Some("cn=a".into()),
            kind: ChangeKind::Rename,
            new_dn: Some("cn=b".into()),
            attributes: Default::default(),
        };
        let dn = |old: &str, new: &str| {
            AttrChange::replace(Some(&Value::from(new)), Some(&Value::from(old)))
        };
        r.attributes.insert("DN".into(), dn("cn=a", "cn=b"));
        r.attributes.insert("mail".into(), dn("a@x", "b@x"));
        assert_eq!(
            attribute_lines(&r),
            ["dn: cn=a -> cn=b", "mail: a@x -> b@x"]
        );
        r.attributes.insert("DN".into(), dn("cn=a", "cn=c"));
        assert_eq!(
            attribute_lines(&r),
            ["dn: cn=a -> cn=b", "DN: cn=a -> cn=c", "mail: a@x -> b@x"]
        );
    }
}
