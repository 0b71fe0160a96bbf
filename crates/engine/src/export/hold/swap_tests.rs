//! Renames onto one another's DNs (a swap of names, a chain) in one
//! phase, and what they held back sent by the next one.

use super::tests::{Recording, add, plain, s, session};
use super::*;
use autosync_model::ValueDelta;

fn holds() -> Holds {
    Holds::new(vec![
        ("manager".into(), RefBy::Dn),
        ("member".into(), RefBy::Dn),
    ])
}

/// A rename of the entry at `cn=<from>` to `cn=<to>`, naming `manager`.
fn rename(anchor: &str, from: &str, to: &str, manager: Option<&str>) -> ExportChange {
    let mut r = add(anchor, &format!("cn={from}"), manager);
    r.kind = ExportKind::Rename;
    r.changes.remove("name");
    r.new_dn = Some(format!("cn={to}"));
    r
}

/// An update of group `anchor` adding `members`.
fn members(anchor: &str, members: &[&str]) -> ExportChange {
    let mut g = add(anchor, &format!("cn={anchor}"), None);
    g.kind = ExportKind::Update;
    g.changes.clear();
    g.values.insert(
        "member".into(),
        ValueDelta {
            add: members.iter().map(|m| s(m)).collect(),
            remove: Vec::new(),
        },
    );
    g
}

/// The pending export change `c` was read from.
fn pending(c: &ExportChange) -> PendingExport {
    PendingExport {
        kind: c.kind,
        changes: c.changes.clone(),
        new_dn: c.new_dn.clone(),
        values: c.values.clone(),
    }
}

/// Two people who swap names while each comes to manage the other (each
/// naming the other by the DN the other's rename leaves): sent in two
/// phases, the first rename found the other entry at its new DN, then
/// the other the same, in every export (a review). Both go in one batch
/// (the connector orders them), their managers held, then sent by the
/// next batch by the DNs the renames gave; nothing stays pending (an
/// export before any sync would send a DN the swap gave the other
/// entry). A group adding both, after them, gets each once by its new DN.
#[test]
fn renames_that_swap_dns_go_in_one_batch_and_what_they_name_after_them() {
    let mut h = holds();
    let mut rec = session(&[]);
    let six = rename("6", "Renamed", "CycleBee", Some("cn=CycleBee"));
    let seven = rename("7", "CycleBee", "Renamed", Some("cn=Renamed"));
    let group = members("g2", &["cn=Renamed", "cn=CycleBee"]);
    let before = [pending(&six), pending(&seven), pending(&group)];
    let mut page = vec![six, seven, group];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }; 3]);
    assert_eq!(rec.batches.len(), 2, "{:#?}", rec.batches);
    let first = &rec.batches[0];
    assert_eq!(first.len(), 2, "both renames, and they only: {first:#?}");
    assert!(first.iter().all(|c| c.new_dn.is_some()));
    assert!(first.iter().all(|c| !c.changes.contains_key("manager")));
    // Then each manager by the DN the other has now, at the DN the
    // entry has now, and the group's members by their new DNs.
    let second = &rec.batches[1];
    assert_eq!(second.len(), 3, "{second:#?}");
    let at = |dn: &str| second.iter().find(|c| c.dn == dn).unwrap();
    let six_again = at("cn=CycleBee");
    assert_eq!(six_again.kind, ExportKind::Update);
    assert_eq!(six_again.anchor, "6");
    assert_eq!(six_again.new_dn, None);
    assert_eq!(
        six_again.changes.get("manager"),
        Some(&Some(s("cn=Renamed")))
    );
    assert_eq!(
        at("cn=Renamed").changes.get("manager"),
        Some(&Some(s("cn=CycleBee")))
    );
    assert_eq!(
        at("cn=g2").values["member"].add,
        vec![s("cn=CycleBee"), s("cn=Renamed")]
    );
    // What the system has: the renames with the managers by the new
    // DNs, each member once by its new DN. Nothing stays pending.
    let expected = ["cn=Renamed", "cn=CycleBee"];
    for (i, mut done) in before.into_iter().enumerate() {
        let h = held[i].as_ref().expect("something was held or respelled");
        assert_eq!(h.count(), 0, "{i}: {h:?}");
        assert!(h.split(&mut done).is_none(), "{i}: nothing stays pending");
        if i < 2 {
            assert_eq!(done.changes.get("manager"), Some(&Some(s(expected[i]))));
            assert!(done.new_dn.is_some());
        } else {
            assert_eq!(
                done.values["member"].add,
                vec![s("cn=CycleBee"), s("cn=Renamed")]
            );
        }
    }
    // The history says what went: the managers too.
    assert_eq!(page[0].changes.get("manager"), Some(&Some(s("cn=Renamed"))));
}

