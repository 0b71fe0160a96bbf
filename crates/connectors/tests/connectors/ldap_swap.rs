//! Renames of one batch onto one another's DNs: two people who swap
//! names (the person DN is `cn=<displayName>,ou=people,...`), a cycle of
//! three, a chain (A takes B's name while B takes a new one). Each entry
//! ends at its new DN with its own attributes; a DN held by an entry the
//! batch does not rename away still fails the rename with
//! `already-exists`; a failure inside a cycle leaves every entry where its
//! anchor finds it, the one moved aside named by its change's failure.

use crate::ldap_support::*;
use autosync_connector::{Connector, ExportChange, ExportOutcome};
use autosync_model::{AttrChanges, ExportKind, ObjectTypeDef, Value};
use serde_json::json;

/// A unit of the test's own with `ou=people`, its people added directly.
struct Dir {
    base: String,
    conn: Box<dyn Connector>,
    /// Anchor (`entryUUID`, or the DN) of each person added, by name.
    anchors: Vec<(String, String)>,
}

impl Dir {
    /// People `names` (each with `mail: <name>@example.org`), anchored by
    /// `anchor` (`entryUUID` or `dn`).
    fn new(unit: &str, anchor: &str, names: &[&str]) -> Dir {
        let s = slapd();
        let base = s.new_ou(unit).unwrap();
        let mut ldif =
            format!("dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n");
        for n in names {
            ldif.push_str(&format!(
                "\ndn: cn={n},ou=people,{base}\nobjectClass: inetOrgPerson\ncn: {n}\nsn: {n}\nmail: {}@example.org\n",
                mail_of(n)
            ));
        }
        s.ldapadd(&ldif).unwrap();
        let person = ObjectTypeDef {
            name: "person".into(),
            anchor: anchor.into(),
            dn: Some("dn".into()),
            references: Default::default(),
        };
        let conn = build(
            vec![person],
            admin_settings(
                s,
                &base,
                json!({ "object_classes": { "person": "inetOrgPerson" } }),
            ),
        );
        let mut dir = Dir {
            base,
            conn,
            anchors: Vec::new(),
        };
        for n in names {
            let a = match anchor {
                "dn" => dir.dn(n),
                _ => dir.entry(&dir.dn(n)).texts("entryUUID")[0].clone(),
            };
            dir.anchors.push(((*n).to_owned(), a));
        }
        dir
    }

    fn dn(&self, cn: &str) -> String {
        format!("cn={cn},ou=people,{}", self.base)
    }

    fn anchor(&self, name: &str) -> String {
        self.anchors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .unwrap()
    }

    /// The entry at `dn` (it must be there).
    fn entry(&self, dn: &str) -> Entry {
        let found = search(
            slapd(),
            dn,
            "(objectClass=*)",
            &["entryUUID", "cn", "sn", "mail"],
        );
        found
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no entry at `{dn}`"))
    }

    /// The rename of person `name` (at `cn=<name>`) to `cn=<to>`, its
    /// `sn` set to `to`.
    fn rename(&self, name: &str, to: &str) -> ExportChange {
        ExportChange {
            object_type: "person".into(),
            anchor: self.anchor(name),
            dn: self.dn(name),
            kind: ExportKind::Update,
            changes: [("sn".to_owned(), Some(Value::from(to)))]
                .into_iter()
                .collect::<AttrChanges>(),
            values: Default::default(),
            new_dn: Some(self.dn(to)),
        }
    }

    fn export(&mut self, batch: &[ExportChange]) -> Vec<ExportOutcome> {
        let mut session = self.conn.begin_export().unwrap();
        let out = session.apply(batch).unwrap();
        assert_eq!(out.len(), batch.len());
        session.commit().unwrap();
        out
    }

    /// Person `name` is at `cn=<cn>` with its own entryUUID (or none
    /// checked, with the DN as anchor) and mail, and `sn`.
    fn is_at(&self, name: &str, cn: &str, sn: &str) {
        let e = self.entry(&self.dn(cn));
        assert_eq!(e.texts("mail"), [format!("{}@example.org", mail_of(name))]);
        assert_eq!(e.texts("cn"), [cn], "the old RDN value is gone");
        assert_eq!(e.texts("sn"), [sn]);
        let anchor = self.anchor(name);
        if !anchor.contains('=') {
            assert_eq!(e.texts("entryUUID"), [anchor]);
        }
    }

