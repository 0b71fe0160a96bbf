//! Round trips and damaged bodies.

use super::*;
use crate::sqlite::names::Names;
use autosync_model::{
    AttrChanges, Attributes, Connection, CsObject, ErrorStage, ExportKind, ImportKind, MvObject,
    MvValue, ObjectError, PendingExport, PendingImport, Value, ValueChanges, ValueDelta,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ".*".prop_map(Value::String),
        any::<i64>().prop_map(Value::Integer),
        any::<bool>().prop_map(Value::Boolean),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
        any::<i64>().prop_map(Value::Reference),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(Value::Multi)
    })
}

fn attrs() -> impl Strategy<Value = Attributes> {
    proptest::collection::btree_map(".{0,8}", value(), 0..5)
}

fn changes() -> impl Strategy<Value = AttrChanges> {
    proptest::collection::btree_map(".{0,8}", proptest::option::of(value()), 0..5)
}

/// Value-level changes (mostly none, as most pending changes have).
fn value_changes() -> impl Strategy<Value = ValueChanges> {
    let delta = (
        proptest::collection::vec(value(), 0..3),
        proptest::collection::vec(value(), 0..3),
    )
        .prop_map(|(add, remove)| ValueDelta { add, remove });
    prop_oneof![
        2 => Just(ValueChanges::new()),
        1 => proptest::collection::btree_map(".{0,8}", delta, 0..3),
    ]
}

fn export() -> impl Strategy<Value = Option<PendingExport>> {
    proptest::option::of(
        (
            0u8..5,
            changes(),
            proptest::option::of(".*"),
            value_changes(),
        )
            .prop_map(|(k, changes, new_dn, values)| PendingExport {
                values,
                kind: [
                    ExportKind::Add,
                    ExportKind::Update,
                    ExportKind::Rename,
                    ExportKind::Delete,
                    ExportKind::DeleteAdd,
                ][usize::from(k)],
                changes,
                new_dn,
            }),
    )
}

fn cs() -> impl Strategy<Value = CsObject> {
    let import = proptest::option::of(
        (
            0u8..4,
            attrs(),
            proptest::option::of(".*"),
            proptest::option::of(".*"),
            value_changes(),
        )
            .prop_map(|(k, attributes, dn, object_type, values)| PendingImport {
                values,
                kind: [
                    ImportKind::Add,
                    ImportKind::Update,
                    ImportKind::Delete,
                    ImportKind::DeleteAdd,
                ][usize::from(k)],
                attributes,
                dn,
                object_type,
            }),
    );
    let connection = prop_oneof![
        Just(Connection::Disconnector),
        any::<i64>().prop_map(|mv_id| Connection::Connector { mv_id }),
        Just(Connection::ExplicitDisconnector),
    ];
    let error = proptest::option::of(
        (0u8..3, ".*", ".*", proptest::option::of(any::<i64>())).prop_map(
            |(s, error_type, detail, run_id)| ObjectError {
                stage: [ErrorStage::Import, ErrorStage::Sync, ErrorStage::Export][usize::from(s)],
                error_type,
                detail,
                run_id,
            },
        ),
    );
    (
        (".*", ".*", ".*", ".*", attrs(), any::<(bool, bool)>()),
        (connection, import, export(), export(), error),
    )
        .prop_map(
            |(
                (ma, anchor, dn, object_type, hologram, (present, provisioned)),
                (connection, pending_import, pending_export, unconfirmed_export, error),
            )| CsObject {
                id: 7,
                ma,
                anchor,
                dn,
                object_type,
                hologram,
                present,
                provisioned,
                connection,
                pending_import,
                pending_export,
                unconfirmed_export,
                error,
            },
        )
}

/// A dictionary holding some of the names the strategies make (short
/// ones), so that bodies mix numbers and text.
fn dict() -> Names {
    Names::of(&["", "a", "b", "c", "hr", "0", "ab", "person"])
}