/// A chain: one takes the DN another leaves for a new one, naming it as
/// manager. One batch (the connector sends the one moving away first),
/// then the manager by the DN the other went to.
#[test]
fn a_chain_of_renames_goes_in_one_batch_and_its_manager_after_it() {
    let mut h = holds();
    let mut rec = session(&[]);
    let mut page = vec![
        rename("a", "A", "B", Some("cn=B")),
        rename("b", "B", "C", None),
    ];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(rec.batches.len(), 2, "{:#?}", rec.batches);
    assert_eq!(rec.batches[0].len(), 2);
    assert_eq!(rec.batches[1][0].dn, "cn=B");
    assert_eq!(
        rec.batches[1][0].changes.get("manager"),
        Some(&Some(s("cn=C")))
    );
    assert_eq!(held[0].as_ref().map(Held::count), Some(0));
}

/// A session that refuses the updates of the anchors it is told to (not
/// their renames).
struct RefusesUpdates(Recording);

impl ExportSession for RefusesUpdates {
    fn apply(&mut self, batch: &[ExportChange]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        self.0.batches.push(batch.to_vec());
        Ok(batch
            .iter()
            .map(|c| {
                if c.kind == ExportKind::Update && self.0.fail.contains(&c.anchor.as_str()) {
                    ExportOutcome::Failed {
                        error_type: "constraint-violation".into(),
                        detail: "no".into(),
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

/// The update sending a held manager refused: the rename went, the
/// manager stays held (pending, as the sync spelled it), and a swap whose
/// renames failed sends nothing more.
#[test]
fn a_held_manager_whose_update_is_refused_stays_pending() {
    let mut h = holds();
    let mut rec = RefusesUpdates(session(&["6"]));
    let six = rename("6", "Renamed", "CycleBee", Some("cn=CycleBee"));
    let mut done = pending(&six);
    let mut page = vec![six, rename("7", "CycleBee", "Renamed", None)];
    let (out, held) = h
        .apply(
            &mut rec,
            &mut page,
            &mut |_, _| Vec::new(),
            &mut |_, _, _| false,
        )
        .unwrap();
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }; 2]);
    assert_eq!(rec.0.batches.len(), 2);
    let held = held[0].as_ref().unwrap();
    assert_eq!(held.count(), 1);
    let rest = held.split(&mut done).unwrap();
    assert_eq!(done.changes.get("manager"), None);
    assert_eq!(rest.changes.get("manager"), Some(&Some(s("cn=CycleBee"))));

    // Both renames refused: the manager is held, and nothing more goes.
    let mut h = holds();
    let mut rec = session(&["6", "7"]);
    let mut page = vec![
        rename("6", "Renamed", "CycleBee", Some("cn=CycleBee")),
        rename("7", "CycleBee", "Renamed", None),
    ];
    let (out, held) = plain(&mut h, &mut rec, &mut page).unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, ExportOutcome::Failed { .. }))
    );
    assert_eq!(rec.batches.len(), 1);
    assert_eq!(held[0].as_ref().map(Held::count), Some(1));
}
