use super::*;
use autosync_model::{AttrChanges, ValueDelta};

/// A session that records each batch sent and fails the adds of the
/// anchors it is told to.
pub(super) struct Recording {
    pub batches: Vec<Vec<ExportChange>>,
    pub fail: Vec<&'static str>,
}

impl ExportSession for Recording {
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        self.batches.push(batch.to_vec());
        Ok(batch
            .iter()
            .map(|c| {
                if self.fail.contains(&c.anchor.as_str()) {
                    ExportOutcome::Failed {
                        error_type: "constraint-violation".into(),
                        detail: "taken".into(),
                    }
                } else {
                    ExportOutcome::Applied { anchor: None }
                }
            })
            .collect())
    }
    fn durable_per_batch(&self) -> bool {
        true
    }
    fn commit(self: Box<Self>) -> Result<(), ConnectorError> {
        Ok(())
    }
}

pub(super) fn s(v: &str) -> Value {
    Value::String(v.into())
}

pub(super) fn add(anchor: &str, dn: &str, manager: Option<&str>) -> ExportChange {
    let mut changes = AttrChanges::new();
    changes.insert("name".into(), Some(s(dn)));
    if let Some(m) = manager {
        changes.insert("manager".into(), Some(s(m)));
    }
    ExportChange {
        object_type: "user".into(),
        anchor: anchor.into(),
        dn: dn.into(),
        kind: ExportKind::Add,
        changes,
        values: Default::default(),
        new_dn: None,
    }
}

/// `h.apply` when no add's name is another object's.
pub(super) fn plain(
    h: &mut Holds,
    rec: &mut Recording,
    page: &mut [ExportChange],
) -> Result<(Vec<ExportOutcome>, Vec<Option<Held>>), Cut> {
    h.apply(rec, page, &mut |_, _| Vec::new(), &mut |_, _, _| false)
}

fn holds() -> Holds {
    Holds::new(vec![("manager".into(), RefBy::Dn)])
}

pub(super) fn session(fail: &[&'static str]) -> Recording {
    Recording {
        batches: Vec::new(),
        fail: fail.to_vec(),
    }
}

#[test]
fn a_page_without_references_to_its_own_adds_goes_in_one_batch() {
    let mut h = holds();
    let mut rec = session(&[]);
    let mut page = vec![add("1", "a", None), add("2", "b", Some("zed"))];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(rec.batches.len(), 1);
    assert!(held.iter().all(Option::is_none));
}

#[test]
fn a_reference_to_an_add_of_the_same_page_goes_after_it() {
    let mut h = holds();
    let mut rec = session(&[]);
    // The manager's add comes first in id order; the report after it.
    let mut page = vec![add("1", "boss", None), add("2", "rep", Some("BOSS"))];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(rec.batches.len(), 2, "the report goes in a second batch");
    assert_eq!(
        rec.batches[1][0].changes.get("manager"),
        Some(&Some(s("BOSS")))
    );
    assert!(held.iter().all(Option::is_none));
}

#[test]
fn a_reference_to_an_add_that_failed_is_held_back_and_stays_pending() {
    let mut h = holds();
    let mut rec = session(&["1"]);
    let mut page = vec![add("1", "boss", None), add("2", "rep", Some("boss"))];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert!(matches!(out[0], ExportOutcome::Failed { .. }));
    assert_eq!(out[1], ExportOutcome::Applied { anchor: None });
    // The report was added without the manager.
    assert_eq!(rec.batches[1][0].changes.get("manager"), None);
    let held = held[1].as_ref().expect("the manager is held");
    assert!(!held.all());
    assert_eq!(held.count(), 1);
    // What the system has is the add without the manager; the manager
    // stays pending as an update.
    let mut done = PendingExport {
        kind: ExportKind::Add,
        changes: add("2", "rep", Some("boss")).changes,
        new_dn: None,
        values: Default::default(),
    };
    let rest = held.split(&mut done).unwrap();
    assert_eq!(done.changes.get("manager"), None);
    assert_eq!(done.changes.get("name"), Some(&Some(s("rep"))));
    assert_eq!(rest.kind, ExportKind::Update);
    assert_eq!(rest.changes.get("manager"), Some(&Some(s("boss"))));

    // A later page naming the failed add: held too, and an update with
    // nothing else is not sent at all.
    let mut update = add("3", "other", Some("boss"));
    update.kind = ExportKind::Update;
    update.changes.remove("name");
    let mut page = vec![update];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }]);
    assert!(held[0].as_ref().is_some_and(|h| h.all()));
    assert_eq!(rec.batches.len(), 2, "nothing was sent");
}

