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
