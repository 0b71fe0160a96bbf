//! Rules extensions as scripts, one per thing MIM lets a rules extension
//! decide: connector filter, projection, join (the value to search, and
//! resolution among candidates), provisioning (one object, several, none,
//! or "keep"), deprovisioning action, metaverse deletion; read-only
//! metaverse lookups that see what the same sync wrote; a script that throws
//! or loops is an error of its object only.

use crate::fixture::*;
use autosync_model::{Connection, ExportKind, RunStatus};
use autosync_store::CsFilter;

/// HR (CSV source) projecting people; a directory (CSV target) holding
/// users and mailboxes. `# hr`, `# dir` and `# mv` mark where a test adds
/// its rules.
const BASE: &str = r#"
[metaverse.person]
attributes = ["employeeId", "first", "last", "dept", "accountName", "roles"]
# mv

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "first", from = "first" },
  { mv = "last", from = "last" },
  { mv = "dept", from = "dept" },
  { mv = "roles", expr = 'split(roles, ";")' },
]
staging_thresholds = { deletes = "off" }
# hr

[[ma]]
name = "dir"
connector = { type = "csv", path = "dir.csv", object_type_column = "type" }
object_types = [{ name = "user", anchor = "uid", dn = "login" }, { name = "mailbox", anchor = "uid" }]
export_flows = [
  { object_type = "user", cs = "name", expr = 'first + " " + last' },
  { object_type = "user", cs = "employee", from = "employeeId" },
  { object_type = "mailbox", cs = "employee", from = "employeeId" },
]
deprovisioning = "delete"
export_deletion_threshold = "off"
staging_thresholds = { deletes = "off" }
# dir
"#;

const HR: &str = "id,first,last,dept,roles\n\
    1,Ada,Lovelace,R&D,admin;dev\n\
    2,Alan,Turing,R&D,dev\n\
    3,Grace,Hopper,Navy,\n";

const DIR: &str = "uid,type,login,name,employee\n";

fn config(mv: &str, hr: &str, dir: &str) -> String {
    BASE.replace("# mv", mv)
        .replace("# hr", hr)
        .replace("# dir", dir)
}

