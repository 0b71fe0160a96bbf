//! A DN read back in the system's own spelling (OpenLDAP's `\2C` for the
//! `\,` it was sent, `CN=` for `cn=`) names the same entry: the import
//! stages no rename for it, keeps the system's spelling, and asks no sync;
//! another RDN value (its case included) is still a rename.

use crate::fixture::*;
use autosync_model::{ImportKind, RunRecord, RunStatus};
use autosync_store::{CsFilter, Store as _};

/// A source whose display key is a DN column. The file connectors also
/// read that column as an attribute (which a directory's DN is not): it is
/// made write-only, never read, so that the import sees the DN alone, as
/// from LDAP.
const DN_SOURCE: &str = r#"
[metaverse.person]
attributes = ["employeeId", "name"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "employee", anchor = "id", dn = "dn" }]
projection = [{ mv_type = "person" }]
import_flows = [{ mv = "employeeId", from = "id" }, { mv = "name", from = "name" }]

[ma.write_only.dn]
"#;

const SENT: &str = r"cn=Ann Smith\, Jr.,ou=x";

fn with_dn(dn: &str) -> String {
    format!("id,dn,name\n1,\"{dn}\",Ann\n")
}

/// What the run's history keeps of its objects.
fn history(w: &World, run: &RunRecord) -> usize {
    let mut store = w.store.read().unwrap();
    store.run_changes(run.id, 0, 100).unwrap().len()
}

#[test]
fn a_dn_read_back_in_another_spelling_should_stage_no_rename_and_take_that_spelling() {
    let w = World::new(DN_SOURCE, &[("hr.csv", &with_dn(SENT))]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    assert_eq!(w.cs("hr", "1").unwrap().dn, SENT);
    for spelling in [r"cn=Ann Smith\2C Jr.,ou=x", r"CN=Ann Smith\, Jr., OU=x"] {
        w.write("hr.csv", &with_dn(spelling));
        let r = w.run_ok("hr", "full-import", RunStatus::Success);
        let c = import_counters(&r);
        assert_eq!(
            (c.stage_rename, c.stage_no_change, c.staged()),
            (0, 1, 0),
            "{spelling}: {c:?}"
        );
        assert_eq!(history(&w, &r), 0, "{spelling}: nothing in the history");
        let ann = w.cs("hr", "1").unwrap();
        assert!(ann.pending_import.is_none(), "{spelling}: {ann:#?}");
        assert_eq!(ann.dn, spelling, "the system's spelling is kept");
        assert!(w.cs_all("hr", CsFilter::PendingImport).is_empty());
        // Kept: the same file read again compares exactly.
        let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
        assert_eq!((c.stage_no_change, c.staged()), (1, 0), "{spelling}");
    }
    // Another RDN value, or its case, is a rename.
    for renamed in [r"cn=Ann Smythe\, Jr.,ou=x", r"cn=ann smythe\, Jr.,ou=x"] {
        w.write("hr.csv", &with_dn(renamed));
        let r = w.run_ok("hr", "full-import", RunStatus::Success);
        let c = import_counters(&r);
        assert_eq!((c.stage_rename, c.stage_update), (1, 0), "{renamed}: {c:?}");
        let p = w.cs("hr", "1").unwrap().pending_import.unwrap();
        assert_eq!(
            (p.kind, p.dn.as_deref()),
            (ImportKind::Update, Some(renamed))
        );
        w.run_ok("hr", "delta-sync", RunStatus::Success);
        assert_eq!(w.cs("hr", "1").unwrap().dn, renamed);
    }
}

#[test]
fn a_staged_rename_read_back_in_another_spelling_should_stay_as_staged_in_that_spelling() {
    let w = World::new(DN_SOURCE, &[("hr.csv", &with_dn("cn=Ann,ou=x"))]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.write("hr.csv", &with_dn(SENT));
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!(c.stage_rename, 1);
    let spelling = r"cn=Ann Smith\2C Jr.,ou=x";
    w.write("hr.csv", &with_dn(spelling));
    let c = import_counters(&w.run_ok("hr", "full-import", RunStatus::Success));
    assert_eq!((c.stage_no_change, c.staged()), (1, 0), "{c:?}");
    let p = w.cs("hr", "1").unwrap().pending_import.unwrap();
    assert_eq!(p.dn.as_deref(), Some(spelling));
}

/// HR gives the name; the directory's DN is made of it, escaped.
const PROVISIONED: &str = r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "lastName"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "firstName", from = "first" },
  { mv = "lastName", from = "last" },
]

[[ma]]
name = "dir"
connector = { type = "csv", path = "dir.csv" }
object_types = [{ name = "user", anchor = "uid", dn = "dn" }]
export_flows = [{ cs = "name", from = "firstName" }]
provisioning = [{ mv_type = "person", object_type = "user", anchor = '"u" + employeeId', dn = '"cn=" + escape_dn(firstName + ", " + lastName) + ",ou=x"' }]
"#;

/// The directory answers with its own spelling of what it was sent.
fn respelt_by_the_system(w: &World) {
    let text = w.read("dir.csv");
    assert!(text.contains(r"\, "), "{text}");
    w.write("dir.csv", &text.replace(r"\, ", r"\2C "));
}

#[test]
fn a_confirming_import_of_an_export_in_the_systems_spelling_should_stage_no_rename() {
    let w = World::new(
        PROVISIONED,
        &[("hr.csv", "id,first,last\n1,Ann Smith,Jr.\n")],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.run_ok("dir", "export", RunStatus::Success);
    assert_eq!(w.cs("dir", "u1").unwrap().dn, SENT);
    respelt_by_the_system(&w);
    let r = w.run_ok("dir", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!((c.export_confirmed, c.staged()), (1, 0), "the add: {c:?}");
    assert_eq!(history(&w, &r), 0);
    let user = w.cs("dir", "u1").unwrap();
    assert!(user.pending_import.is_none(), "{user:#?}");
    assert_eq!(user.dn, r"cn=Ann Smith\2C Jr.,ou=x");
    // The same after a rename the export made.
    w.write("hr.csv", "id,first,last\n1,Ann Smith,Sr.\n");
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "delta-sync", RunStatus::Success);
    w.run_ok("dir", "export", RunStatus::Success);
    respelt_by_the_system(&w);
    let r = w.run_ok("dir", "full-import", RunStatus::Success);
    let c = import_counters(&r);
    assert_eq!(
        (c.export_confirmed, c.staged()),
        (1, 0),
        "the rename: {c:?}"
    );
    assert_eq!(history(&w, &r), 0);
    let user = w.cs("dir", "u1").unwrap();
    assert!(user.pending_import.is_none(), "{user:#?}");
    assert_eq!(user.dn, r"cn=Ann Smith\2C Sr.,ou=x");
    let c = import_counters(&w.run_ok("dir", "full-import", RunStatus::Success));
    assert_eq!((c.stage_no_change, c.staged()), (1, 0));
}
