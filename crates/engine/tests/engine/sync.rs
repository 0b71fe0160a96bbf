//! Synchronisation rules: join, projection, filters, precedence, the
//! metaverse deletion rule, deprovisioning of other connectors and constant
//! flows.

use crate::fixture::*;
use autosync_model::{Connection, RunStatus};

/// HR projects people; a badge system joins them and contributes phone and
/// department. `{badge_extra}` goes into the badge MA's table,
/// `{mv_extra}` into the metaverse type's.
fn badge_config(join: &str, badge_extra: &str, mv_extra: &str) -> String {
    format!(
        r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "lastName", "department", "phone"]
{mv_extra}

[[ma]]
name = "hr"
connector = {{ type = "csv", path = "hr.csv" }}
object_types = [{{ name = "person", anchor = "id" }}]
join = [{{ on = [{{ cs = "id", mv = "employeeId" }}] }}]
projection = [{{ mv_type = "person" }}]
import_flows = [
  {{ mv = "employeeId", from = "id" }},
  {{ mv = "firstName", from = "first" }},
  {{ mv = "lastName", from = "last" }},
  {{ mv = "department", from = "dept" }},
  {{ mv = "phone", from = "phone" }},
]

[[ma]]
name = "badge"
connector = {{ type = "csv", path = "badge.csv" }}
object_types = [{{ name = "badge", anchor = "badge" }}]
join = [{join}]
import_flows = [
  {{ mv = "phone", from = "phone" }},
  {{ mv = "department", from = "dept" }},
]
{badge_extra}
"#
    )
}

const BY_ID: &str = r#"{ on = [{ cs = "emp", mv = "employeeId" }] }"#;
const HR: &str =
    "id,first,last,dept,phone\n1,Ada,Lovelace,R&D,999\n2,Alan,Turing,R&D,\n3,Grace,Hopper,Navy,\n";