#[test]
fn a_member_naming_a_failed_add_is_left_out_of_the_list_and_of_value_changes() {
    let mut h = Holds::new(vec![("member".into(), RefBy::Anchor)]);
    let mut rec = session(&["9"]);
    let mut group = add("g", "g", None);
    group
        .changes
        .insert("member".into(), Some(Value::Multi(vec![s("8"), s("9")])));
    let mut page = vec![add("8", "x", None), add("9", "y", None), group];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out.len(), 3);
    let sent = rec.batches.last().unwrap();
    assert_eq!(
        sent[0].changes.get("member"),
        Some(&Some(Value::Multi(vec![s("8")])))
    );
    assert_eq!(held[2].as_ref().map(Held::count), Some(1));

    let mut update = add("h", "h", None);
    update.kind = ExportKind::Update;
    update.changes.clear();
    update.values.insert(
        "member".into(),
        ValueDelta {
            add: vec![s("9"), s("8")],
            remove: vec![s("7")],
        },
    );
    let mut page = vec![update];
    let (_, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    let sent = rec.batches.last().unwrap();
    assert_eq!(sent[0].values["member"].add, vec![s("8")]);
    assert_eq!(sent[0].values["member"].remove, vec![s("7")]);
    let held = held[0].as_ref().unwrap();
    assert!(!held.all());
    let mut done = PendingExport {
        kind: ExportKind::Update,
        changes: Default::default(),
        new_dn: None,
        values: page[0].values.clone(),
    };
    done.values.get_mut("member").unwrap().add.push(s("9"));
    let rest = held.split(&mut done).unwrap();
    assert_eq!(done.values["member"].add, vec![s("8")]);
    assert_eq!(rest.values["member"].add, vec![s("9")]);
}

/// A value that is the new DN of a rename in the page names the object
/// that has that DN now (a sync spells a renamed object by its old DN
/// until the rename is sent): it is neither ordered after the rename nor
/// held when the rename fails (the DN was taken by that very object).
#[test]
fn a_value_that_is_a_failing_renames_new_dn_goes_as_it_is() {
    let mut h = holds();
    let mut rec = session(&["2"]);
    let mut report = add("1", "rep", Some("boss2"));
    report.kind = ExportKind::Update;
    report.changes.remove("name");
    let mut rename = add("2", "boss", None);
    rename.kind = ExportKind::Rename;
    rename.changes.clear();
    rename.new_dn = Some("boss2".into());
    let mut page = vec![rename, report];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out.len(), 2);
    assert!(matches!(out[0], ExportOutcome::Failed { .. }));
    assert_eq!(rec.batches.len(), 1, "one phase");
    assert_eq!(
        rec.batches[0][1].changes.get("manager"),
        Some(&Some(s("boss2")))
    );
    assert!(held.iter().all(Option::is_none));
}

