//! The LDAP export's changes in flight together: one batch where children
//! follow their parents and a group follows its members (each must wait
//! for the one it names), and updates and deletes sent to a DN the entry
//! has left (the assertion of its anchor fails: it is found by anchor).

use crate::ldap_support::*;
use autosync_connector::{ExportChange, ExportOutcome};
use autosync_model::{ExportKind, ObjectTypeDef, Value};
use serde_json::json;

fn person_type() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "person".into(),
        anchor: "entryUUID".into(),
        dn: None,
        references: Default::default(),
    }
}

fn add(dn: &str, sn: &str) -> ExportChange {
    ExportChange {
        object_type: "person".into(),
        anchor: format!("tmp-{dn}"),
        dn: dn.into(),
        kind: ExportKind::Add,
        changes: [("sn".to_owned(), Some(Value::from(sn)))].into(),
        values: Default::default(),
        new_dn: None,
    }
}

fn anchor_of(o: &ExportOutcome) -> String {
    match o {
        ExportOutcome::Applied { anchor: Some(a) } => a.clone(),
        other => panic!("expected an applied add with its entryUUID, got {other:?}"),
    }
}

#[test]
fn a_batch_should_keep_parents_before_children_and_find_moved_entries_by_anchor() {
    let s = slapd();
    let base = s.new_ou("pipeline").unwrap();
    let settings = admin_settings(
        s,
        &base,
        json!({ "object_classes": { "person": "inetOrgPerson" } }),
    );
    let mut conn = build(vec![person_type()], settings);

    // Parents, each followed by its child and grandchild: the child's add
    // fails (noSuchObject) if it reaches the server before its parent's.
    let mut batch = Vec::new();
    for i in 0..40 {
        let p = format!("cn=p{i},{base}");
        let c = format!("cn=c{i},{p}");
        let g = format!("cn=g{i},{c}");
        batch.extend([add(&p, "parent"), add(&c, "child"), add(&g, "grandchild")]);
    }
    let mut session = conn.begin_export().unwrap();
    let out = session.apply(&batch).unwrap();
    assert_eq!(out.len(), batch.len());
    let anchors: Vec<String> = out.iter().map(anchor_of).collect();
    let found = s.ldapsearch(&base, "(sn=grandchild)", &["1.1"]).unwrap();
    assert_eq!(found.matches("dn: ").count(), 40, "{found}");

    // p0's subtree moves away behind the engine's back: an update and
    // then a delete sent to its old DN reach it by its anchor.
    s.ldapadd(&format!(
        "dn: ou=away,{base}\nobjectClass: organizationalUnit\nou: away\n"
    ))
    .unwrap();
    let moved = std::process::Command::new("ldapmodrdn")
        .args(["-x", "-H", s.url(), "-D", s.admin_dn(), "-w"])
        .arg(s.admin_password())
        .args(["-s", &format!("ou=away,{base}")])
        .arg(format!("cn=g1,cn=c1,cn=p1,{base}"))
        .arg("cn=g1")
        .status()
        .unwrap();
    assert!(moved.success());
    let old = format!("cn=g1,cn=c1,cn=p1,{base}");
    let update = ExportChange {
        kind: ExportKind::Update,
        anchor: anchors[5].clone(),
        changes: [("sn".to_owned(), Some(Value::from("moved")))].into(),
        ..add(&old, "")
    };
    // A delete of an entry still where the engine knows it, and one whose
    // anchor does not match the entry at that DN (refused by the
    // assertion: nothing deleted there, nothing found by that anchor).
    let delete_known = ExportChange {
        kind: ExportKind::Delete,
        anchor: anchors[8].clone(),
        changes: Default::default(),
        ..add(&format!("cn=g2,cn=c2,cn=p2,{base}"), "")
    };
    let delete_wrong = ExportChange {
        kind: ExportKind::Delete,
        anchor: "00000000-0000-0000-0000-000000000000".into(),
        changes: Default::default(),
        ..add(&format!("cn=g3,cn=c3,cn=p3,{base}"), "")
    };
    let out = session
        .apply(&[update, delete_known, delete_wrong])
        .unwrap();
    session.commit().unwrap();
    for o in &out {
        assert_eq!(*o, ExportOutcome::Applied { anchor: None }, "{out:?}");
    }
    let away = s
        .ldapsearch(&format!("ou=away,{base}"), "(cn=g1)", &["sn"])
        .unwrap();
    assert!(away.contains("sn: moved"), "{away}");
    let gone = s.ldapsearch(&base, "(cn=g2)", &["1.1"]).unwrap();
    assert!(!gone.contains("dn: "), "{gone}");
    let kept = s.ldapsearch(&base, "(cn=g3)", &["1.1"]).unwrap();
    assert!(
        kept.contains("dn: "),
        "the entry of another anchor stays: {kept}"
    );
}