fn world(config: &str, badge_csv: &str) -> World {
    let w = World::new(config, &[("hr.csv", HR), ("badge.csv", badge_csv)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w
}

fn import_and_sync(w: &World, ma: &str) -> autosync_model::SyncCounters {
    w.run(ma, "full-import");
    sync_counters(&w.run(ma, "delta-sync"))
}

#[test]
fn a_join_rule_should_connect_a_disconnector_to_the_one_matching_person() {
    let w = world(
        &badge_config(BY_ID, "", ""),
        "badge,emp,phone,dept\nb1,1,,\n",
    );
    let s = import_and_sync(&w, "badge");
    assert_eq!((s.joins, s.projections), (1, 0));
    let b1 = w.cs("badge", "b1").unwrap();
    assert_eq!(
        b1.connection.mv_id(),
        w.cs("hr", "1").unwrap().connection.mv_id()
    );
    assert_eq!(w.mv_all().len(), 3);
}

#[test]
fn a_join_rule_with_several_conditions_should_join_only_when_all_of_them_match() {
    let join = r#"{ on = [{ cs = "emp", mv = "employeeId" }, { cs = "last", mv = "lastName" }] }"#;
    let w = world(
        &badge_config(join, "", ""),
        "badge,emp,last,phone,dept\nb1,1,Lovelace,,\nb2,2,Wrong,,\n",
    );
    let s = import_and_sync(&w, "badge");
    assert_eq!(s.joins, 1);
    assert!(w.cs("badge", "b1").unwrap().connection.mv_id().is_some());
    assert_eq!(
        w.cs("badge", "b2").unwrap().connection,
        Connection::Disconnector
    );
}

#[test]
fn an_ambiguous_join_should_be_a_per_object_error_and_the_rest_should_carry_on() {
    let join = r#"{ on = [{ cs = "dept", mv = "department" }] }"#;
    // Two people are in R&D, one in the Navy.
    let config = badge_config(join, "", "");
    let config = config.replace(
        r#"  { mv = "department", from = "dept" },
]
"#,
        "]\n",
    );
    let w = world(&config, "badge,dept,phone\nb1,R&D,\nb2,Navy,\n");
    w.run_ok("badge", "full-import", RunStatus::Success);
    let r = w.run_ok("badge", "delta-sync", RunStatus::CompletedSyncErrors);
    let s = sync_counters(&r);
    assert_eq!((s.joins, s.failures), (1, 1));
    let b1 = w.cs("badge", "b1").unwrap();
    assert_eq!(b1.error.as_ref().unwrap().error_type, "ambiguous-join");
    assert!(b1.pending_import.is_some(), "kept for the next sync");
    assert!(w.cs("badge", "b2").unwrap().connection.mv_id().is_some());
}

#[test]
fn a_projection_rule_with_a_condition_should_project_only_matching_objects() {
    let config = badge_config(BY_ID, "", "").replace(
        r#"projection = [{ mv_type = "person" }]"#,
        r#"projection = [{ mv_type = "person", condition = 'dept == "R&D"' }]"#,
    );
    let w = World::new(&config, &[("hr.csv", HR), ("badge.csv", "")]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.projections, 2);
    assert_eq!(
        w.cs("hr", "3").unwrap().connection,
        Connection::Disconnector
    );
    assert!(w.cs("hr", "3").unwrap().pending_import.is_none());
}

#[test]
fn a_filter_should_keep_matching_objects_as_filtered_disconnectors_and_disconnect_connectors() {
    let w = world(&badge_config(BY_ID, "", ""), "");
    let filtered = badge_config(BY_ID, "", "").replace(
        r#"projection = [{ mv_type = "person" }]"#,
        "projection = [{ mv_type = \"person\" }]\nfilters = [{ condition = 'dept == \"Navy\"' }]",
    );
    let mut w = w;
    w.reconfigure(&filtered);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(
        (s.filtered_disconnectors, s.disconnections, s.deleted),
        (1, 1, 1)
    );
    assert_eq!(
        w.cs("hr", "3").unwrap().connection,
        Connection::Disconnector
    );
    assert_eq!(w.mv_all().len(), 2);
}

#[test]
fn ranked_precedence_should_let_the_higher_ranked_ma_win_and_fall_back_when_its_value_goes() {
    let w = world(
        &badge_config(BY_ID, "", r#"precedence = { phone = ["badge", "hr"] }"#),
        "badge,emp,phone,dept\nb1,1,111,\n",
    );
    assert_eq!(w.mv_text("hr", "1", "phone").as_deref(), Some("999"));
    import_and_sync(&w, "badge");
    assert_eq!(w.mv_text("hr", "1", "phone").as_deref(), Some("111"));
    assert_eq!(
        w.mv_of("hr", "1").unwrap().attributes["phone"].contributor,
        "badge"
    );
    // A lower-ranked change never overwrites the higher-ranked value.
    w.write("hr.csv", &HR.replace("999", "998"));
    import_and_sync(&w, "hr");
    assert_eq!(w.mv_text("hr", "1", "phone").as_deref(), Some("111"));
    // The badge's value goes: HR's current value comes back.
    w.write("badge.csv", "badge,emp,phone,dept\nb1,1,,\n");
    let s = import_and_sync(&w, "badge");
    assert_eq!(s.connectors_with_flow_updates, 1);
    assert_eq!(w.mv_text("hr", "1", "phone").as_deref(), Some("998"));
    assert_eq!(
        w.mv_of("hr", "1").unwrap().attributes["phone"].contributor,
        "hr"
    );
}

#[test]
fn equal_precedence_should_let_the_last_writer_win_until_a_full_sync_reapplies_the_flows() {
    let w = world(
        &badge_config(BY_ID, "", r#"precedence = { department = "equal" }"#),
        "badge,emp,phone,dept\nb1,1,,Badges\n",
    );
    import_and_sync(&w, "badge");
    assert_eq!(
        w.mv_text("hr", "1", "department").as_deref(),
        Some("Badges")
    );
    w.write(
        "hr.csv",
        &HR.replace("1,Ada,Lovelace,R&D", "1,Ada,Lovelace,Math"),
    );
    import_and_sync(&w, "hr");
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("Math"));
    // A delta sync of badge with nothing new keeps the last writer's value.
    import_and_sync(&w, "badge");
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("Math"));
    // A full sync re-applies every rule: badge's flow writes again (MIM's
    // equal precedence: the last MA synchronised wins).
    w.run_ok("badge", "full-sync", RunStatus::Success);
    assert_eq!(
        w.mv_text("hr", "1", "department").as_deref(),
        Some("Badges")
    );
    assert_eq!(
        w.mv_of("hr", "1").unwrap().attributes["department"].contributor,
        "badge"
    );
}

/// Equal precedence, the last writer's object goes (the badge is deleted,
/// the person stays): the other source's value takes over in that sync,
/// rather than leaving the attribute empty (and exporting it empty) until
/// a full sync. The last writer emptying its value keeps it empty.
#[test]
fn equal_precedence_should_fall_back_to_another_sources_value_when_the_last_writer_goes() {
    let w = world(
        &badge_config(BY_ID, "", r#"precedence = { department = "equal" }"#),
        "badge,emp,phone,dept\nb1,1,,Badges\nb3,3,,Docks\n",
    );
    import_and_sync(&w, "badge");
    assert_eq!(
        w.mv_text("hr", "1", "department").as_deref(),
        Some("Badges")
    );
    // Badge 3's department emptied by its writer: empty it is.
    w.write("badge.csv", "badge,emp,phone,dept\nb1,1,,Badges\nb3,3,,\n");
    import_and_sync(&w, "badge");
    assert_eq!(w.mv_text("hr", "3", "department"), None);
    // Badge 1 deleted: HR's value comes back.
    w.write("badge.csv", "badge,emp,phone,dept\nb3,3,,\n");
    let s = import_and_sync(&w, "badge");
    assert_eq!(s.disconnections, 1, "{s:?}");
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("R&D"));
    assert_eq!(
        w.mv_of("hr", "1").unwrap().attributes["department"].contributor,
        "hr"
    );
}

#[test]
fn a_full_sync_should_recall_a_value_whose_flow_was_removed_and_let_the_next_source_take_over() {
    let config = badge_config(BY_ID, "", "");
    let mut w = world(&config, "badge,emp,phone,dept\nb1,1,111,Badges\n");
    import_and_sync(&w, "badge");
    // hr ranks first (file order): its department wins.
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("R&D"));
    // hr's department flow is removed from the configuration.
    w.reconfigure(&config.replacen("  { mv = \"department\", from = \"dept\" },\n", "", 1));
    // A delta sync re-applies nothing.
    w.run_ok("hr", "delta-sync", RunStatus::CompletedNoObjects);
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("R&D"));
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert!(s.connectors_with_flow_updates >= 1, "{s:?}");
    assert_eq!(
        w.mv_text("hr", "1", "department").as_deref(),
        Some("Badges")
    );
    assert_eq!(
        w.mv_of("hr", "1").unwrap().attributes["department"].contributor,
        "badge"
    );
    // Nobody else has a department any more.
    assert_eq!(w.mv_text("hr", "2", "department"), None);
}