    /// Entries left under a DN moved aside.
    fn aside(&self) -> Vec<Entry> {
        search(
            slapd(),
            &self.base,
            "(cn=*autosync rename*)",
            &["cn", "mail"],
        )
    }
}

fn mail_of(name: &str) -> String {
    name.to_lowercase().replace(' ', ".")
}

const APPLIED: ExportOutcome = ExportOutcome::Applied { anchor: None };

fn failure(o: &ExportOutcome) -> (&str, &str) {
    match o {
        ExportOutcome::Failed { error_type, detail } => (error_type, detail),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn two_people_who_swap_names_should_each_get_the_others_dn_in_one_batch() {
    let mut d = Dir::new("swap", "entryUUID", &["Cy Renamed", "Cy CycleBee"]);
    let batch = [
        d.rename("Cy Renamed", "Cy CycleBee"),
        d.rename("Cy CycleBee", "Cy Renamed"),
    ];
    assert_eq!(d.export(&batch), [APPLIED, APPLIED]);
    d.is_at("Cy Renamed", "Cy CycleBee", "Cy CycleBee");
    d.is_at("Cy CycleBee", "Cy Renamed", "Cy Renamed");
    assert!(d.aside().is_empty(), "{:?}", d.aside());
    // Sent again (a replay): each is found where it is now; nothing moves.
    assert_eq!(d.export(&batch), [APPLIED, APPLIED]);
    d.is_at("Cy Renamed", "Cy CycleBee", "Cy CycleBee");
    d.is_at("Cy CycleBee", "Cy Renamed", "Cy Renamed");
}

#[test]
fn three_renames_in_a_cycle_should_all_go() {
    let mut d = Dir::new("cycle", "entryUUID", &["Ann", "Bob", "Cy", "Dee"]);
    // Dee, outside the cycle, in the middle of the batch.
    let mut dee = d.rename("Dee", "Dee");
    dee.new_dn = None;
    let batch = [
        d.rename("Ann", "Bob"),
        d.rename("Bob", "Cy"),
        dee,
        d.rename("Cy", "Ann"),
    ];
    assert_eq!(d.export(&batch), [APPLIED; 4]);
    d.is_at("Ann", "Bob", "Bob");
    d.is_at("Bob", "Cy", "Cy");
    d.is_at("Cy", "Ann", "Ann");
    d.is_at("Dee", "Dee", "Dee");
    assert!(d.aside().is_empty(), "{:?}", d.aside());
}

#[test]
fn a_chain_should_free_each_dn_before_it_is_taken() {
    let mut d = Dir::new("chain", "entryUUID", &["Ann", "Bob", "Cy"]);
    // In the batch's order each would find the next still there.
    let batch = [
        d.rename("Ann", "Bob"),
        d.rename("Bob", "Cy"),
        d.rename("Cy", "Cyrus"),
    ];
    assert_eq!(d.export(&batch), [APPLIED; 3]);
    d.is_at("Ann", "Bob", "Bob");
    d.is_at("Bob", "Cy", "Cy");
    d.is_at("Cy", "Cyrus", "Cyrus");
    assert!(search(slapd(), &d.base, "(cn=Ann)", &["cn"]).is_empty());
}

/// With the DN as the anchor, a swap exchanges anchors, which the engine
/// cannot record one outcome at a time: the connector leaves such renames
/// to fail as a clash, nothing sent, both entries as they were.
#[test]
fn with_the_dn_as_anchor_a_swap_should_fail_and_send_nothing() {
    let mut d = Dir::new("swapdn", "dn", &["Ann", "Bob"]);
    let out = d.export(&[d.rename("Ann", "Bob"), d.rename("Bob", "Ann")]);
    for o in &out {
        let (kind, detail) = failure(o);
        assert_eq!(kind, "already-exists", "{detail}");
        assert!(
            detail.contains("nothing of this change was sent"),
            "{detail}"
        );
    }
    d.is_at("Ann", "Ann", "Ann");
    d.is_at("Bob", "Bob", "Bob");
    assert!(d.aside().is_empty());
}

#[test]
fn a_dn_held_by_an_entry_the_batch_does_not_rename_away_should_still_fail() {
    let mut d = Dir::new("clash", "entryUUID", &["Ann", "Bob", "Cy"]);
    // Bob stays (his change renames nothing); Cy leaves his DN for a new one.
    let mut bob = d.rename("Bob", "Roberts");
    bob.new_dn = None;
    let out = d.export(&[d.rename("Ann", "Bob"), bob, d.rename("Cy", "Cyrus")]);
    let (kind, detail) = failure(&out[0]);
    assert_eq!(kind, "already-exists");
    assert!(detail.contains(&d.dn("Bob")), "{detail}");
    assert!(
        detail.contains("nothing of this change was sent"),
        "{detail}"
    );
    assert_eq!(out[1..], [APPLIED, APPLIED]);
    d.is_at("Ann", "Ann", "Ann");
    d.is_at("Bob", "Bob", "Roberts");
    d.is_at("Cy", "Cyrus", "Cyrus");
    assert!(d.aside().is_empty());
}

/// `sn` removed: inetOrgPerson requires it, so the server refuses the
/// update (`object-class-violation`), and the rename with it.
fn refused(mut c: ExportChange) -> ExportChange {
    c.changes.insert("sn".into(), None);
    c
}

#[test]
fn a_swap_whose_other_rename_fails_should_leave_both_at_their_dns() {
    let mut d = Dir::new("swapfail", "entryUUID", &["Ann", "Bob"]);
    let out = d.export(&[d.rename("Ann", "Bob"), refused(d.rename("Bob", "Ann"))]);
    assert_eq!(failure(&out[1]).0, "object-class-violation", "{out:?}");
    // Ann was moved aside first, then back: her DN is free.
    let (kind, detail) = failure(&out[0]);
    assert_eq!(kind, "already-exists");
    assert!(detail.contains("moved back to"), "{detail}");
    d.is_at("Ann", "Ann", "Ann");
    d.is_at("Bob", "Bob", "Bob");
    assert!(d.aside().is_empty(), "{:?}", d.aside());
}

#[test]
fn a_cycle_broken_in_the_middle_should_leave_the_entry_aside_found_by_its_anchor() {
    let mut d = Dir::new("cyclefail", "entryUUID", &["Ann", "Bob", "Cy"]);
    // Ann goes aside, Cy takes her DN, Bob's rename is refused: Ann can
    // neither take Bob's DN nor get hers back.
    let out = d.export(&[
        d.rename("Ann", "Bob"),
        refused(d.rename("Bob", "Cy")),
        d.rename("Cy", "Ann"),
    ]);
    assert_eq!(out[2], APPLIED);
    assert_eq!(failure(&out[1]).0, "object-class-violation");
    let (kind, detail) = failure(&out[0]);
    assert_eq!(kind, "already-exists");
    let aside = format!("cn=Ann (autosync rename 1),ou=people,{}", d.base);
    assert!(detail.contains(&aside), "{detail}");
    assert!(detail.contains("entryUUID"), "{detail}");
    let e = d.entry(&aside);
    assert_eq!(e.texts("entryUUID"), [d.anchor("Ann")]);
    assert_eq!(e.texts("mail"), ["ann@example.org"]);
    d.is_at("Bob", "Bob", "Bob");
    d.is_at("Cy", "Ann", "Ann");
    // The next export (Bob's change fixed; the engine still knows Ann at
    // her old DN) finds her by her anchor, and both go.
    let out = d.export(&[d.rename("Ann", "Bob"), d.rename("Bob", "Cy")]);
    assert_eq!(out, [APPLIED, APPLIED]);
    d.is_at("Ann", "Bob", "Bob");
    d.is_at("Bob", "Cy", "Cy");
    assert!(d.aside().is_empty(), "{:?}", d.aside());
}