/// Two people given one DN: the first's add goes, the second's is
/// refused. A value a referrer is newly given (a new group's list, a
/// manager, a member added) may mean the refused one and would name the
/// first: held (a black-box review: a report was sent the namesake as
/// manager), unless the referrer's metaverse object refers to the first
/// (a group of both keeps the one there), in a list an update replaces
/// whole too (a second review: a file target's group got the namesake as
/// a new member).
#[test]
fn a_dn_another_object_has_is_held_only_where_new_and_not_meant_when_a_second_add_of_it_fails() {
    let group = |anchor: &str| {
        let mut g = add(anchor, anchor, None);
        g.changes.insert(
            "member".into(),
            Some(Value::Multi(vec![s("John Smith"), s("Ann")])),
        );
        g
    };
    let replace = |anchor: &str| {
        let mut g = group(anchor);
        g.kind = ExportKind::Update;
        g
    };
    let member_added = |anchor: &str| {
        let mut g = replace(anchor);
        g.changes.clear();
        g.values.insert(
            "member".into(),
            ValueDelta {
                add: vec![s("john smith")],
                remove: Vec::new(),
            },
        );
        g
    };
    let members = || {
        Holds::new(vec![
            ("member".into(), RefBy::Dn),
            ("manager".into(), RefBy::Dn),
        ])
    };
    // Both adds in the page: the first went. `g` refers to the first,
    // the others do not.
    let mut h = members();
    let mut rec = session(&["2"]);
    let mut page = vec![
        add("1", "John Smith", None),
        add("2", "john smith", None),
        group("g"),
        add("3", "Bob", Some("JOHN SMITH")),
        replace("h"),
        member_added("i"),
        group("j"),
        replace("k"),
    ];
    let mut asked = Vec::new();
    let (out, held) = h
        .apply(
            &mut rec,
            &mut page,
            &mut |_, _| Vec::new(),
            &mut |referrer, attr, others| {
                asked.push((referrer.to_owned(), attr.to_owned(), others.to_vec()));
                referrer == "g" || referrer == "h"
            },
        )
        .unwrap();
    assert!(matches!(out[1], ExportOutcome::Failed { .. }));
    assert!(
        asked.contains(&("g".into(), "member".into(), vec!["1".into()])),
        "{asked:?}"
    );
    let count = |i: usize| held[i].as_ref().map(Held::count);
    assert_eq!(
        (count(2), count(3), count(4), count(5), count(6), count(7)),
        (None, Some(1), None, Some(1), Some(1), Some(1)),
        "{held:?}"
    );
    let sent: Vec<&ExportChange> = rec.batches.iter().flatten().collect();
    let by = |a: &str| sent.iter().find(|c| c.anchor == a).unwrap();
    let both = Some(&Some(Value::Multi(vec![s("John Smith"), s("Ann")])));
    assert_eq!(by("g").changes.get("member"), both);
    assert_eq!(
        by("j").changes.get("member"),
        Some(&Some(Value::Multi(vec![s("Ann")])))
    );
    assert_eq!(by("3").changes.get("manager"), None);
    assert_eq!(by("h").changes.get("member"), both);
    assert_eq!(
        by("k").changes.get("member"),
        Some(&Some(Value::Multi(vec![s("Ann")])))
    );
    assert!(
        sent.iter().all(|c| c.anchor != "i"),
        "nothing left to send of i"
    );
    // The first was there before this export: asked, the system has it.
    let mut h = members();
    let mut rec = session(&["2"]);
    let mut page = vec![
        add("2", "John Smith", None),
        replace("h"),
        add("3", "Bob", Some("John Smith")),
    ];
    let mut asked = Vec::new();
    let (_, held) = h
        .apply(
            &mut rec,
            &mut page,
            &mut |dn, anchor| {
                asked.push((dn.to_owned(), anchor.to_owned()));
                vec!["1".to_owned()]
            },
            &mut |referrer, _, _| referrer == "h",
        )
        .unwrap();
    assert_eq!(asked, [("john smith".to_owned(), "2".to_owned())]);
    assert!(held[1].is_none(), "{held:?}");
    assert_eq!(held[2].as_ref().map(Held::count), Some(1));
    // Nobody has it: held, as before, in a replaced list too.
    let mut h = members();
    let mut rec = session(&["2"]);
    let mut page = vec![add("2", "John Smith", None), replace("h")];
    let (_, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(held[1].as_ref().map(Held::count), Some(1));
}

/// A change naming an object by the DN a rename of the same export takes
/// away goes after the rename, naming it by its new DN once the rename
/// went (an LDAP review: a group got a moved member's old DN, which named
/// no entry; held, the old DN went out with the next export), and by the
/// old one when the rename failed (the object is still there). Either
/// order in the page; a later page too.
#[test]
fn a_dn_a_rename_of_the_export_takes_away_goes_as_the_new_dn_once_the_rename_went() {
    let rename = |anchor: &str| {
        let mut r = add(anchor, "boss", None);
        r.kind = ExportKind::Rename;
        r.changes.clear();
        r.new_dn = Some("boss2".into());
        r
    };
    let report = |anchor: &str| {
        let mut r = add(anchor, "rep", Some("boss"));
        r.kind = ExportKind::Update;
        r.changes.remove("name");
        r
    };
    let managers = |rec: &Recording| -> Vec<Value> {
        rec.batches
            .iter()
            .flatten()
            .filter_map(|c| c.changes.get("manager").cloned().flatten())
            .collect()
    };
    for report_first in [false, true] {
        // The rename went: the report names the new DN.
        let mut h = holds();
        let mut rec = session(&[]);
        let mut page = if report_first {
            vec![report("1"), rename("2")]
        } else {
            vec![rename("1"), report("2")]
        };
        let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(rec.batches.len(), 2, "the report after the rename");
        assert_eq!(managers(&rec), vec![s("boss2")]);
        // What the system has is the new DN: nothing stays pending.
        let r = usize::from(!report_first);
        let held = held[r].as_ref().expect("the new DN is noted");
        assert_eq!(held.count(), 0);
        let mut done = PendingExport {
            kind: ExportKind::Update,
            changes: report("x").changes,
            new_dn: None,
            values: Default::default(),
        };
        assert!(held.split(&mut done).is_none());
        assert_eq!(done.changes.get("manager"), Some(&Some(s("boss2"))));
        // A later page naming the old DN: the new one too.
        let mut rec = session(&[]);
        let mut page = vec![report("3")];
        plain(&mut h, &mut rec, &mut page).unwrap();
        assert_eq!(managers(&rec), vec![s("boss2")]);

        // The rename failed: the object keeps the name, which goes.
        let mut h = holds();
        let mut rec = session(&[if report_first { "2" } else { "1" }]);
        let mut page = if report_first {
            vec![report("1"), rename("2")]
        } else {
            vec![rename("1"), report("2")]
        };
        let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
        assert_eq!(out.len(), 2);
        assert!(held.iter().all(Option::is_none), "{held:?}");
        assert_eq!(rec.batches.len(), 2, "the report after the rename");
        assert_eq!(managers(&rec), vec![s("boss")]);
    }
}

/// A member's entry renamed back by this export (renamed by hand in the
/// directory) while the group holds the DN it had before: the value the
/// sync spelled (the hand-made DN) goes as the new DN, which is the one
/// the group holds and removes. Sent as they were, slapd took the add as
/// the value it had, then removed it: the member left the group (an LDAP
/// review). Neither goes, nor one in another case; a DN naming another
/// entry still does.
#[test]
fn a_member_added_and_removed_under_one_dn_is_not_sent() {
    let rename = |anchor: &str| {
        let mut r = add(anchor, "cn=David Manual,ou=p", None);
        r.kind = ExportKind::Rename;
        r.changes.clear();
        r.new_dn = Some("cn=David Smith3,ou=p".into());
        r
    };
    let group = |anchor: &str, add: &[&str], remove: &[&str]| {
        let mut g = super::tests::add(anchor, anchor, None);
        g.kind = ExportKind::Update;
        g.changes.clear();
        g.values.insert(
            "member".into(),
            ValueDelta {
                add: add.iter().map(|v| s(v)).collect(),
                remove: remove.iter().map(|v| s(v)).collect(),
            },
        );
        g
    };
    let members = || Holds::new(vec![("member".into(), RefBy::Dn)]);
    let mut h = members();
    let mut rec = session(&[]);
    let mut page = vec![
        rename("1"),
        group("g", &["cn=David Manual,ou=p"], &["cn=David Smith3,ou=p"]),
        group(
            "h",
            &["cn=David Manual,ou=p", "cn=Ann,ou=p"],
            &["cn=David Smith3,ou=p", "cn=Bob,ou=p"],
        ),
        group("i", &["CN=Nils SCHMIDT,ou=p"], &["cn=nils schmidt, ou=p"]),
    ];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out.len(), 4);
    let sent: Vec<&ExportChange> = rec.batches.iter().flatten().collect();
    assert!(
        sent.iter().all(|c| c.anchor != "g" && c.anchor != "i"),
        "{sent:?}"
    );
    let h_sent = sent.iter().find(|c| c.anchor == "h").unwrap();
    assert_eq!(
        h_sent.values.get("member"),
        Some(&ValueDelta {
            add: vec![s("cn=Ann,ou=p")],
            remove: vec![s("cn=Bob,ou=p")]
        })
    );
    // What the system now has: the pending export as read, less the pair.
    let gh = held[2].as_ref().expect("noted");
    assert_eq!(gh.count(), 0);
    let mut done = PendingExport {
        kind: ExportKind::Update,
        changes: Default::default(),
        new_dn: None,
        values: group(
            "x",
            &["cn=David Manual,ou=p", "cn=Ann,ou=p"],
            &["cn=David Smith3,ou=p", "cn=Bob,ou=p"],
        )
        .values,
    };
    assert!(gh.split(&mut done).is_none());
    assert_eq!(
        done.values.get("member"),
        Some(&ValueDelta {
            add: vec![s("cn=Ann,ou=p")],
            remove: vec![s("cn=Bob,ou=p")]
        })
    );
    assert!(held[3].as_ref().is_some_and(|h| h.empty && !h.all()));
}

