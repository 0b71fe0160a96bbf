//! One DN, one object: what the file connectors' exports (CSV, JSON Lines)
//! share to refuse a change that would give an object the DN (its type's
//! `dn` attribute) of another record, as a directory refuses a second
//! entry with a DN, so that references by DN never name two objects. DNs
//! compare as references by DN do, ignoring case
//! ([`autosync_model::dn::folded`]). The change fails with
//! `already-exists`, naming the object that has the DN, and nothing of it
//! is written; the other changes of the batch go on.
//!
//! Unlike a directory, a file is written at once: a change whose DN is
//! held by an object whose own change comes later in the batch waits for
//! the batch's end, and the waiting ones are applied together (two objects
//! that swap their DNs, a rename onto the DN of an object deleted later in
//! the same batch). A DN freed earlier in the batch is free at once.
//!
//! Each export keeps its records as it likes ([`Records`]); [`apply`]
//! applies a batch to them.

use crate::change::Failure;
use crate::file;
use autosync_connector::{ExportChange, ExportOutcome};
use autosync_model::ExportKind;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The DNs a file's records have (folded) -> the anchor of the record that
/// has it.
#[derive(Debug, Default)]
pub struct Dns(HashMap<String, Box<str>>);

impl Dns {
    /// Note the DN of a record read from the file. A file written before
    /// DNs were checked may hold one twice: the first record keeps it.
    pub fn load(&mut self, dn: &str, anchor: &str) {
        self.0
            .entry(autosync_model::dn::folded(dn))
            .or_insert_with(|| anchor.into());
    }

    /// Forget DN `folded` if `anchor` holds it.
    fn forget(&mut self, folded: &str, anchor: &str) {
        if self.0.get(folded).is_some_and(|a| &**a == anchor) {
            self.0.remove(folded);
        }
    }
}

/// A change's new record, worked out before it is written.
pub struct Prepared<R> {
    /// The DN it gives its object (folded, as written), when its type
    /// takes one from an attribute.
    dn: Option<(String, String)>,
    /// The DN (folded) the object had in the file.
    old_dn: Option<String>,
    record: R,
}

impl<R> Prepared<R> {
    /// `record`, giving its object `dn`; `old_dn`: the one it had in the
    /// file (each `None` when its type takes none from an attribute, or
    /// the attribute is empty).
    pub fn new(record: R, dn: Option<String>, old_dn: Option<&str>) -> Prepared<R> {
        Prepared {
            dn: dn.map(|d| (autosync_model::dn::folded(&d), d)),
            old_dn: old_dn.map(autosync_model::dn::folded),
            record,
        }
    }
}

/// A file's records, keyed by anchor, as an export holds them in memory.
pub trait Records {
    /// A record worked out by [`Records::prepare`], to [`Records::put`].
    type Record;

    fn dns(&self) -> &Dns;

    fn dns_mut(&mut self) -> &mut Dns;

    /// Whether a record has `anchor`.
    fn has(&self, anchor: &str) -> bool;

    /// The file, for messages.
    fn path(&self) -> &Path;

    /// Apply delete `c`: the DN (as written) of the record it removed, if
    /// it had one.
    fn delete(&mut self, c: &ExportChange) -> Result<Option<String>, Failure>;

    /// The record that `c` (not a delete) makes of its object's, not
    /// written yet; `None` when the file holds it as it is (a replayed add,
    /// a change to the values the record has).
    fn prepare(&mut self, c: &ExportChange) -> Result<Option<Prepared<Self::Record>>, Failure>;

    /// Write `record` as `anchor`'s (replacing the one it has, if any).
    fn put(&mut self, anchor: &str, record: Self::Record);
}

