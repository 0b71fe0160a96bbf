//! `autosync cs MA --unresolved`: the table of what each listed object's
//! references wait for.

use super::table;
use autosync_model::CsObject;

/// `autosync cs --unresolved`: what each object's references wait for.
pub fn unresolved(objects: &[CsObject], waits: &[crate::waits::UnresolvedOf]) -> String {
    let mut rows = vec![vec![
        "ANCHOR".to_owned(),
        "ATTRIBUTE".into(),
        "WAITS FOR".into(),
    ]];
    for (o, w) in objects.iter().zip(waits) {
        for w in &w.listed {
            rows.push(vec![
                o.anchor.clone(),
                w.attribute().to_owned(),
                waits_for(w),
            ]);
        }
        if w.more > 0 {
            rows.push(vec![
                o.anchor.clone(),
                String::new(),
                format!("... and {} more", crate::page::thousands(w.more as u64)),
            ]);
        }
    }
    if rows.len() == 1 {
        return String::new();
    }
    format!("\n{}", table(&rows))
}

/// The `WAITS FOR` column of `cs --unresolved`: what the wait says, with
/// what the listing found of the object it names.
fn waits_for(u: &crate::waits::Unresolved) -> String {
    use crate::waits::{Found, Joined, Unresolved, Wait};
    match u {
        Unresolved::Wait {
            wait: Wait::In { ma, anchor, .. },
            found:
                Found {
                    joined:
                        Some(Joined {
                            reason,
                            mv_id,
                            object_type,
                            expected_type,
                        }),
                    ..
                },
        } => match (*reason, expected_type) {
            ("type-mismatch", Some(expected)) => format!(
                "{ma}/{anchor} is there, joined to {object_type} #{mv_id}: not a {expected} (reference-type-mismatch)"
            ),
            _ => format!(
                "{ma}/{anchor} is there, joined to {object_type} #{mv_id}: the next sync resolves it"
            ),
        },
        Unresolved::Wait {
            wait,
            found: Found {
                known_as: Some(c), ..
            },
        } => format!("{} (its connector in {}: {})", wait.waits_for(), c.ma, c.dn),
        Unresolved::Wait {
            wait: Wait::In { ma, anchor, .. },
            found:
                Found {
                    differs_in_case: Some(other),
                    ..
                },
        } => format!(
            "{ma}/{anchor} (not there, or not joined; `{other}` differs only in case: anchor references are exact)"
        ),
        Unresolved::Wait { wait, .. } => wait.waits_for(),
        Unresolved::Held(h) => {
            let named = if h.value == h.anchor {
                format!("{}/{}", h.ma, h.value)
            } else {
                format!("{}/{} (anchor {})", h.ma, h.value, h.anchor)
            };
            format!(
                "{named}: its add failed ({}); the value is held from export until the add goes",
                h.error_type
            )
        }
    }
}
