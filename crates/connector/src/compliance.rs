//! The compliance suite: checks every connector must pass against its real
//! system (a real file, a real database), so that the engine can rely on the
//! [`Connector`] contract whatever the connector.
//!
//! A connector's tests describe their system with a [`ComplianceTarget`]
//! (how to empty it, how to build a connector on it, how to read it back
//! without the connector) and call the checks, each a plain function that
//! panics with a message naming the connector and what went wrong:
//!
//! ```ignore
//! #[test]
//! fn csv_connector_should_round_trip_exported_adds() {
//!     compliance::export_adds_then_full_import_returns_exactly_them(&csv_target());
//! }
//! ```
//!
//! Test objects carry only string attributes (every system stores those the
//! same way), one of them with commas, quotes, a newline and non-ASCII text;
//! but one check ([`every_value_type_reads_back_equal`]) exports every value
//! type to a system set up for them (`make_typed`) and asserts each reads
//! back equal under the engine's comparison, and another
//! ([`value_changes_read_back_as_the_whole_value`]) sends value-level
//! changes of its multi-valued attributes to a connector whose
//! capabilities say `value_changes`.
//!
//! Enabled by the `compliance` cargo feature (test support code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{ExportChange, ExportOutcome, ImportChange};
use autosync_model::Value;
use std::collections::BTreeMap;

mod target;
mod value_changes;
mod value_types;
pub use target::ComplianceTarget;
use target::{Expected, drain};
pub use value_changes::value_changes_read_back_as_the_whole_value;
pub use value_types::{VALUE_TYPES, every_value_type_reads_back_equal};

/// Exported adds are what a full import returns: anchors, DNs, attributes;
/// a session that is not durable per batch shows nothing before `commit`.
pub fn export_adds_then_full_import_returns_exactly_them(t: &ComplianceTarget) {
    (t.reset)();
    let expected: BTreeMap<String, Expected> = (0..10)
        .map(|i| (ComplianceTarget::anchor(i), t.expected(t.attrs(i))))
        .collect();
    let mut conn = (t.make)();
    let mut session = conn
        .begin_export()
        .unwrap_or_else(|e| panic!("[{}] begin_export: {e}", t.name));
    for range in [0..4, 4..10] {
        let batch: Vec<ExportChange> = range.map(|i| t.add(i)).collect();
        let outcomes = session
            .apply(&batch)
            .unwrap_or_else(|e| panic!("[{}] apply: {e}", t.name));
        t.assert_all_applied(&outcomes, "adds");
    }
    let before_commit = (t.read_back)();
    if session.durable_per_batch() {
        assert_eq!(
            before_commit.len(),
            10,
            "[{}] a durable-per-batch session must show applied batches",
            t.name
        );
    } else {
        assert!(
            before_commit.is_empty(),
            "[{}] a session that is not durable per batch must show nothing before commit, found {} objects",
            t.name,
            before_commit.len()
        );
    }
    session
        .commit()
        .unwrap_or_else(|e| panic!("[{}] commit: {e}", t.name));
    drop(conn);
    t.assert_read_back(&expected, "after exporting adds");
    t.assert_full_state(&t.full_import(None), &expected, "full import after adds");
}

/// Updates (set, remove an attribute) and deletes reach the system.
pub fn export_update_remove_attribute_and_delete_round_trip(t: &ComplianceTarget) {
    let mut expected = t.seed(5);
    let (a0, a1) = (t.attr(0), t.attr(1));
    let changes = vec![
        t.update(
            &ComplianceTarget::anchor(0),
            [(a0.clone(), Some(Value::from("changed 0")))].into(),
        ),
        t.update(&ComplianceTarget::anchor(1), [(a1.clone(), None)].into()),
        t.delete(&ComplianceTarget::anchor(2)),
        t.update(
            &ComplianceTarget::anchor(3),
            [
                (a0.clone(), Some(Value::from("changed 3"))),
                (a1.clone(), None),
            ]
            .into(),
        ),
    ];
    let outcomes = t.export(&[changes]);
    t.assert_all_applied(&outcomes, "updates and deletes");
    let e0 = expected.get_mut(&ComplianceTarget::anchor(0)).unwrap();
    e0.attributes.insert(a0.clone(), Value::from("changed 0"));
    expected
        .get_mut(&ComplianceTarget::anchor(1))
        .unwrap()
        .attributes
        .remove(&a1);
    expected.remove(&ComplianceTarget::anchor(2));
    let e3 = expected.get_mut(&ComplianceTarget::anchor(3)).unwrap();
    e3.attributes.insert(a0, Value::from("changed 3"));
    e3.attributes.remove(&a1);
    t.assert_read_back(&expected, "after updates and deletes");
    t.assert_full_state(
        &t.full_import(None),
        &expected,
        "full import after updates and deletes",
    );
}

