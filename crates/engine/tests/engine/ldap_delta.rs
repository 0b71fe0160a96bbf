//! A delta import that turns out to hold every object
//! (`ImportStream::complete`) is staged like a full import: the objects
//! it did not see are staged for deletion, and its watermark is saved
//! with those deletes. Through the LDAP connector against the testkit's
//! slapd: a content-synchronisation cookie the server no longer takes
//! (the connector then reads everything), and a server without a session
//! log (its refresh names every entry: the present phase).

use crate::fixture::{World, import_counters};
use autosync_model::RunStatus;
use autosync_store::Store;
use autosync_testkit::{Slapd, SlapdBuilder};

fn config(s: &Slapd, base: &str) -> String {
    format!(
        r#"
[metaverse.person]
attributes = ["uid", "title"]

[[ma]]
name = "dir"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{base}"], object_classes = {{ person = "inetOrgPerson" }}, attributes = ["uid", "title"] }}
object_types = [{{ name = "person", anchor = "entryUUID", dn = "dn" }}]
projection = [{{ mv_type = "person" }}]
import_flows = [{{ mv = "uid", from = "uid" }}, {{ mv = "title", from = "title" }}]
"#,
        url = s.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
    )
}

fn people(base: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("dn: uid={n},{base}\nobjectClass: inetOrgPerson\nuid: {n}\ncn: {n}\nsn: {n}\ntitle: {n} v1\n\n")
        })
        .collect()
}

fn retitle(s: &Slapd, base: &str, uid: &str) {
    s.ldapmodify(&format!(
        "dn: uid={uid},{base}\nchangetype: modify\nreplace: title\ntitle: {uid} v2\n"
    ))
    .unwrap();
}

fn watermark(w: &World) -> Option<String> {
    w.store.read().unwrap().watermark("dir").unwrap()
}

/// The objects of the connector space with a delete staged.
fn staged_deletes(w: &World) -> Vec<String> {
    let mut out: Vec<String> = w
        .cs_all("dir", autosync_store::CsFilter::All)
        .into_iter()
        .filter(|o| {
            o.pending_import
                .as_ref()
                .is_some_and(|p| p.kind == autosync_model::ImportKind::Delete)
        })
        .map(|o| o.dn)
        .collect();
    out.sort();
    out
}

#[test]
fn a_refused_cookie_should_make_the_delta_import_stage_the_deletes_of_what_it_did_not_see() {
    let s = SlapdBuilder::new().shared().unwrap();
    let base = s.new_ou("engine").unwrap();
    s.ldapadd(&people(&base, &["ann", "bob", "cid", "dan"]))
        .unwrap();
    let w = World::new(&config(s, &base), &[]);
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!(c.stage_add, 4);
    w.run_ok("dir", "full-sync", RunStatus::Success);

    // The changes only (the server's session log).
    retitle(s, &base, "ann");
    s.delete_tree(&format!("uid=bob,{base}")).unwrap();
    let c = import_counters(&w.run_ok("dir", "delta-import", RunStatus::Success));
    assert_eq!((c.stage_update, c.stage_delete), (1, 1), "{c:#?}");
    w.run_ok("dir", "delta-sync", RunStatus::Success);

    // A cookie the server no longer takes: everything is read, and what
    // is not there any more is staged for deletion.
    let mut saved: serde_json::Value = serde_json::from_str(&watermark(&w).unwrap()).unwrap();
    saved["cookies"] = serde_json::json!([
        "cmlkPTAwMCxjc249MjAwMDAxMDEwMDAwMDAuMDAwMDAwWiMwMDAwMDAjMDAwIzAwMDAwMA=="
    ]);
    let stale = saved.to_string();
    let mut txn = w.store.begin().unwrap();
    txn.set_watermark("dir", Some(&stale)).unwrap();
    txn.commit().unwrap();
    s.delete_tree(&format!("uid=cid,{base}")).unwrap();
    retitle(s, &base, "dan");
    let c = import_counters(&w.run_ok("dir", "delta-import", RunStatus::Success));
    assert_eq!((c.stage_update, c.stage_delete), (1, 1), "{c:#?}");
    assert_eq!(staged_deletes(&w), [format!("uid=cid,{base}")]);
    let fresh = watermark(&w).unwrap();
    assert_ne!(fresh, stale, "saved with the deletes");
    w.run_ok("dir", "delta-sync", RunStatus::Success);
    // Nothing changed since: nothing is staged. (The server may send an
    // entry of the last refresh once more, which RFC 4533 allows: it then
    // stages no change.)
    let r = w.run("dir", "delta-import");
    assert!(
        matches!(r.status, RunStatus::CompletedNoObjects | RunStatus::Success),
        "{r:#?}"
    );
    let c = import_counters(&r);
    assert_eq!(
        (
            c.stage_add,
            c.stage_update,
            c.stage_delete,
            c.stage_delete_add
        ),
        (0, 0, 0, 0),
        "{c:#?}"
    );
}

#[test]
fn a_refresh_naming_every_entry_should_stage_the_deletes_of_the_others() {
    let s = SlapdBuilder::new().sessionlog(None).start().unwrap();
    let base = s.new_ou("present").unwrap();
    s.ldapadd(&people(&base, &["ann", "bob", "cid"])).unwrap();
    let w = World::new(&config(&s, &base), &[]);
    w.run_ok("dir", "full-import", RunStatus::Success);
    w.run_ok("dir", "full-sync", RunStatus::Success);
    retitle(&s, &base, "ann");
    s.delete_tree(&format!("uid=bob,{base}")).unwrap();
    let r = w.run_ok("dir", "delta-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!(
        (c.stage_add, c.stage_update, c.stage_delete),
        (0, 1, 1),
        "{r:#?}"
    );
    assert_eq!(staged_deletes(&w), [format!("uid=bob,{base}")]);
    w.run_ok("dir", "delta-sync", RunStatus::Success);
    assert_eq!(w.mv_all().len(), 2, "bob's metaverse object went with him");

    // An entry the refresh says is there, unchanged, that the connector
    // space lacks: only a full import can read it, and the watermark
    // stays.
    let cid = w
        .cs_all("dir", autosync_store::CsFilter::All)
        .into_iter()
        .find(|o| o.dn.starts_with("uid=cid,"))
        .unwrap();
    let mut txn = w.store.begin().unwrap();
    txn.cs_delete(cid.id).unwrap();
    txn.commit().unwrap();
    let before = watermark(&w);
    retitle(&s, &base, "ann");
    let r = w.run_ok("dir", "delta-import", RunStatus::CompletedImportErrors);
    assert!(format!("{r:?}").contains("watermark stays"), "{r:#?}");
    let errors = autosync_engine::record_errors(w.store.read().unwrap().as_mut(), "dir").unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].error.error_type, "unknown-object");
    assert_eq!(watermark(&w), before);
    w.run_ok("dir", "full-import", RunStatus::Success);
    assert!(w.cs("dir", &cid.anchor).is_some());
}