/// `o` without pending values.
fn o_without_values(o: &CsObject) -> CsObject {
    let mut bare = o.clone();
    for p in bare
        .pending_export
        .iter_mut()
        .chain(bare.unconfirmed_export.iter_mut())
    {
        p.values.clear();
    }
    if let Some(p) = bare.pending_import.as_mut() {
        p.values.clear();
    }
    bare
}

proptest! {
    #[test]
    fn every_cs_object_round_trips(o in cs()) {
        for names in [Names::default(), dict()] {
            let mut buf = Vec::new();
            encode_cs(&mut buf, &names, &o);
            prop_assert_eq!(decode_cs(7, &buf, &names).unwrap(), o.clone());
            // Skipping to the pending export finds its kind.
            prop_assert_eq!(
                cs_pending_export_kind(7, &buf, &names).unwrap(),
                o.pending_export.as_ref().map(|p| p.kind)
            );
            // And the spelling: the DN, the pending export's kind and new DN.
            prop_assert_eq!(
                cs_spelling(7, &buf, &names).unwrap(),
                (
                    o.dn.clone(),
                    o.pending_export.as_ref().map(|p| (p.kind, p.new_dn.clone()))
                )
            );
        }
    }

    #[test]
    fn a_body_of_schema_version_3_still_decodes(o in cs()) {
        // Format 0xB1 wrote every name as text: what `encode_cs` writes
        // with an empty dictionary, but for the varint of each name's
        // length, which was the plain length.
        let mut buf = Vec::new();
        encode_cs_v1(&mut buf, &o);
        prop_assert_eq!(
            cs_pending_export_kind(7, &buf, &dict()).unwrap(),
            o.pending_export.as_ref().map(|p| p.kind)
        );
        prop_assert_eq!(decode_cs(7, &buf, &dict()).unwrap(), o);
    }

    #[test]
    fn every_mv_object_round_trips(
        object_type in ".*",
        attrs in proptest::collection::btree_map(".{0,8}", (value(), ".{0,4}"), 0..6),
    ) {
        let o = MvObject {
            id: 3,
            object_type,
            attributes: attrs
                .into_iter()
                .map(|(k, (value, contributor))| (k, MvValue { value, contributor }))
                .collect(),
        };
        let names = dict();
        let mut buf = Vec::new();
        encode_mv(&mut buf, &names, &o);
        prop_assert_eq!(decode_mv(3, &buf, &names).unwrap(), o.clone());
        // Picking some attributes finds exactly those, skipping the rest.
        let picked = |k: &str| k.len().is_multiple_of(2);
        let mut found = Vec::new();
        mv_attrs(&buf, &names, &picked, &mut |k, v, _| found.push((k.to_owned(), v.clone()))).unwrap();
        let expected: Vec<(String, Value)> = o
            .attributes
            .iter()
            .filter(|(k, _)| picked(k))
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn a_truncated_or_damaged_body_is_an_error_never_a_panic(
        o in cs(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()
    ) {
        let names = dict();
        let mut buf = Vec::new();
        encode_cs(&mut buf, &names, &o);
        let n = cut.index(buf.len());
        if let Ok(got) = decode_cs(1, &buf[..n], &names) {
            // Only a cut where the pending values' trailer starts leaves a
            // whole body (one without pending values).
            let mut bare = o_without_values(&o);
            bare.id = 1;
            prop_assert_eq!(got, bare);
            let mut without = Vec::new();
            encode_cs(&mut without, &names, &o_without_values(&o));
            prop_assert_eq!(n, without.len());
        }
        let i = flip.0.index(buf.len());
        buf[i] ^= flip.1 | 1;
        let _ = decode_cs(1, &buf, &names);
        let _ = cs_pending_export_kind(1, &buf, &names);
        let _ = decode_mv(1, &buf, &names);
        let _ = mv_attrs(&buf, &names, &|_| true, &mut |_, _, _| {});
    }
}

proptest! {
    #[test]
    fn attributes_kept_as_rows_decode_as_the_placeholder_and_are_named(
        o in cs(), declared in proptest::collection::btree_set(".{0,8}", 0..4)
    ) {
        let names = dict();
        let rows: Vec<(String, i64)> = declared.iter().cloned().zip(1..).collect();
        let mut buf = Vec::new();
        encode_cs_rows(&mut buf, &names, &o, &rows);
        let (light, marks) = decode_cs_marked(7, &buf, &names).unwrap();
        let mut want = o.clone();
        let mut want_marks = Vec::new();
        for (k, v) in want.hologram.iter_mut() {
            if declared.contains(k) && matches!(v, Value::Multi(_)) {
                *v = Value::Multi(Vec::new());
                want_marks.push(k.clone());
            }
        }
        prop_assert_eq!(light, want);
        prop_assert_eq!(marks, want_marks);
        prop_assert_eq!(
            cs_pending_export_kind(7, &buf, &names).unwrap(),
            o.pending_export.as_ref().map(|p| p.kind)
        );
    }

    #[test]
    fn a_value_round_trips_through_its_canonical_bytes(v in value()) {
        let mut buf = Vec::new();
        encode_value(&mut buf, &v);
        prop_assert_eq!(decode_value(&buf).unwrap(), v);
    }
}

#[test]
fn a_body_without_pending_values_is_written_as_before() {
    let mut o = CsObject::new("hr", "a", "cn=a", "person");
    o.pending_export = Some(PendingExport {
        kind: ExportKind::Update,
        changes: AttrChanges::new(),
        new_dn: None,
        values: ValueChanges::new(),
    });
    let names = dict();
    let mut before = Vec::new();
    encode_cs(&mut before, &names, &o);
    if let Some(p) = o.pending_export.as_mut() {
        p.values.insert(
            "member".into(),
            ValueDelta {
                add: vec![Value::Reference(4)],
                remove: vec![],
            },
        );
    }
    let mut after = Vec::new();
    encode_cs(&mut after, &names, &o);
    // The trailer only: a flag, three maps of which one has one entry.
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(
        decode_cs(1, &after, &names).unwrap().pending_export,
        o.pending_export
    );
    let mut older = o.clone();
    if let Some(p) = older.pending_export.as_mut() {
        p.values.clear();
    }
    assert_eq!(
        decode_cs(1, &before, &names).unwrap().pending_export,
        older.pending_export
    );
}

#[test]
fn a_json_body_of_an_older_store_is_named_as_such() {
    let err = decode_cs(1, br#"{"ma":"hr"}"#, &Names::default()).unwrap_err();
    assert!(err.to_string().contains("schema version 1"), "{err}");
}

#[test]
fn names_are_numbers_when_the_dictionary_has_them_and_text_otherwise() {
    let mut o = MvObject {
        id: 1,
        object_type: "person".into(),
        attributes: BTreeMap::new(),
    };
    for (k, v) in [("mail", "ada@example.com"), ("employeeId", "E1")] {
        o.attributes.insert(
            k.into(),
            MvValue {
                value: Value::String(v.into()),
                contributor: "hr".into(),
            },
        );
    }
    let text = {
        let mut b = Vec::new();
        encode_mv(&mut b, &Names::default(), &o);
        b
    };
    let names = Names::of(&["person", "hr", "mail", "employeeId"]);
    let mut numbered = Vec::new();
    encode_mv(&mut numbered, &names, &o);
    // Five names of 6, 4, 10, 2 and 2 bytes, each after a one-byte
    // length, became five one-byte numbers.
    assert_eq!(text.len() - numbered.len(), 6 + 4 + 10 + 2 + 2);
    assert_eq!(decode_mv(1, &numbered, &names).unwrap(), o);
    // A copy of the dictionary that lacks a number says so (the caller
    // reads the dictionary again), instead of calling the body damaged
    // (attributes are in name order: employeeId, number 4, comes first).
    let older = Names::of(&["person", "hr"]);
    assert!(matches!(
        decode_mv(1, &numbered, &older),
        Err(BodyError::UnknownName(4))
    ));
    assert!(matches!(
        mv_attrs(&numbered, &older, &|_| true, &mut |_, _, _| {}),
        Err(BodyError::UnknownName(4))
    ));
}