/// Re-sending an add that was applied updates its object in place: an
/// export replayed after a crash never creates an object twice. (An add
/// over an object it did not write, holding other values, may fail with
/// `already-exists` instead: the file and SQLite connectors never
/// overwrite an object made outside autosync.)
pub fn re_sending_an_add_updates_in_place(t: &ComplianceTarget) {
    let mut expected = t.seed(1);
    let a0 = t.attr(0);
    let mut attrs = t.attrs(1);
    attrs.insert(a0, Value::from("replayed"));
    let replay = vec![t.add_with(1, attrs.clone()), t.add(2)];
    // The same batch twice, in two sessions: what a crash-and-retry does.
    for _ in 0..2 {
        let outcomes = t.export(std::slice::from_ref(&replay));
        t.assert_all_applied(&outcomes, "re-sent adds");
    }
    expected.insert(ComplianceTarget::anchor(1), t.expected(attrs));
    expected.insert(ComplianceTarget::anchor(2), t.expected(t.attrs(2)));
    t.assert_read_back(&expected, "after re-sending adds");
    t.assert_full_state(
        &t.full_import(None),
        &expected,
        "full import after re-sent adds",
    );
}

/// A change the system rejects fails alone; the rest of the batch is applied.
pub fn failed_changes_do_not_stop_the_batch(t: &ComplianceTarget) {
    (t.reset)();
    let a0 = t.attr(0);
    let batch = vec![
        t.add(0),
        t.update("no-such-object", [(a0, Some(Value::from("x")))].into()),
        t.add(1),
        t.delete("no-such-object-either"),
    ];
    let outcomes = t.export(&[batch]);
    assert!(
        matches!(&outcomes[1], ExportOutcome::Failed { error_type, detail } if !error_type.is_empty() && !detail.is_empty()),
        "[{}] an update of a missing object must fail with an error type and detail, got {:?}",
        t.name,
        outcomes[1]
    );
    for i in [0, 2, 3] {
        assert!(
            matches!(outcomes[i], ExportOutcome::Applied { .. }),
            "[{}] change #{i} must be applied despite the failed one (deleting a missing object is a no-op), got {:?}",
            t.name,
            outcomes[i]
        );
    }
    let expected: BTreeMap<String, Expected> = [0, 1]
        .into_iter()
        .map(|i| (ComplianceTarget::anchor(i), t.expected(t.attrs(i))))
        .collect();
    t.assert_read_back(&expected, "after a batch with a failed change");
    t.assert_full_state(
        &t.full_import(None),
        &expected,
        "full import after a failed change",
    );
}

/// A full import of many objects comes in batches no larger than the
/// configured batch size, each object once.
pub fn full_import_streams_in_bounded_batches(t: &ComplianceTarget) {
    let n = t.large_count;
    assert!(
        n > t.batch_size * 2,
        "[{}] large_count must span several batches",
        t.name
    );
    let expected = t.seed(n);
    let imported = t.full_import(None);
    for (i, b) in imported.batches.iter().enumerate() {
        assert!(
            b.len() <= t.batch_size,
            "[{}] batch #{i} has {} items, more than the batch size {}",
            t.name,
            b.len(),
            t.batch_size
        );
    }
    let non_empty = imported.batches.iter().filter(|b| !b.is_empty()).count();
    assert!(
        non_empty >= n.div_ceil(t.batch_size),
        "[{}] {n} objects came in only {non_empty} batches",
        t.name
    );
    t.assert_full_state(&imported, &expected, "large full import");
}