/// An export cut short after a rename went: what it did not send names
/// the entry by the DN the rename took away; the next export (a retry, no
/// sync before it) would send that DN, which names nothing (a review: a
/// member left a group of 2,500 and 238 reports got a DN that was gone).
/// `respell` gives the values not sent the new DN, and a member added and
/// removed as one entry goes.
#[test]
fn values_not_sent_by_a_cut_export_name_the_dn_its_renames_gave() {
    let rename = {
        let mut r = add("1", "cn=Lena Manual,ou=p", None);
        r.kind = ExportKind::Rename;
        r.changes.clear();
        r.new_dn = Some("cn=Lena Gruber,ou=p".into());
        r
    };
    let mut h = Holds::new(vec![
        ("member".into(), RefBy::Dn),
        ("manager".into(), RefBy::Dn),
    ]);
    let mut rec = session(&[]);
    let mut page = vec![rename];
    plain(&mut h, &mut rec, &mut page).unwrap();
    assert!(h.moved_any());
    let mut group = PendingExport {
        kind: ExportKind::Update,
        changes: Default::default(),
        new_dn: None,
        values: [(
            "member".to_owned(),
            ValueDelta {
                add: vec![s("cn=Lena Manual,ou=p"), s("cn=Ann,ou=p")],
                remove: vec![s("cn=Lena Gruber,ou=p")],
            },
        )]
        .into_iter()
        .collect(),
    };
    assert!(h.respell(&mut group));
    assert_eq!(
        group.values.get("member"),
        Some(&ValueDelta {
            add: vec![s("cn=Ann,ou=p")],
            remove: Vec::new()
        })
    );
    let mut report = PendingExport {
        kind: ExportKind::Update,
        changes: [("manager".to_owned(), Some(s("CN=Lena Manual, ou=p")))]
            .into_iter()
            .collect(),
        new_dn: None,
        values: Default::default(),
    };
    assert!(h.respell(&mut report));
    assert_eq!(
        report.changes.get("manager"),
        Some(&Some(s("cn=Lena Gruber,ou=p")))
    );
    let mut other = report.clone();
    assert!(!h.respell(&mut other), "nothing more to change");
}