#[test]
fn a_full_sync_should_recall_what_a_removed_ma_contributed() {
    let config = badge_config(BY_ID, "", r#"precedence = { phone = ["badge", "hr"] }"#);
    let mut w = world(&config, "badge,emp,phone,dept\nb1,1,111,\n");
    import_and_sync(&w, "badge");
    assert_eq!(w.mv_text("hr", "1", "phone").as_deref(), Some("111"));
    // The badge system is retired: its MA leaves the configuration, and
    // nothing else gives phones.
    let without_badge = config[..config.find("[[ma]]\nname = \"badge\"").unwrap()]
        .replace(r#"precedence = { phone = ["badge", "hr"] }"#, "")
        .replace("  { mv = \"phone\", from = \"phone\" },\n", "");
    w.reconfigure(&without_badge);
    w.run_ok("hr", "delta-sync", RunStatus::CompletedNoObjects);
    assert_eq!(w.mv_text("hr", "1", "phone").as_deref(), Some("111"));
    w.run_ok("hr", "full-sync", RunStatus::Success);
    assert_eq!(w.mv_text("hr", "1", "phone"), None);
    assert_eq!(w.mv_text("hr", "1", "firstName").as_deref(), Some("Ada"));
}

#[test]
fn the_default_deletion_rule_should_delete_a_person_only_with_its_last_authoritative_connector() {
    let w = world(
        &badge_config(BY_ID, "", ""),
        "badge,emp,phone,dept\nb1,1,,\n",
    );
    import_and_sync(&w, "badge");
    w.write("badge.csv", "badge,emp,phone,dept\n");
    let s = import_and_sync(&w, "badge");
    assert_eq!((s.disconnections, s.deleted), (1, 0));
    assert!(w.cs("badge", "b1").is_none());
    assert_eq!(w.mv_all().len(), 3);
    w.write(
        "hr.csv",
        "id,first,last,dept,phone\n2,Alan,Turing,R&D,\n3,Grace,Hopper,Navy,\n",
    );
    let s = import_and_sync(&w, "hr");
    assert_eq!((s.disconnections, s.deleted), (1, 1));
    assert_eq!(w.mv_all().len(), 2);
}

#[test]
fn the_last_connector_deletion_rule_should_keep_a_person_while_any_connector_remains() {
    let w = world(
        &badge_config(BY_ID, "", r#"deletion = { rule = "last-connector" }"#),
        "badge,emp,phone,dept\nb1,1,,\n",
    );
    import_and_sync(&w, "badge");
    w.write(
        "hr.csv",
        "id,first,last,dept,phone\n2,Alan,Turing,R&D,\n3,Grace,Hopper,Navy,\n",
    );
    let s = import_and_sync(&w, "hr");
    assert_eq!((s.disconnections, s.deleted), (1, 0));
    assert_eq!(w.mv_all().len(), 3);
    // HR's values are recalled.
    assert_eq!(w.mv_text("badge", "b1", "firstName"), None);
    w.write("badge.csv", "badge,emp,phone,dept\n");
    let s = import_and_sync(&w, "badge");
    assert_eq!(s.deleted, 1);
    assert_eq!(w.mv_all().len(), 2);
}

/// HR and a second HR source, `hrb` (it joins, filters out `dept = "out"`),
/// with a directory provisioned from the metaverse; `deletion` is the
/// metaverse type's rule.
fn two_sources(deletion: &str) -> World {
    let hrb = r#"
[[ma]]
name = "hrb"
connector = { type = "csv", path = "hrb.csv" }
object_types = [{ name = "person", anchor = "id" }]
filters = [{ condition = 'dept == "out"' }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
import_flows = [{ mv = "department", from = "dept" }]
"#;
    let config = HR_DIR.replacen(
        "\"email\"]\n",
        &format!("\"email\"]\ndeletion = {deletion}\n"),
        1,
    ) + hrb;
    let files = [("hr.csv", HR_CSV), ("hrb.csv", "id,dept\n1,Lab\n2,Lab\n")];
    let w = World::new(&config, &files);
    for ma in ["hr", "hrb"] {
        import_and_sync(&w, ma);
    }
    w.run_ok("dir", "export", RunStatus::Success);
    w.run_ok("dir", "full-import", RunStatus::Success);
    assert_eq!(w.cs_all("dir", autosync_store::CsFilter::All).len(), 3);
    assert!(w.cs("hrb", "1").unwrap().connection.mv_id().is_some());
    w
}

#[test]
fn the_any_connector_from_deletion_rule_should_delete_a_person_a_listed_source_drops() {
    let w = two_sources(r#"{ rule = "any-connector-from", mas = ["hr", "hrb"] }"#);
    // hrb drops Ada (deleted) and filters Alan out; HR still holds both.
    w.write("hrb.csv", "id,dept\n2,out\n");
    let s = import_and_sync(&w, "hrb");
    assert_eq!((s.disconnections, s.deleted), (2, 2), "{s:?}");
    assert_eq!(s.outbound["dir"].provisioned_disconnects, 2, "{s:?}");
    assert_eq!(w.mv_all().len(), 1);
    assert!(w.cs("hr", "1").unwrap().connection.mv_id().is_none());
    let ada = w.cs("dir", "ada.1").unwrap();
    assert_eq!(
        ada.pending_export.map(|p| p.kind),
        Some(autosync_model::ExportKind::Delete)
    );
    let e = export_counters(&w.run_ok("dir", "export", RunStatus::Success));
    assert_eq!(e.deletes, 2);
    assert!(!w.read("dir.csv").contains("Lovelace"));
}

/// A retired MA (here the directory, gone from the file) is not known to
/// have been listed: deleting its connector space deletes no person a
/// listed source still holds.
#[test]
fn the_any_connector_from_deletion_rule_should_keep_people_when_a_retired_ma_goes() {
    let mut w = two_sources(r#"{ rule = "any-connector-from", mas = ["hr", "hrb"] }"#);
    let config = std::fs::read_to_string(w.path("autosync.toml")).unwrap();
    let start = config.find("[[ma]]\nname = \"dir\"").unwrap();
    let end = config.find("[[ma]]\nname = \"hrb\"").unwrap();
    w.reconfigure(&format!("{}{}", &config[..start], &config[end..]));
    let r = w
        .engine
        .delete_connector_space("dir", autosync_engine::RunOptions::manual("test"))
        .unwrap();
    assert_eq!(r.status, RunStatus::Success, "{r:#?}");
    let s = sync_counters(&r);
    assert_eq!((s.disconnections, s.deleted), (3, 0), "{s:?}");
    assert_eq!(w.mv_all().len(), 3);
}

#[test]
fn the_last_authoritative_connector_deletion_rule_should_wait_for_the_last_listed_connector() {
    let w = two_sources(r#"{ rule = "last-authoritative-connector", mas = ["hr", "hrb"] }"#);
    w.write("hrb.csv", "id,dept\n2,out\n");
    let s = import_and_sync(&w, "hrb");
    assert_eq!((s.disconnections, s.deleted), (2, 0), "{s:?}");
    assert_eq!(w.mv_all().len(), 3);
    assert!(w.cs("dir", "ada.1").unwrap().pending_export.is_none());
    w.write("hr.csv", "id,first,last,dept\n3,Grace,Hopper,Navy\n");
    let s = import_and_sync(&w, "hr");
    assert_eq!((s.disconnections, s.deleted), (2, 2), "{s:?}");
    assert_eq!(w.mv_all().len(), 1);
}

#[test]
fn deprovisioning_to_a_disconnector_should_let_the_object_join_again() {
    let w = world(
        &badge_config(BY_ID, r#"deprovisioning = "disconnect""#, ""),
        "badge,emp,phone,dept\nb1,1,,\n",
    );
    import_and_sync(&w, "badge");
    w.write(
        "hr.csv",
        "id,first,last,dept,phone\n2,Alan,Turing,R&D,\n3,Grace,Hopper,Navy,\n",
    );
    let s = import_and_sync(&w, "hr");
    assert_eq!(s.outbound["badge"].provisioned_disconnects, 1);
    let b1 = w.cs("badge", "b1").unwrap();
    assert_eq!(
        (b1.connection, b1.pending_export),
        (Connection::Disconnector, None)
    );
    w.write("hr.csv", HR);
    import_and_sync(&w, "hr");
    let s = sync_counters(&w.run_ok("badge", "full-sync", RunStatus::Success));
    assert_eq!(s.joins, 1);
}

#[test]
fn an_explicit_disconnector_should_never_be_joined_again() {
    let w = world(
        &badge_config(BY_ID, r#"deprovisioning = "explicit-disconnector""#, ""),
        "badge,emp,phone,dept\nb1,1,,\n",
    );
    import_and_sync(&w, "badge");
    w.write(
        "hr.csv",
        "id,first,last,dept,phone\n2,Alan,Turing,R&D,\n3,Grace,Hopper,Navy,\n",
    );
    import_and_sync(&w, "hr");
    assert_eq!(
        w.cs("badge", "b1").unwrap().connection,
        Connection::ExplicitDisconnector
    );
    w.write("hr.csv", HR);
    import_and_sync(&w, "hr");
    let s = sync_counters(&w.run(ma_badge(), "full-sync"));
    assert_eq!(s.joins, 0);
    assert_eq!(
        w.cs("badge", "b1").unwrap().connection,
        Connection::ExplicitDisconnector
    );
}

fn ma_badge() -> &'static str {
    "badge"
}

#[test]
fn a_failing_expression_should_be_a_per_object_error_that_a_later_sync_retries() {
    let config = badge_config(BY_ID, "", "").replace(
        r#"{ mv = "phone", from = "phone" },
]

[[ma]]
name = "badge""#,
        r#"{ mv = "phone", expr = "to_string(to_int(phone))" },
]

[[ma]]
name = "badge""#,
    );
    let w = World::new(
        &config,
        &[
            (
                "hr.csv",
                &HR.replace("1,Ada,Lovelace,R&D,999", "1,Ada,Lovelace,R&D,abc"),
            ),
            ("badge.csv", ""),
        ],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    let r = w.run_ok("hr", "full-sync", RunStatus::CompletedSyncErrors);
    let s = sync_counters(&r);
    assert_eq!((s.projections, s.failures), (2, 1));
    let ada = w.cs("hr", "1").unwrap();
    assert_eq!(ada.error.as_ref().unwrap().error_type, "expression-failed");
    assert!(ada.pending_import.is_some() && ada.connection == Connection::Disconnector);
    let errors = autosync_store::Store::read(w.store.as_ref())
        .unwrap()
        .run_errors(r.id, 10)
        .unwrap();
    assert_eq!(errors.len(), 1);
    w.write("hr.csv", HR);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!(s.projections, 1);
    assert!(w.cs("hr", "1").unwrap().error.is_none());
    assert_eq!(w.mv_text("hr", "1", "phone").as_deref(), Some("999"));
}

#[test]
fn of_several_failing_flows_the_first_configured_should_be_the_objects_error() {
    // `department` is configured before `phone`, whose name is greater.
    let config = badge_config(BY_ID, "", "")
        .replace(
            r#"{ mv = "department", from = "dept" },"#,
            r#"{ mv = "department", expr = "to_string(to_int(phone))" },"#,
        )
        .replace(
            r#"  { mv = "phone", from = "phone" },
]

[[ma]]
name = "badge""#,
            r#"  { mv = "phone", expr = "to_string(to_int(first))" },
]

[[ma]]
name = "badge""#,
        );
    let w = World::new(
        &config,
        &[
            (
                "hr.csv",
                "id,first,last,dept,phone\n1,Ada,Lovelace,R&D,abc\n2,7,Turing,R&D,8\n",
            ),
            ("badge.csv", ""),
        ],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::CompletedSyncErrors));
    assert_eq!((s.projections, s.failures), (1, 1));
    let error = w.cs("hr", "1").unwrap().error.unwrap();
    assert_eq!(error.error_type, "expression-failed");
    assert!(
        error.detail.contains("import flow to `department`"),
        "{}",
        error.detail
    );
    assert_eq!(w.mv_text("hr", "2", "phone").as_deref(), Some("7"));
    assert_eq!(w.mv_text("hr", "2", "department").as_deref(), Some("8"));
}

/// More objects than one sync batch holds (20,000), so the later pages are
/// read ahead while a batch is written; a delta sync after an update of
/// every other person then crosses pages of pending imports.
#[test]
fn a_sync_over_several_batches_should_sync_every_object_exactly_once() {
    const N: usize = 41_234;
    let mut hr = String::from("id,first,last,dept,phone\n");
    for i in 0..N {
        hr.push_str(&format!("{i},F{i},L{i},D{},\n", i % 7));
    }
    let w = World::new(
        &badge_config(BY_ID, "", ""),
        &[("hr.csv", &hr), ("badge.csv", "badge,emp,phone,dept\n")],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    let s = sync_counters(&w.run_ok("hr", "full-sync", RunStatus::Success));
    assert_eq!(s.projections, N as u64);
    assert_eq!(w.mv_all().len(), N);
    let hr_objects = w.cs_all("hr", autosync_store::CsFilter::All);
    assert_eq!(hr_objects.len(), N);
    assert!(
        hr_objects
            .iter()
            .all(|o| o.connection.mv_id().is_some() && o.pending_import.is_none())
    );

    let mut changed = String::from("id,first,last,dept,phone\n");
    for i in 0..N {
        let dept = if i % 2 == 0 {
            "Moved".to_owned()
        } else {
            format!("D{}", i % 7)
        };
        changed.push_str(&format!("{i},F{i},L{i},{dept},\n"));
    }
    w.write("hr.csv", &changed);
    w.run_ok("hr", "full-import", RunStatus::Success);
    let s = sync_counters(&w.run_ok("hr", "delta-sync", RunStatus::Success));
    assert_eq!(s.connectors_with_flow_updates, N.div_ceil(2) as u64);
    assert_eq!(s.projections, 0);
    assert_eq!(
        w.mv_text("hr", "40000", "department").as_deref(),
        Some("Moved")
    );
    assert_eq!(
        w.mv_text("hr", "40001", "department").as_deref(),
        Some("D3")
    );
    assert!(
        w.cs_all("hr", autosync_store::CsFilter::PendingImport)
            .is_empty()
    );
}

/// The names of the store's dictionary (see `Store::declare_names`).
fn dictionary(w: &World) -> Vec<String> {
    let conn = rusqlite::Connection::open(w.path("state.db")).unwrap();
    let mut stmt = conn.prepare("SELECT name FROM name ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_engine_should_declare_its_configurations_names_to_the_store() {
    let mut w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    let names = dictionary(&w);
    // MA names, object and MV types, anchors, flow targets and sources,
    // and what expressions read (firstName and employeeId only there).
    for n in [
        "hr",
        "dir",
        "person",
        "user",
        "id",
        "uid",
        "employeeId",
        "firstName",
        "lastName",
        "department",
        "email",
        "first",
        "last",
        "dept",
        "name",
        "employee",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    // A new configuration adds its new names after the old ones, which
    // keep their numbers.
    w.reconfigure(&HR_DIR.replace(
        r#"{ mv = "department", from = "dept" },"#,
        r#"{ mv = "department", from = "dept" },
  { mv = "email", expr = "lower(mail)" },"#,
    ));
    let again = dictionary(&w);
    assert_eq!(again[..names.len()], names[..]);
    assert_eq!(again[names.len()..], ["mail".to_owned()]);
    // It runs (hr.csv has no `mail`: the import stops, naming it).
    let r = w.run_ok("hr", "full-import", RunStatus::StoppedConfiguration);
    assert!(
        r.steps[0]
            .message
            .as_deref()
            .unwrap()
            .contains("reads `mail`"),
        "{r:?}"
    );
}

/// A constant flows like any value: into the metaverse on import (with
/// its contributor), and out to a target on export.
#[test]
fn constant_flows_should_set_the_same_value_on_every_object_in_and_out() {
    let config = HR_DIR
        .replace(
            r#"attributes = ["employeeId", "firstName", "lastName", "department", "email"]"#,
            r#"attributes = ["employeeId", "firstName", "lastName", "department", "email", "source"]"#,
        )
        .replace(
            r#"  { mv = "department", from = "dept" },
]"#,
            r#"  { mv = "department", from = "dept" },
  { mv = "source", constant = "hr" },
]"#,
        )
        .replace(
            r#"  { cs = "employee", from = "employeeId" },
]"#,
            r#"  { cs = "employee", from = "employeeId" },
  { cs = "managed", constant = true },
]"#,
        );
    let w = World::new(&config, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let people = w.mv_all();
    assert_eq!(people.len(), 3);
    for p in &people {
        let v = &p.attributes["source"];
        assert_eq!(
            (v.value.to_text().as_str(), v.contributor.as_str()),
            ("hr", "hr")
        );
    }
    w.run_ok("dir", "export", RunStatus::Success);
    let dir = w.read("dir.csv");
    let mut lines = dir.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let managed = header.iter().position(|c| *c == "managed").unwrap();
    let values: Vec<&str> = lines.map(|l| l.split(',').nth(managed).unwrap()).collect();
    assert_eq!(values, ["true"; 3], "{dir}");
}

/// A person whose HR record goes stays (another connector remains); a
/// value HR contributed falls back to the badge system's, which brings
/// them into a target's provisioning condition: the account is created
/// by that same sync.
#[test]
fn a_value_recalled_when_a_source_leaves_should_provision_what_it_brings_into_scope() {
    let app = r#"
[[ma]]
name = "app"
connector = { type = "jsonl", path = "app.jsonl" }
object_types = [{ name = "user", anchor = "id" }]
export_flows = [{ cs = "dept", from = "department" }]
provisioning = [{ mv_type = "person", condition = "department == 'Lab'", anchor = "phone" }]
"#;
    let config = badge_config(BY_ID, app, r#"deletion = { rule = "last-connector" }"#);
    let w = World::new(
        &config,
        &[
            ("hr.csv", HR),
            ("badge.csv", "badge,emp,phone,dept\nb1,1,555,Lab\n"),
            ("app.jsonl", ""),
        ],
    );
    import_and_sync(&w, "hr");
    import_and_sync(&w, "badge");
    assert_eq!(w.mv_text("hr", "1", "department").as_deref(), Some("R&D"));
    assert!(w.cs_all("app", autosync_store::CsFilter::All).is_empty());
    w.write(
        "hr.csv",
        "id,first,last,dept,phone\n2,Alan,Turing,R&D,\n3,Grace,Hopper,Navy,\n",
    );
    let s = import_and_sync(&w, "hr");
    assert_eq!((s.disconnections, s.deleted), (1, 0));
    assert_eq!(s.outbound["app"].provisioned_adds, 1, "{s:?}");
    let x = w
        .cs("app", "555")
        .expect("the account provisioned by that sync");
    assert_eq!(
        x.pending_export.map(|p| p.kind),
        Some(autosync_model::ExportKind::Add)
    );
}

/// An account deleted in the target system itself, as an import sees it,
/// while its person stays in the provisioning rule's scope: the delta sync
/// of that MA makes it again (MIM's provisioning runs for a metaverse
/// object that lost a connector), and the export re-creates it. A person
/// out of the rule's scope (joined, not provisioned) is not made again.
#[test]
fn an_account_deleted_in_the_target_system_should_be_provisioned_again_by_the_delta_sync() {
    let app = r#"
[[ma]]
name = "app"
connector = { type = "jsonl", path = "app.jsonl" }
object_types = [{ name = "user", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
export_flows = [{ cs = "dept", from = "department" }]
provisioning = [{ mv_type = "person", condition = "department == 'R&D'", anchor = "employeeId" }]
"#;
    let config = badge_config(BY_ID, app, "");
    let w = World::new(
        &config,
        &[
            ("hr.csv", HR),
            ("badge.csv", "badge,emp\n"),
            ("app.jsonl", "{\"id\":\"3\",\"dept\":\"Navy\"}\n"),
        ],
    );
    import_and_sync(&w, "hr");
    let s = import_and_sync(&w, "app");
    assert_eq!(s.joins, 1, "{s:?}");
    w.run_ok("app", "export", RunStatus::Success);
    import_and_sync(&w, "app");
    let accounts = |w: &World| -> Vec<String> {
        let mut ids: Vec<String> = w
            .read("app.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    let without = |w: &World, id: &str| {
        let kept: String = w
            .read("app.jsonl")
            .lines()
            .filter(|l| !l.contains(&format!("\"id\":\"{id}\"")))
            .map(|l| format!("{l}\n"))
            .collect();
        w.write("app.jsonl", &kept);
    };
    assert_eq!(accounts(&w), ["1", "2", "3"]);
    without(&w, "1");
    let s = import_and_sync(&w, "app");
    assert_eq!((s.disconnections, s.deleted), (1, 0), "{s:?}");
    assert_eq!(s.outbound["app"].provisioned_adds, 1, "{s:?}");
    let x = w.cs("app", "1").expect("the account made again");
    assert_eq!(
        x.pending_export.map(|p| p.kind),
        Some(autosync_model::ExportKind::Add)
    );
    assert!(matches!(x.connection, Connection::Connector { .. }));
    w.run_ok("app", "export", RunStatus::Success);
    assert_eq!(accounts(&w), ["1", "2", "3"]);
    let s = import_and_sync(&w, "app");
    assert_eq!(s.disconnections, 0, "{s:?}");
    assert!(w.cs("app", "1").unwrap().pending_export.is_none());

    // Grace (Navy) is out of the rule's scope: her joined account, deleted
    // in the system, is not made again.
    without(&w, "3");
    let s = import_and_sync(&w, "app");
    assert_eq!(s.disconnections, 1, "{s:?}");
    assert_eq!(
        s.outbound.get("app").map_or(0, |o| o.provisioned_adds),
        0,
        "{s:?}"
    );
    assert!(w.cs("app", "3").is_none());
}