/// A delta import after changes returns them (everything, for a connector
/// without delta support) and a watermark; a second delta returns nothing.
pub fn delta_import_returns_changes_and_a_watermark(t: &ComplianceTarget) {
    let mut expected = t.seed(6);
    let caps = (t.make)().capabilities();
    let first = t.full_import(None);
    if caps.delta_import {
        assert!(
            first.watermark.is_some(),
            "[{}] a delta-capable full import must return a watermark",
            t.name
        );
    }
    let a0 = t.attr(0);
    let changes = vec![
        t.update(
            &ComplianceTarget::anchor(0),
            [(a0.clone(), Some(Value::from("delta 0")))].into(),
        ),
        t.add(6),
        t.delete(&ComplianceTarget::anchor(1)),
    ];
    t.assert_all_applied(&t.export(&[changes]), "changes before a delta import");
    expected
        .get_mut(&ComplianceTarget::anchor(0))
        .unwrap()
        .attributes
        .insert(a0, Value::from("delta 0"));
    expected.insert(ComplianceTarget::anchor(6), t.expected(t.attrs(6)));
    expected.remove(&ComplianceTarget::anchor(1));

    let delta = t.delta_import(first.watermark.as_deref());
    assert!(
        !delta.unchanged,
        "[{}] a changed system must not report unchanged",
        t.name
    );
    if !caps.delta_import {
        t.assert_full_state(&delta, &expected, "delta import without delta support");
        return;
    }
    let wm = delta
        .watermark
        .clone()
        .unwrap_or_else(|| panic!("[{}] a delta import must return a watermark", t.name));
    let got = t.objects(&delta);
    for i in [0, 6] {
        let anchor = ComplianceTarget::anchor(i);
        let obj = got
            .get(&anchor)
            .unwrap_or_else(|| panic!("[{}] delta import misses changed object {anchor}", t.name));
        assert_eq!(
            obj.change,
            ImportChange::Full,
            "[{}] {anchor} change",
            t.name
        );
        assert_eq!(
            obj.attributes, expected[&anchor].attributes,
            "[{}] {anchor} attributes",
            t.name
        );
    }
    let deleted = ComplianceTarget::anchor(1);
    if t.delta_sees_deletes {
        let obj = got
            .get(&deleted)
            .unwrap_or_else(|| panic!("[{}] delta import misses deleted object {deleted}", t.name));
        assert_eq!(
            obj.change,
            ImportChange::Delete,
            "[{}] {deleted} must be a delete",
            t.name
        );
    }
    for i in 2..6 {
        let anchor = ComplianceTarget::anchor(i);
        assert!(
            !got.contains_key(&anchor),
            "[{}] delta import returned unchanged object {anchor}",
            t.name
        );
    }
    let again = t.delta_import(Some(&wm));
    assert!(
        t.objects(&again).is_empty(),
        "[{}] a delta import right after another must return nothing",
        t.name
    );
}

/// `unchanged()` is true only when nothing changed since the watermark (and
/// then no batch comes); after a change it is false and the new state comes.
pub fn unchanged_is_true_only_when_nothing_changed(t: &ComplianceTarget) {
    let mut expected = t.seed(4);
    let first = t.full_import(None);
    assert!(
        !first.unchanged,
        "[{}] an import without a watermark cannot be unchanged",
        t.name
    );
    let wm = first.watermark.clone();
    let second = t.full_import(wm.as_deref());
    if t.detects_unchanged {
        assert!(
            wm.is_some(),
            "[{}] detecting an unchanged system needs a watermark",
            t.name
        );
        assert!(
            second.unchanged,
            "[{}] an untouched system must report unchanged",
            t.name
        );
    }
    if second.unchanged {
        assert!(
            second.batches.iter().all(Vec::is_empty),
            "[{}] an unchanged import must yield no objects",
            t.name
        );
        assert_eq!(
            second.watermark, wm,
            "[{}] an unchanged import keeps the watermark",
            t.name
        );
    } else {
        t.assert_full_state(&second, &expected, "second full import");
    }
    let a1 = t.attr(1);
    let change = t.update(
        &ComplianceTarget::anchor(2),
        [(a1.clone(), Some(Value::from("touched")))].into(),
    );
    t.assert_all_applied(&t.export(&[vec![change]]), "a change after the watermark");
    expected
        .get_mut(&ComplianceTarget::anchor(2))
        .unwrap()
        .attributes
        .insert(a1, Value::from("touched"));
    let third = t.full_import(wm.as_deref());
    assert!(
        !third.unchanged,
        "[{}] a changed system must not report unchanged",
        t.name
    );
    t.assert_full_state(&third, &expected, "full import after a change");
}

/// A check of the suite: its name (the function's) and the function.
pub type Check = (&'static str, fn(&ComplianceTarget));

/// Every check of the suite. A connector's tests run each one (a test
/// there fails when this list has a check its tests lack).
pub const CHECKS: &[Check] = &[
    (
        "export_adds_then_full_import_returns_exactly_them",
        export_adds_then_full_import_returns_exactly_them,
    ),
    (
        "export_update_remove_attribute_and_delete_round_trip",
        export_update_remove_attribute_and_delete_round_trip,
    ),
    (
        "re_sending_an_add_updates_in_place",
        re_sending_an_add_updates_in_place,
    ),
    (
        "failed_changes_do_not_stop_the_batch",
        failed_changes_do_not_stop_the_batch,
    ),
    (
        "full_import_streams_in_bounded_batches",
        full_import_streams_in_bounded_batches,
    ),
    (
        "delta_import_returns_changes_and_a_watermark",
        delta_import_returns_changes_and_a_watermark,
    ),
    (
        "unchanged_is_true_only_when_nothing_changed",
        unchanged_is_true_only_when_nothing_changed,
    ),
    (
        "every_value_type_reads_back_equal",
        every_value_type_reads_back_equal,
    ),
    (
        "value_changes_read_back_as_the_whole_value",
        value_changes_read_back_as_the_whole_value,
    ),
];

/// Every check, in turn, on one target.
pub fn run_all(t: &ComplianceTarget) {
    for (_, check) in CHECKS {
        check(t);
    }
}