/// A world for `config` with HR's file; HR imported.
fn world(config: &str, hr: &str) -> World {
    let w = World::new(config, &[("hr.csv", hr), ("dir.csv", DIR)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w
}

/// HR's new file imported and synchronised (delta).
fn hr_round(w: &World, hr: &str) -> autosync_model::SyncCounters {
    w.write("hr.csv", hr);
    w.run("hr", "full-import");
    sync_counters(&w.run("hr", "delta-sync"))
}

/// The directory exported and its export confirmed.
fn export_dir(w: &World) {
    w.run_ok("dir", "export", RunStatus::Success);
    w.run_ok("dir", "full-import", RunStatus::Success);
    w.run("dir", "delta-sync");
    assert!(w.cs_all("dir", CsFilter::PendingExport).is_empty());
}

fn anchors(w: &World, ma: &str) -> Vec<String> {
    let mut a: Vec<String> = w
        .cs_all(ma, CsFilter::All)
        .into_iter()
        .map(|o| o.anchor)
        .collect();
    a.sort();
    a
}

#[test]
fn a_filter_script_should_keep_matching_objects_as_filtered_disconnectors() {
    let hr = r#"filters = [{ script = 'attrs.dept == "Navy" || attr("first") == "Alan"' }]"#;
    let w = world(&config("", hr, ""), HR);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!((s.filtered_disconnectors, s.projections), (2, 1));
    assert_eq!(w.mv_all().len(), 1);
    assert!(w.mv_of("hr", "1").is_some());
    assert_eq!(
        w.cs("hr", "3").unwrap().connection,
        Connection::Disconnector
    );
}

#[test]
fn a_projection_script_should_decide_and_may_name_the_metaverse_type() {
    let config = r#"
[metaverse.person]
attributes = ["employeeId"]
[metaverse.contractor]
attributes = ["employeeId"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
projection = [{ script = '''
  switch attrs.kind { "emp" => "person", "ext" => "contractor", _ => false }
''' }]
import_flows = [
  { mv_type = "person", mv = "employeeId", from = "id" },
  { mv_type = "contractor", mv = "employeeId", from = "id" },
]
"#;
    let w = world(config, "id,kind\n1,emp\n2,ext\n3,intern\n");
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.projections, 2);
    assert_eq!(w.mv_of("hr", "1").unwrap().object_type, "person");
    assert_eq!(w.mv_of("hr", "2").unwrap().object_type, "contractor");
    assert_eq!(w.mv_text("hr", "2", "employeeId").as_deref(), Some("2"));
    assert!(w.mv_of("hr", "3").is_none());
}

/// A badge system that joins people by last name; several people share
/// one, so a script resolves the join.
const BADGE: &str = r#"
[[ma]]
name = "badge"
connector = { type = "csv", path = "badge.csv" }
object_types = [{ name = "badge", anchor = "badge" }]
join = [
  { on = [{ cs = "last", mv = "last" }], resolve = '''
      let same = candidates.filter(|m| m.attrs.dept == attrs.dept);
      if same.len() == 1 { same[0].id }
  ''' },
  { on = [{ script = 'if attrs.ref != () { attrs.ref.sub_string(1) }', mv = "employeeId" }] },
]
"#;

#[test]
fn a_join_resolution_script_should_pick_one_of_several_candidates_or_none() {
    let hr = "id,first,last,dept,roles\n1,Ada,Lovelace,R&D,\n2,Ann,Lovelace,Navy,\n3,Grace,Hopper,Navy,\n";
    let config = format!("{}{BADGE}", config("", "", ""));
    let w = world(&config, hr);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.write(
        "badge.csv",
        "badge,last,dept,ref\nB1,Lovelace,Navy,\nB2,Lovelace,Sales,\nB3,Hopper,Navy,\nB4,Nobody,Sales,E1\n",
    );
    w.run_ok("badge", "full-import", RunStatus::Success);
    let r = w.run("badge", "full-sync");
    let errors: Vec<_> = w
        .cs_all("badge", CsFilter::All)
        .into_iter()
        .filter_map(|o| o.error)
        .collect();
    assert_eq!(r.status, RunStatus::Success, "{errors:?}");
    let s = sync_counters(&r);
    // B1: two Lovelaces, the one in Navy; B2: none in Sales, and the next
    // rule has no `ref` to search by; B3: one candidate, still resolved;
    // B4: the next rule's script computes the employee id to search.
    assert_eq!(s.joins, 3);
    let joined = |badge: &str| w.mv_of("badge", badge).map(|m| m.id);
    assert_eq!(joined("B1"), w.mv_of("hr", "2").map(|m| m.id));
    assert_eq!(joined("B2"), None);
    assert_eq!(joined("B3"), w.mv_of("hr", "3").map(|m| m.id));
    assert_eq!(joined("B4"), w.mv_of("hr", "1").map(|m| m.id));
}

#[test]
fn a_join_resolution_script_should_read_the_connectors_of_the_candidates() {
    let hr = "id,first,last,dept,roles\n1,Ada,Lovelace,R&D,\n2,Ann,Lovelace,Navy,\n";
    let badge = BADGE.replace(
        "candidates.filter(|m| m.attrs.dept == attrs.dept)",
        r#"candidates.filter(|m| mv_connectors(m.id).some(|c| c.ma == "hr" && c.anchor == attrs.emp))"#,
    );
    let w = world(&format!("{}{badge}", config("", "", "")), hr);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.write(
        "badge.csv",
        "badge,last,emp,ref\nB1,Lovelace,2,\nB2,Lovelace,7,\n",
    );
    w.run_ok("badge", "full-import", RunStatus::Success);
    w.run_ok("badge", "full-sync", RunStatus::Success);
    assert_eq!(
        w.mv_of("badge", "B1").map(|m| m.id),
        w.mv_of("hr", "2").map(|m| m.id)
    );
    assert!(w.mv_of("badge", "B2").is_none());
}

#[test]
fn a_join_resolution_script_choosing_a_stranger_should_be_an_error_of_that_object() {
    let badge = BADGE.replace("if same.len() == 1 { same[0].id }", "12345");
    let w = world(&format!("{}{badge}", config("", "", "")), HR);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w.write("badge.csv", "badge,last,dept,ref\nB1,Lovelace,R&D,\n");
    w.run_ok("badge", "full-import", RunStatus::Success);
    w.run_ok("badge", "full-sync", RunStatus::CompletedSyncErrors);
    let error = w.cs("badge", "B1").unwrap().error.unwrap();
    assert_eq!(error.error_type, "expression-failed");
    assert!(error.detail.contains("not a candidate"), "{}", error.detail);
}

#[test]
fn a_provisioning_script_should_give_anchor_and_dn_and_keep_or_deprovision() {
    let dir = r#"provisioning = [{ object_type = "user", script = '''
  if attrs.dept == () { return; }            // unknown: keep what is there
  if attrs.dept == "Navy" { return false; }  // out of scope
  #{ anchor: "u" + attrs.employeeId, dn: attrs.first + "." + attrs.last }
''' }]"#;
    let w = world(&config("", "", dir), HR);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.outbound["dir"].provisioned_adds, 2);
    assert_eq!(anchors(&w, "dir"), ["u1", "u2"]);
    let u1 = w.cs("dir", "u1").unwrap();
    assert_eq!(
        (u1.dn.as_str(), u1.object_type.as_str()),
        ("Ada.Lovelace", "user")
    );
    export_dir(&w);
    // An empty department: the script returns nothing, the account stays.
    let s = hr_round(&w, &HR.replace("1,Ada,Lovelace,R&D", "1,Ada,Lovelace,"));
    assert!(
        s.outbound
            .get("dir")
            .is_none_or(|c| c.provisioned_disconnects == 0)
    );
    assert!(w.cs("dir", "u1").unwrap().pending_export.is_none());
    // Out of scope: the account provisioning created is deleted.
    let s = hr_round(&w, &HR.replace("1,Ada,Lovelace,R&D", "1,Ada,Lovelace,Navy"));
    assert_eq!(s.outbound["dir"].provisioned_disconnects, 1);
    let p = w.cs("dir", "u1").unwrap().pending_export.unwrap();
    assert_eq!(p.kind, ExportKind::Delete);
    // A new DN is a rename.
    let s = hr_round(&w, &HR.replace("2,Alan,Turing", "2,Alan,Turing-Smith"));
    assert_eq!(s.outbound["dir"].provisioned_renames, 1);
    let p = w.cs("dir", "u2").unwrap().pending_export.unwrap();
    assert_eq!(p.new_dn.as_deref(), Some("Alan.Turing-Smith"));
}

#[test]
fn a_provisioning_script_should_provision_several_objects_for_one_ma() {
    // A user per person and a mailbox per role; a role removed removes its
    // mailbox only.
    let dir = r#"provisioning = [{ object_type = "user", script = '''
  let objects = [#{ anchor: "u" + attrs.employeeId }];
  for role in attrs.roles ?? [] {
    objects.push(#{ object_type: "mailbox", anchor: "m" + attrs.employeeId + "-" + role });
  }
  objects
''' }]"#;
    let w = world(&config("", "", dir), HR);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.outbound["dir"].provisioned_adds, 6);
    assert_eq!(
        anchors(&w, "dir"),
        ["m1-admin", "m1-dev", "m2-dev", "u1", "u2", "u3"]
    );
    let mailbox = w.cs("dir", "m1-dev").unwrap();
    assert_eq!(mailbox.object_type, "mailbox");
    assert_eq!(mailbox.connection.mv_id(), w.mv_of("hr", "1").map(|m| m.id));
    export_dir(&w);
    assert_eq!(w.read("dir.csv").matches("mailbox").count(), 3);
    // Ada loses `admin`, Grace gains it; a full sync changes nothing else.
    let hr = HR
        .replace("admin;dev", "dev")
        .replace("Hopper,Navy,", "Hopper,Navy,admin");
    let s = hr_round(&w, &hr);
    assert_eq!(s.outbound["dir"].provisioned_adds, 1);
    assert_eq!(s.outbound["dir"].provisioned_disconnects, 1);
    let deletes: Vec<String> = w
        .cs_all("dir", CsFilter::PendingExport)
        .into_iter()
        .filter(|o| o.pending_export.as_ref().unwrap().kind == ExportKind::Delete)
        .map(|o| o.anchor)
        .collect();
    assert_eq!(deletes, ["m1-admin"]);
    assert!(w.cs("dir", "m3-admin").is_some());
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    let dir = &s.outbound["dir"];
    assert_eq!((dir.provisioned_adds, dir.provisioned_disconnects), (0, 0));
}

#[test]
fn a_deprovisioning_script_should_choose_the_action_per_connector() {
    let dir = r#"provisioning = [{ object_type = "user", condition = 'dept != "Navy"', anchor = '"u" + employeeId' }]
deprovisioning_script = '''
  if attrs.name == "Ada Lovelace" { "explicit-disconnector" }
  else if reason == "mv-deleted" { "delete" }
  else if cs.provisioned { "disconnect" }
'''"#;
    let hr = HR.replace("Hopper,Navy", "Hopper,R&D");
    let w = world(&config("", "", dir), &hr);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    export_dir(&w);
    // Ada and Grace move to Navy (out of scope); Alan leaves HR (his
    // metaverse object is deleted).
    let hr = "id,first,last,dept,roles\n1,Ada,Lovelace,Navy,\n3,Grace,Hopper,Navy,\n";
    hr_round(&w, hr);
    let u1 = w.cs("dir", "u1").unwrap();
    assert_eq!(u1.connection, Connection::ExplicitDisconnector);
    assert!(u1.pending_export.is_none());
    let u2 = w.cs("dir", "u2").unwrap();
    assert_eq!(u2.pending_export.unwrap().kind, ExportKind::Delete);
    let u3 = w.cs("dir", "u3").unwrap();
    assert_eq!(u3.connection, Connection::Disconnector);
    assert!(u3.pending_export.is_none());
}

#[test]
fn a_deletion_script_should_decide_whether_the_metaverse_object_goes() {
    let mv = r#"deletion = { rule = "script", script = '''
  leaving.ma == "hr" && attrs.dept != "Navy" && connectors.len() == 0 && id > 0
''' }"#;
    let w = world(&config(mv, "", ""), HR);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let s = hr_round(&w, "id,first,last,dept,roles\n2,Alan,Turing,R&D,\n");
    assert_eq!(s.deleted, 1);
    // Grace's object stays (without what HR gave it); Ada's went.
    assert_eq!(w.mv_all().len(), 2);
    assert!(w.mv_of("hr", "2").is_some());
}

#[test]
fn a_script_that_throws_or_loops_should_be_an_error_of_that_object_only() {
    let flows = r#"import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "accountName", script = '''
      switch attr("first") { "Alan" => throw "no Alans here", "Grace" => loop {}, _ => attr("first") }
  ''' },
]"#;
    let config = with_hr_flows(&config("", "", ""), flows);
    let w = world(&config, HR);
    let r = w.run_ok("hr", "full-sync", RunStatus::CompletedSyncErrors);
    assert_eq!(sync_counters(&r).failures, 2);
    assert_eq!(w.mv_text("hr", "1", "accountName").as_deref(), Some("Ada"));
    let alan = w.cs("hr", "2").unwrap().error.unwrap();
    assert_eq!(alan.error_type, "expression-failed");
    assert!(alan.detail.contains("no Alans here"), "{}", alan.detail);
    let grace = w.cs("hr", "3").unwrap().error.unwrap();
    // The sandbox stops the loop: by its time budget or its operation
    // limit, whichever the machine reaches first.
    assert!(
        grace.detail.contains("time budget") || grace.detail.contains("operation limit"),
        "{}",
        grace.detail
    );
}

/// `config` with HR's import flows replaced by `flows`.
fn with_hr_flows(config: &str, flows: &str) -> String {
    let start = config.find("import_flows = [").unwrap();
    let end = start + config[start..].find("]\n").unwrap() + 2;
    format!("{}{flows}\n{}", &config[..start], &config[end..])
}

#[test]
fn a_script_failing_for_every_object_should_stop_the_step() {
    let dir = r#"provisioning = [{ object_type = "user", script = 'throw "broken"' }]"#;
    let mut hr = String::from("id,first,last,dept,roles\n");
    for i in 1..=120 {
        hr.push_str(&format!("{i},P{i},L{i},R&D,\n"));
    }
    let w = world(&config("", "", dir), &hr);
    let r = w.run_ok("hr", "full-sync", RunStatus::StoppedExtensionDllException);
    let message = r.steps[0].message.clone().unwrap();
    assert!(message.contains("broken"), "{message}");
}

/// People's account names: first initial and last name, made unique with a
/// number by looking the metaverse up, kept once given.
const UNIQUE: &str = r#"import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "first", from = "first" },
  { mv = "last", from = "last" },
  { mv = "accountName", script = '''
      if mv.accountName != () { return mv.accountName; }
      let base = (attrs.first.sub_string(0, 1) + attrs.last).to_lower();
      let name = base;
      let n = 1;
      while mv_find("person", "accountName", name).len() > 0 { n += 1; name = base + n; }
      name
  ''' },
]"#;

fn unique_config() -> String {
    with_hr_flows(&config("", "", ""), UNIQUE)
}

#[test]
fn a_lookup_should_see_people_written_earlier_in_the_same_sync_and_names_should_stay() {
    let hr = "id,first,last,dept,roles\n1,John,Smith,,\n2,Jane,Smith,,\n3,Jim,Smith,,\n4,Ada,Lovelace,,\n";
    let w = world(&unique_config(), hr);
    // One full sync, one batch: each lookup sees the names given before.
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let name = |id: &str| w.mv_text("hr", id, "accountName").unwrap_or_default();
    assert_eq!(
        [name("1"), name("2"), name("3"), name("4")],
        ["jsmith", "jsmith2", "jsmith3", "alovelace"]
    );
    // A second full sync renames nobody.
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.connectors_with_flow_updates, 0);
    assert_eq!(name("2"), "jsmith2");
    // John leaves and Joe Smith arrives: Jane keeps her name, Joe gets the
    // free one.
    hr_round(
        &w,
        "id,first,last,dept,roles\n2,Jane,Smith,,\n3,Jim,Smith,,\n4,Ada,Lovelace,,\n5,Joe,Smith,,\n",
    );
    assert_eq!(
        [name("2"), name("3"), name("5")],
        ["jsmith2", "jsmith3", "jsmith"]
    );
}

#[test]
fn lookups_should_see_the_names_given_in_earlier_batches_and_bulk_parts() {
    let mut hr = String::from("id,first,last,dept,roles\n");
    for i in 1..=50 {
        hr.push_str(&format!("{i},John,Smith,,\n"));
    }
    let w = world(&unique_config(), &hr);
    // Batches of 7: five per bulk transaction, committed part by part.
    let mut opts = autosync_engine::RunOptions::manual("test");
    opts.sync_batch = std::num::NonZeroUsize::new(7);
    let r = w.engine.run_profile("hr", "full-sync", opts).unwrap();
    assert_eq!(r.status, RunStatus::Success);
    let mut names: Vec<String> = w
        .mv_all()
        .iter()
        .filter_map(|m| m.get("accountName").map(|v| v.to_text()))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 50, "{names:?}");
    assert!(names.contains(&"jsmith".to_owned()) && names.contains(&"jsmith50".to_owned()));
}

#[test]
fn the_expressions_pages_example_of_every_hook_should_load_and_compile() {
    let page = include_str!("../../../../docs/src/reference/expressions.md");
    let section = &page[page.find("## Rules extensions").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + section[start..].find("```").unwrap();
    let w = World::new(&section[start..end], &[]);
    assert_eq!(w.engine.system().mas.len(), 3);
}
