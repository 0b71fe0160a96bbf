//! A directory that goes away during an export (slapd killed): the run
//! stops, the service retries with its backoff (`stopped-server-down`
//! while the server is down), and once slapd is back every entry gets
//! there, nothing twice, without an operator.

use crate::support::*;
use autosync_model::RunStatus;
use autosync_testkit::{Slapd, SlapdBuilder};

/// People in HR: enough that the export takes a while.
const PEOPLE: usize = 6_000;

fn config(s: &Slapd, ou: &str) -> String {
    format!(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "uid", "lastName"]

[[ma]]
name = "hr"
connector = {{ type = "csv", path = "hr.csv" }}
object_types = [{{ name = "person", anchor = "id" }}]
join = [{{ on = [{{ cs = "id", mv = "employeeId" }}] }}]
projection = [{{ mv_type = "person" }}]
import_flows = [
  {{ mv = "employeeId", from = "id" }},
  {{ mv = "uid", from = "uid" }},
  {{ mv = "lastName", from = "last" }},
]
[ma.controller]
triggers = []

[[ma]]
name = "dir"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{ou}"], object_classes = {{ person = "inetOrgPerson" }}, attributes = ["uid", "cn", "sn", "employeeNumber"], timeout_ms = 2000, connect_timeout_ms = 500 }}
object_types = [{{ name = "person", anchor = "entryUUID" }}]
join = [{{ mv_type = "person", on = [{{ cs = "employeeNumber", mv = "employeeId" }}] }}]
export_flows = [
  {{ cs = "uid", from = "uid" }},
  {{ cs = "cn", from = "uid" }},
  {{ cs = "sn", from = "lastName" }},
  {{ cs = "employeeNumber", from = "employeeId" }},
]
provisioning = [{{ mv_type = "person", anchor = "employeeId", dn = '"uid=" + uid + ",{ou}"' }}]
[ma.controller]
triggers = []
retry = {{ backoff = "100ms", max_backoff = "400ms", max_attempts = 1000 }}
"#,
        url = s.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
    )
}

fn hr_csv() -> String {
    let mut out = "id,uid,last\n".to_owned();
    for i in 0..PEOPLE {
        out.push_str(&format!("E{i:05},p{i:05},Last{i}\n"));
    }
    out
}

/// The people entries under `ou` (uid of each), or None while slapd is
/// down.
fn entries(s: &Slapd, ou: &str) -> Option<Vec<String>> {
    let text = s
        .ldapsearch(ou, "(objectClass=inetOrgPerson)", &["uid"])
        .ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("uid: ").map(str::to_owned))
            .collect(),
    )
}

fn dir_runs(svc: &Running, status: RunStatus) -> usize {
    svc.runs(Some("dir"))
        .iter()
        .filter(|r| r.status == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_killed_during_an_export_is_retried_and_converges_once_back() {
    let mut s = SlapdBuilder::new().start().unwrap();
    let ou = s.new_ou("people").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("autosync.toml"), config(&s, &ou)).unwrap();
    std::fs::write(dir.path().join("hr.csv"), hr_csv()).unwrap();

    let svc = Running::start(dir.path());
    svc.queue("hr", "full-import").await.unwrap();
    // The export is under way: some entries are there, not all.
    wait_for("the export to start adding", || {
        entries(&s, &ou).is_some_and(|e| !e.is_empty())
    })
    .await;
    s.kill().unwrap();
    let during = dir_runs(&svc, RunStatus::Success);
    // The export stops; its retries find the server down.
    wait_for("a retry finding the server down", || {
        dir_runs(&svc, RunStatus::StoppedServerDown) >= 2
    })
    .await;
    let stopped = svc
        .runs(Some("dir"))
        .into_iter()
        .find(|r| r.profile == "export" && r.status.is_stopped())
        .expect("the export that was cut");
    assert!(
        matches!(
            stopped.status,
            RunStatus::StoppedConnectivity | RunStatus::StoppedServerDown
        ),
        "{stopped:#?}"
    );
    assert_eq!(dir_runs(&svc, RunStatus::Success), during);

    // Back: the retries go on by themselves and every person gets there.
    s.restart().unwrap();
    wait_for("every person in the directory", || {
        entries(&s, &ou).is_some_and(|e| e.len() == PEOPLE)
    })
    .await;
    svc.wait_quiet("the cycle to end").await;
    let mut uids = entries(&s, &ou).unwrap();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), PEOPLE, "each person once");
    // Nothing left to send or to confirm, and no error left on an object.
    let mut read = svc.store.read().unwrap();
    let counts = read.cs_counts("dir").unwrap();
    assert_eq!(
        (
            counts.pending_export,
            counts.unconfirmed_export,
            counts.errors
        ),
        (0, 0, 0),
        "{counts:?}"
    );
    assert_eq!(counts.total as usize, PEOPLE);
    drop(read);
    svc.shutdown().await;
}