/// Apply `batch` to `r`: one outcome per change, in order.
pub fn apply<R: Records>(r: &mut R, batch: &[ExportChange]) -> Vec<ExportOutcome> {
    let outcome = |res: Result<(), Failure>| match res {
        Ok(()) => ExportOutcome::Applied { anchor: None },
        Err((error_type, detail)) => ExportOutcome::Failed {
            error_type: error_type.to_owned(),
            detail,
        },
    };
    // The anchors whose changes are still to come, and those waiting.
    let mut to_come: HashMap<&str, usize> = HashMap::new();
    for c in batch {
        *to_come.entry(c.anchor.as_str()).or_default() += 1;
    }
    let mut waiting: Vec<usize> = Vec::new();
    let mut waiting_anchors: HashSet<&str> = HashSet::new();
    let mut outcomes: Vec<Option<ExportOutcome>> = vec![None; batch.len()];
    for (i, c) in batch.iter().enumerate() {
        if let Some(n) = to_come.get_mut(c.anchor.as_str()) {
            *n = n.saturating_sub(1);
        }
        let in_play =
            |a: &str| to_come.get(a).is_some_and(|n| *n > 0) || waiting_anchors.contains(a);
        let done = match apply_one(r, c, &in_play) {
            Ok(Step::Done) => Ok(()),
            Ok(Step::Later) => {
                waiting.push(i);
                waiting_anchors.insert(c.anchor.as_str());
                continue;
            }
            Err(e) => Err(e),
        };
        if let Some(slot) = outcomes.get_mut(i) {
            *slot = Some(outcome(done));
        }
    }
    let later: Vec<&ExportChange> = waiting.iter().filter_map(|&j| batch.get(j)).collect();
    for (j, res) in waiting.iter().zip(apply_together(r, &later)) {
        if let Some(slot) = outcomes.get_mut(*j) {
            *slot = Some(outcome(res));
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(ExportOutcome::Applied { anchor: None }))
        .collect()
}

/// What became of a change in its batch.
enum Step {
    Done,
    /// Its DN is held by an object whose own change is still to come.
    Later,
}

/// Apply `c`; `in_play` says whether an object's own change is still to
/// come in this batch: a DN it holds may be freed by it (a swap of two
/// DNs, a rename onto the DN of an object deleted later in the batch), so
/// the change waits for the end of the batch.
fn apply_one<R: Records>(
    r: &mut R,
    c: &ExportChange,
    in_play: &dyn Fn(&str) -> bool,
) -> Result<Step, Failure> {
    if matches!(c.kind, ExportKind::Delete) {
        if let Some(old) = r.delete(c)? {
            r.dns_mut()
                .forget(&autosync_model::dn::folded(&old), &c.anchor);
        }
        return Ok(Step::Done);
    }
    let Some(p) = r.prepare(c)? else {
        return Ok(Step::Done);
    };
    if let Some((folded, dn)) = &p.dn
        && let Some(other) = holder(r, folded, &c.anchor)
    {
        if in_play(&other) {
            return Ok(Step::Later);
        }
        return Err(taken(r, dn, &other));
    }
    write(r, &c.anchor, p);
    Ok(Step::Done)
}

/// The changes that waited for the end of the batch, applied together:
/// the DNs they held are free for one another (two objects that swap
/// their DNs); one whose new DN another object still has fails.
fn apply_together<R: Records>(r: &mut R, changes: &[&ExportChange]) -> Vec<Result<(), Failure>> {
    let prepared: Vec<Result<Option<Prepared<R::Record>>, Failure>> =
        changes.iter().map(|c| r.prepare(c)).collect();
    for (c, p) in changes.iter().zip(&prepared) {
        if let Ok(Some(Prepared {
            old_dn: Some(old), ..
        })) = p
        {
            r.dns_mut().forget(old, &c.anchor);
        }
    }
    let mut out = Vec::with_capacity(changes.len());
    for (c, p) in changes.iter().zip(prepared) {
        let p = match p {
            Ok(Some(p)) => p,
            Ok(None) => {
                out.push(Ok(()));
                continue;
            }
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        if let Some((folded, dn)) = &p.dn
            && let Some(other) = holder(r, folded, &c.anchor)
        {
            // Still taken: the object keeps the DN it had, if free.
            if let Some(old) = p.old_dn {
                r.dns_mut()
                    .0
                    .entry(old)
                    .or_insert_with(|| c.anchor.as_str().into());
            }
            out.push(Err(taken(r, dn, &other)));
            continue;
        }
        write(r, &c.anchor, p);
        out.push(Ok(()));
    }
    out
}

/// The object other than `anchor` that has DN `folded` in the file.
fn holder<R: Records>(r: &R, folded: &str, anchor: &str) -> Option<Box<str>> {
    r.dns()
        .0
        .get(folded)
        .filter(|other| ***other != *anchor && r.has(other))
        .cloned()
}

fn taken<R: Records>(r: &R, dn: &str, other: &str) -> Failure {
    (
        "already-exists",
        format!(
            "the DN `{dn}` is taken: object `{other}` of {} has it; nothing of this change was written",
            file::label(r.path())
        ),
    )
}

/// Write `p` as `anchor`'s record, moving its DN.
fn write<R: Records>(r: &mut R, anchor: &str, p: Prepared<R::Record>) {
    let dns = r.dns_mut();
    if let Some(old) = &p.old_dn {
        dns.forget(old, anchor);
    }
    if let Some((folded, _)) = p.dn {
        dns.0.insert(folded, anchor.into());
    }
    r.put(anchor, p.record);
}
