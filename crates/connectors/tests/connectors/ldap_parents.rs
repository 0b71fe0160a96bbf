//! `create_parents`: an add or a move into an `ou=` that does not exist
//! yet makes it (and any missing `ou=` above it, below the base DN); only
//! `ou=` entries are made; without the setting the change fails alone
//! with `object-not-found`, as before.

use crate::ldap_support::*;
use autosync_connector::{Connector, ExportChange, ExportOutcome};
use autosync_model::{AttrChanges, ExportKind, ObjectTypeDef, Value};
use serde_json::json;

fn person_type() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "person".into(),
        anchor: "entryUUID".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    }
}

fn add(dn: &str, sn: &str) -> ExportChange {
    ExportChange {
        object_type: "person".into(),
        anchor: format!("tmp-{sn}"),
        dn: dn.into(),
        kind: ExportKind::Add,
        changes: [("sn".to_owned(), Some(Value::from(sn)))]
            .into_iter()
            .collect::<AttrChanges>(),
        values: Default::default(),
        new_dn: None,
    }
}

fn export(conn: &mut dyn Connector, batch: &[ExportChange]) -> Vec<ExportOutcome> {
    let mut session = conn.begin_export().unwrap();
    let out = session.apply(batch).unwrap();
    session.commit().unwrap();
    out
}

fn connector(base: &str, create_parents: bool) -> Box<dyn Connector> {
    build(
        vec![person_type()],
        admin_settings(
            slapd(),
            base,
            json!({ "object_classes": { "person": "inetOrgPerson" }, "create_parents": create_parents }),
        ),
    )
}

fn failed_type(o: &ExportOutcome) -> &str {
    match o {
        ExportOutcome::Failed { error_type, .. } => error_type,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn adds_and_moves_should_make_missing_organizational_units_when_asked() {
    let s = slapd();
    let base = s.new_ou("parents").unwrap();
    let ann = format!("cn=Ann,ou=Research,ou=Labs,{base}");

    // Without the setting: the add fails alone, nothing is made.
    let mut plain = connector(&base, false);
    let out = export(plain.as_mut(), &[add(&ann, "Ann")]);
    assert_eq!(failed_type(&out[0]), "object-not-found", "{out:?}");
    assert!(search(s, &base, "(ou=Labs)", &["ou"]).is_empty());

    // With it: both levels are made, then the entry.
    let mut conn = connector(&base, true);
    let out = export(conn.as_mut(), &[add(&ann, "Ann")]);
    let anchor = match &out[0] {
        ExportOutcome::Applied { anchor: Some(a) } => a.clone(),
        other => panic!("{other:?}"),
    };
    let research = &search(
        s,
        &format!("ou=Research,ou=Labs,{base}"),
        "(objectClass=*)",
        &["objectClass", "ou"],
    )[0];
    assert_eq!(research.texts("objectClass"), ["organizationalUnit"]);
    assert_eq!(research.texts("ou"), ["Research"]);
    assert_eq!(
        search(s, &ann, "(objectClass=*)", &["sn"])[0].texts("sn"),
        ["Ann"]
    );

    // A second add into an ou made already: nothing more to make.
    let bob = format!("cn=Bob,ou=Research,ou=Labs,{base}");
    let out = export(conn.as_mut(), &[add(&bob, "Bob")]);
    assert!(matches!(out[0], ExportOutcome::Applied { .. }), "{out:?}");

    // A move into a new ou (a department change) makes it.
    let mut moved = ExportChange {
        kind: ExportKind::Update,
        anchor,
        changes: AttrChanges::new(),
        ..add(&ann, "Ann")
    };
    let sales = format!("cn=Ann,ou=Sales,{base}");
    moved.new_dn = Some(sales.clone());
    let out = export(conn.as_mut(), std::slice::from_ref(&moved));
    assert_eq!(out, [ExportOutcome::Applied { anchor: None }]);
    assert_eq!(
        search(s, &sales, "(objectClass=*)", &["sn"])[0].texts("sn"),
        ["Ann"]
    );
    assert!(search(s, &base, "(cn=Ann)", &["cn"]).len() == 1);

    // Only ou= entries are made: a missing cn= container fails the add.
    let cy = format!("cn=Cy,cn=Containers,{base}");
    let out = export(conn.as_mut(), &[add(&cy, "Cy")]);
    assert_eq!(failed_type(&out[0]), "object-not-found");
    match &out[0] {
        ExportOutcome::Failed { detail, .. } => {
            assert!(detail.contains("makes only `ou=` entries"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing outside the base DNs is made: the DN is refused first.
    let out = export(
        conn.as_mut(),
        &[add("cn=Dee,ou=Elsewhere,dc=example,dc=org", "Dee")],
    );
    assert_eq!(failed_type(&out[0]), "dn-out-of-scope");
}

/// Adds into one new `ou=` in one batch go in flight together: each is
/// refused for the missing parent, the first makes it, and the others,
/// finding it there, are sent again.
#[test]
fn many_adds_into_one_new_organizational_unit_should_all_be_made() {
    let s = slapd();
    let base = s.new_ou("siblings").unwrap();
    let mut conn = connector(&base, true);
    let batch: Vec<ExportChange> = (0..40)
        .map(|i| add(&format!("cn=P{i},ou=Research,{base}"), &format!("P{i}")))
        .collect();
    let out = export(conn.as_mut(), &batch);
    let failed: Vec<&ExportOutcome> = out
        .iter()
        .filter(|o| matches!(o, ExportOutcome::Failed { .. }))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        search(s, &format!("ou=Research,{base}"), "(cn=P*)", &["cn"]).len(),
        40
    );
}
