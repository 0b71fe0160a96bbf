//! An LDAP export whose connection is lost halfway (a relay in front of
//! the testkit's slapd cuts it after a number of the server's answers):
//! what the server answered is recorded as exported (it is done there),
//! the rest stays pending, and the next export sends only the rest (an
//! LDAP review: a stopped export recorded none of the entries it had
//! added, then sent every one of them again as a replay).

use crate::fixture::{World, export_counters};
use autosync_model::RunStatus;
use autosync_store::CsFilter;
use autosync_testkit::{CutProxy, SlapdBuilder};

fn config(url: &str, s: &autosync_testkit::Slapd, base: &str) -> String {
    format!(
        r#"
[metaverse.person]
attributes = ["uid", "name"]

[[ma]]
name = "hr"
connector = {{ type = "csv", path = "hr.csv" }}
object_types = [{{ name = "person", anchor = "uid" }}]
projection = [{{ mv_type = "person" }}]
import_flows = [{{ mv = "uid", from = "uid" }}, {{ mv = "name", from = "name" }}]

[[ma]]
name = "dir"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{base}"], object_classes = {{ person = "inetOrgPerson" }}, attributes = ["uid", "cn", "sn"] }}
object_types = [{{ name = "person", anchor = "entryUUID", dn = "dn" }}]
join = [{{ on = [{{ cs = "uid", mv = "uid" }}] }}]
export_flows = [{{ cs = "uid", from = "uid" }}, {{ cs = "cn", from = "name" }}, {{ cs = "sn", from = "name" }}]
provisioning = [{{ mv_type = "person", anchor = "uid", dn = '"uid=" + escape_dn(uid) + ",{base}"' }}]
"#,
        dn = s.admin_dn(),
        pw = s.admin_password(),
    )
}

#[test]
fn an_export_cut_halfway_should_record_what_the_server_answered() {
    let s = SlapdBuilder::new().shared().unwrap();
    let base = s.new_ou("cut").unwrap();
    let target: std::net::SocketAddr = s.url().trim_start_matches("ldap://").parse().unwrap();
    let proxy = CutProxy::start(target).unwrap();
    let rows: String = (0..40).map(|i| format!("u{i:02},Person {i}\n")).collect();
    let w = World::new(
        &config(&proxy.url(), s, &base),
        &[("hr.csv", &format!("uid,name\n{rows}"))],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    assert_eq!(w.cs_all("dir", CsFilter::PendingExport).len(), 40);

    proxy.cut_after(15);
    let r = w.run("dir", "export");
    assert_eq!(r.status, RunStatus::StoppedConnectivity, "{r:?}");
    let c = export_counters(&r);
    // Those the server answered are recorded, no more: every one of them
    // is in the directory, and no longer pending.
    assert_eq!(c.adds, 15, "{c:?}");
    let there = s
        .ldapsearch(&base, "(objectClass=inetOrgPerson)", &["uid"])
        .unwrap()
        .matches("\nuid: ")
        .count();
    assert!(there >= 15, "{there} entries");
    assert_eq!(w.cs_all("dir", CsFilter::PendingExport).len(), 25);
    assert_eq!(w.cs_all("dir", CsFilter::UnconfirmedExport).len(), 15);

    // The connection back: the rest goes, the recorded ones are not sent
    // again.
    proxy.uncut();
    let r = w.run_ok("dir", "export", RunStatus::Success);
    assert_eq!(export_counters(&r).adds, 25, "{r:?}");
    assert!(w.cs_all("dir", CsFilter::PendingExport).is_empty());
    w.run_ok("dir", "full-import", RunStatus::Success);
    assert!(w.cs_all("dir", CsFilter::UnconfirmedExport).is_empty());
}

/// An export cut right after a rename went: the entry renamed by hand in
/// the directory and put back by the export, whose report's manager the
/// sync had spelled by the hand-made DN (it goes after the rename, as the
/// DN the rename gives). The next export, a retry with no sync before it,
/// sent the hand-made DN, which names no entry (a review: a member left a
/// group of 2,500 and 238 reports got a DN that was gone).
#[test]
fn an_export_cut_after_a_rename_should_not_send_the_dn_it_took_away() {
    let s = SlapdBuilder::new().shared().unwrap();
    let base = s.new_ou("cutrename").unwrap();
    let target: std::net::SocketAddr = s.url().trim_start_matches("ldap://").parse().unwrap();
    let proxy = CutProxy::start(target).unwrap();
    let config = format!(
        r#"
[metaverse.person]
attributes = ["uid", "name", "manager"]
references = {{ manager = "person" }}

[[ma]]
name = "hr"
connector = {{ type = "csv", path = "hr.csv" }}
object_types = [{{ name = "person", anchor = "uid", references = {{ manager_id = "anchor" }} }}]
projection = [{{ mv_type = "person" }}]
import_flows = [{{ mv = "uid", from = "uid" }}, {{ mv = "name", from = "name" }}, {{ mv = "manager", from = "manager_id" }}]

[[ma]]
name = "dir"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{base}"], object_classes = {{ person = "inetOrgPerson" }}, attributes = ["uid", "cn", "sn", "manager"] }}
object_types = [{{ name = "person", anchor = "entryUUID", dn = "dn", references = {{ manager = "dn" }} }}]
join = [{{ on = [{{ cs = "uid", mv = "uid" }}] }}]
export_flows = [{{ cs = "uid", from = "uid" }}, {{ cs = "sn", from = "name" }}, {{ cs = "manager", from = "manager" }}]
provisioning = [{{ mv_type = "person", anchor = "uid", dn = '"cn=" + escape_dn(name) + ",{base}"' }}]
"#,
        url = proxy.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
    );
    let w = World::new(
        &config,
        &[("hr.csv", "uid,name,manager_id\nu00,Boss,\nu01,Ann,u00\n")],
    );
    for (ma, p) in [
        ("hr", "full-import"),
        ("hr", "full-sync"),
        ("dir", "export"),
        ("dir", "full-import"),
        ("dir", "delta-sync"),
    ] {
        w.run(ma, p);
    }
    assert!(w.cs_all("dir", CsFilter::PendingExport).is_empty());
    s.ldapmodify(&format!(
        "dn: cn=Boss,{base}\nchangetype: modrdn\nnewrdn: cn=Hand\ndeleteoldrdn: 1\n"
    ))
    .unwrap();
    w.run("dir", "full-import");
    w.run("dir", "delta-sync");
    // The rename back's answer, then the connection goes.
    proxy.cut_after(1);
    let r = w.run("dir", "export");
    assert_eq!(r.status, RunStatus::StoppedConnectivity, "{r:?}");
    let c = export_counters(&r);
    assert_eq!((c.renames, c.updates), (1, 0), "{c:?}");
    proxy.uncut();
    w.run("dir", "export");
    let ann = s
        .ldapsearch(&base, "(uid=u01)", &["manager"])
        .unwrap()
        .to_lowercase();
    assert!(
        !ann.contains("cn=hand"),
        "the DN the rename took away went: {ann}"
    );
}
