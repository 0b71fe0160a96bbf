//! Two people who swap names in an LDAP target (the person DN is
//! `cn=<displayName>,ou=people,...`, anchored by `entryUUID`, `manager`
//! and the groups' `member` by DN). When the edit that swaps them also
//! makes one the other's manager, that rename's change names the other
//! by the DN the other's rename leaves: the export sent the two renames
//! in separate phases (the reference after the rename it names), the
//! first found the other entry still at its new DN, and every export
//! failed both with `already-exists`, for ever (a black-box review).
//! Both must go in one batch (the LDAP connector orders a swap within a
//! batch, moving one entry aside), the managers by the DNs the renames
//! gave in the same export (a second export before any sync keeps them
//! right), and it all converges: each entry at its new DN with its own
//! attributes, managers and groups naming the entries by those DNs, no
//! object in error.

use crate::fixture::World;
use autosync_model::RunStatus;
use autosync_store::CsFilter;
use autosync_testkit::{Slapd, SlapdBuilder};
use std::collections::{BTreeMap, BTreeSet};

fn config(s: &Slapd, base: &str) -> String {
    format!(
        r#"
[metaverse.person]
attributes = ["employeeId", "lastName", "displayName", "department", "manager"]
references = {{ manager = "person" }}

[metaverse.department]
attributes = ["name", "members"]
references = {{ members = "person" }}

[[ma]]
name = "hr"
connector = {{ type = "csv", path = "hr.csv" }}
object_types = [{{ name = "person", anchor = "employee_id", references = {{ manager_id = "anchor" }} }}]
join = [{{ mv_type = "person", on = [{{ cs = "employee_id", mv = "employeeId" }}] }}]
projection = [{{ mv_type = "person" }}]
import_flows = [
  {{ mv_type = "person", mv = "employeeId", from = "employee_id" }},
  {{ mv_type = "person", mv = "lastName", from = "last_name" }},
  {{ mv_type = "person", mv = "displayName", expr = "first_name + ' ' + last_name" }},
  {{ mv_type = "person", mv = "department", from = "department" }},
  {{ mv_type = "person", mv = "manager", from = "manager_id" }},
]

[[ma]]
name = "departments"
connector = {{ type = "csv", path = "hr.csv", group_by = "department", group_values = {{ members = "employee_id" }} }}
object_types = [{{ name = "department", anchor = "department", references = {{ members = {{ by = "anchor", ma = "hr" }} }} }}]
join = [{{ mv_type = "department", on = [{{ cs = "department", mv = "name" }}] }}]
projection = [{{ mv_type = "department" }}]
import_flows = [
  {{ mv_type = "department", mv = "name", from = "department" }},
  {{ mv_type = "department", mv = "members", from = "members" }},
]

[[ma]]
name = "ldap"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{base}"], object_classes = {{ person = "inetOrgPerson", group = "groupOfNames" }}, attributes = ["cn", "sn", "displayName", "employeeNumber", "manager", "member"] }}
object_types = [
  {{ name = "person", anchor = "entryUUID", dn = "dn", references = {{ manager = "dn" }} }},
  {{ name = "group", anchor = "entryUUID", dn = "dn", references = {{ member = "dn" }} }},
]
join = [{{ object_type = "person", mv_type = "person", on = [{{ cs = "employeeNumber", mv = "employeeId" }}] }}]
export_flows = [
  {{ object_type = "person", mv_type = "person", cs = "employeeNumber", from = "employeeId" }},
  {{ object_type = "person", mv_type = "person", cs = "sn", from = "lastName" }},
  {{ object_type = "person", mv_type = "person", cs = "displayName", from = "displayName" }},
  {{ object_type = "person", mv_type = "person", cs = "manager", from = "manager" }},
  {{ object_type = "group", mv_type = "department", cs = "member", from = "members" }},
]
provisioning = [
  {{ mv_type = "person", object_type = "person", anchor = "employeeId", dn = '"cn=" + escape_dn(displayName) + ",ou=people,{base}"' }},
  {{ mv_type = "department", object_type = "group", script = "attrs.members != ()", anchor = "'department-' + name", dn = '"cn=" + escape_dn(name) + ",ou=groups,{base}"' }},
]
"#,
        url = s.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
    )
}

/// An HR row: employee id, first and last name, department, manager's id.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

fn hr(rows: &[Row]) -> String {
    let mut text = String::from("employee_id,first_name,last_name,department,manager_id\n");
    for (id, first, last, department, manager) in rows {
        text.push_str(&format!("{id},{first},{last},{department},{manager}\n"));
    }
    text
}

/// An entry as `ldapsearch -LLL` prints it: attribute names lowercased,
/// each with its values.
type Entry = BTreeMap<String, Vec<String>>;

fn entries(ldif: &str) -> Vec<Entry> {
    ldif.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut entry = Entry::new();
            for line in e.lines() {
                let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line}"));
                entry
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push(value.to_owned());
            }
            entry
        })
        .collect()
}

/// The entries under `ou` of `base` of object class `class`, by DN
/// (lowercased).
fn under(s: &Slapd, ou: &str, base: &str, class: &str) -> BTreeMap<String, Entry> {
    let attrs = [
        "employeeNumber",
        "sn",
        "displayName",
        "manager",
        "member",
        "entryUUID",
    ];
    let text = s
        .ldapsearch(
            &format!("ou={ou},{base}"),
            &format!("(objectClass={class})"),
            &attrs,
        )
        .unwrap();
    entries(&text)
        .into_iter()
        .map(|e| (e["dn"][0].to_lowercase(), e))
        .collect()
}

/// One round: both sources imported and synchronised, the directory
/// exported to, then confirmed (import and sync). Whether the directory
/// was left with nothing to do (nothing pending, nothing unconfirmed).
fn round(w: &World) -> bool {
    for (ma, profile) in [
        ("hr", "full-import"),
        ("departments", "full-import"),
        ("hr", "full-sync"),
        ("departments", "full-sync"),
        ("ldap", "export"),
        ("ldap", "full-import"),
        ("ldap", "full-sync"),
    ] {
        let r = w.run(ma, profile);
        assert!(
            !matches!(
                r.status,
                RunStatus::StoppedError | RunStatus::StoppedConnectivity
            ),
            "{ma} {profile}: {r:#?}"
        );
    }
    w.cs_all("ldap", CsFilter::PendingExport).is_empty()
        && w.cs_all("ldap", CsFilter::UnconfirmedExport).is_empty()
}

/// Rounds until the directory has nothing left to do (at most 4).
fn settle(w: &World, s: &Slapd, base: &str) {
    if !(0..4).any(|_| round(w)) {
        panic!(
            "not quiet after 4 rounds: pending {:#?}\nerrors {:#?}\npeople {:#?}",
            w.cs_all("ldap", CsFilter::PendingExport),
            w.cs_all("ldap", CsFilter::Errors),
            under(s, "people", base, "inetOrgPerson"),
        );
    }
}

/// The DN (lowercased) of person `id` of `rows`.
fn dn(base: &str, rows: &[Row], id: &str) -> String {
    let (_, first, last, _, _) = rows.iter().find(|r| r.0 == id).unwrap();
    format!("cn={first} {last},ou=people,{base}").to_lowercase()
}

/// The people of the directory, having checked that each of `these` (of
/// `rows`) is at its DN with its own attributes and its manager's DN.
fn check(s: &Slapd, base: &str, rows: &[Row], these: &[Row]) -> BTreeMap<String, Entry> {
    let people = under(s, "people", base, "inetOrgPerson");
    for (id, first, last, _, manager) in these {
        let name = format!("{first} {last}");
        let e = people
            .get(&dn(base, rows, id))
            .unwrap_or_else(|| panic!("no entry for {name}: {people:#?}"));
        assert_eq!(e["employeenumber"], [*id], "{name}: {e:#?}");
        assert_eq!(e["sn"], [*last], "{name}: {e:#?}");
        assert_eq!(e["displayname"], [name.as_str()], "{name}: {e:#?}");
        let managers: Vec<String> = e
            .get("manager")
            .into_iter()
            .flatten()
            .map(|m| m.to_lowercase())
            .collect();
        let expected: Vec<String> = Some(*manager)
            .filter(|m| !m.is_empty())
            .map(|m| dn(base, rows, m))
            .into_iter()
            .collect();
        assert_eq!(managers, expected, "{name}'s manager: {people:#?}");
    }
    people
}

/// The directory once `before` was provisioned and `after` (the same
/// people) then flowed: each person's entry (the same entry, by
/// `entryUUID`) at `cn=<first last>` with its own attributes and its
/// manager's DN, each department's group holding its people's DNs, no
/// entry left moved aside and no object in error.
fn converge(before: &[Row], after: &[Row]) {
    let s = SlapdBuilder::new().shared().unwrap();
    let base = s.new_ou("swap").unwrap();
    s.ldapadd(&format!(
        "dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{base}\nobjectClass: organizationalUnit\nou: groups\n"
    ))
    .unwrap();
    let w = World::new(&config(s, &base), &[("hr.csv", &hr(before))]);
    settle(&w, s, &base);
    let dn = |rows: &[Row], id: &str| dn(&base, rows, id);
    let uuids: BTreeMap<&str, String> = {
        let people = under(s, "people", &base, "inetOrgPerson");
        before
            .iter()
            .map(|r| (r.0, people[&dn(before, r.0)]["entryuuid"][0].clone()))
            .collect()
    };

    w.write("hr.csv", &hr(after));
    // A manager the edit changed is right once the export that renames
    // went, and stays so through a second export before any sync (a
    // retry): it was not left pending naming a DN a rename moved.
    for (ma, profile) in [
        ("hr", "full-import"),
        ("departments", "full-import"),
        ("hr", "full-sync"),
        ("departments", "full-sync"),
    ] {
        w.run(ma, profile);
    }
    for _ in 0..2 {
        let r = w.run("ldap", "export");
        assert!(
            matches!(r.status, RunStatus::Success | RunStatus::CompletedNoObjects),
            "{r:#?}"
        );
    }
    let changed: Vec<Row> = after
        .iter()
        .filter(|r| before.iter().any(|b| b.0 == r.0 && b.4 != r.4))
        .copied()
        .collect();
    check(s, &base, after, &changed);
    settle(&w, s, &base);
    let people = check(s, &base, after, after);
    assert_eq!(people.len(), after.len(), "{people:#?}");
    // Each the same entry as before (renamed, not made anew).
    for (id, ..) in after {
        assert_eq!(
            people[&dn(after, id)]["entryuuid"][0],
            uuids[id],
            "{id}: {people:#?}"
        );
    }
    let groups = under(s, "groups", &base, "groupOfNames");
    let departments: BTreeSet<&str> = after.iter().map(|r| r.3).collect();
    assert_eq!(groups.len(), departments.len(), "{groups:#?}");
    for d in departments {
        let g = &groups[&format!("cn={d},ou=groups,{base}").to_lowercase()];
        let members: BTreeSet<String> = g["member"].iter().map(|m| m.to_lowercase()).collect();
        let expected: BTreeSet<String> = after
            .iter()
            .filter(|r| r.3 == d)
            .map(|r| dn(after, r.0))
            .collect();
        assert_eq!(members, expected, "{d}: {g:#?}");
    }
    let errors = w.cs_all("ldap", CsFilter::Errors);
    assert!(errors.is_empty(), "{errors:#?}");
    // The connector space names each entry by the DN it has.
    for o in w.cs_all("ldap", CsFilter::All) {
        if let Some((id, _)) = uuids.iter().find(|(_, u)| **u == o.anchor) {
            assert_eq!(o.dn.to_lowercase(), dn(after, id), "{o:#?}");
        }
    }
}

/// P6 "Cy Renamed" and P7 "Cy CycleBee" swap last names and, in the same
/// edit, come to manage each other: each rename's change names the other
/// by the DN the other's rename leaves (P8 reports to P6 throughout; all
/// three in G2).
#[test]
fn two_people_who_swap_names_and_come_to_manage_each_other_should_converge() {
    converge(
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "Renamed", "G2", "1"),
            ("7", "Cy", "CycleBee", "G2", "1"),
            ("8", "Di", "Report", "G2", "6"),
        ],
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "CycleBee", "G2", "7"),
            ("7", "Cy", "Renamed", "G2", "6"),
            ("8", "Di", "Report", "G2", "6"),
        ],
    );
}

/// One of them comes to name the other as manager in the edit that swaps
/// their names (the other kept its manager): the renames still go
/// together.
#[test]
fn a_swap_where_one_rename_names_the_other_should_converge() {
    converge(
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "Renamed", "G2", "1"),
            ("7", "Cy", "CycleBee", "G2", "6"),
        ],
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "CycleBee", "G2", "7"),
            ("7", "Cy", "Renamed", "G2", "6"),
        ],
    );
}

/// They managed each other before: only the names change (the managers
/// follow once the renames are confirmed).
#[test]
fn two_people_managing_each_other_who_swap_names_should_converge() {
    converge(
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "Renamed", "G2", "7"),
            ("7", "Cy", "CycleBee", "G2", "6"),
            ("8", "Di", "Report", "G2", "6"),
        ],
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "CycleBee", "G2", "7"),
            ("7", "Cy", "Renamed", "G2", "6"),
            ("8", "Di", "Report", "G2", "6"),
        ],
    );
}

/// They swap names and, in the same edit, leave G1 for G2: the groups'
/// changes name both by the DNs their renames leave.
#[test]
fn two_people_who_swap_names_and_change_groups_should_converge() {
    converge(
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "Renamed", "G1", "1"),
            ("7", "Cy", "CycleBee", "G1", "1"),
            ("8", "Di", "Report", "G2", "6"),
        ],
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "CycleBee", "G2", "7"),
            ("7", "Cy", "Renamed", "G2", "6"),
            ("8", "Di", "Report", "G2", "6"),
        ],
    );
}

/// One of them leaves G1 for G2 in the edit that swaps their names, the
/// other stays in G1.
#[test]
fn a_swap_where_one_changes_groups_should_converge() {
    converge(
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "Renamed", "G1", "7"),
            ("7", "Cy", "CycleBee", "G1", "6"),
            ("8", "Di", "Report", "G2", ""),
        ],
        &[
            ("1", "Ada", "Boss", "G1", ""),
            ("6", "Cy", "CycleBee", "G2", "7"),
            ("7", "Cy", "Renamed", "G1", "6"),
            ("8", "Di", "Report", "G2", ""),
        ],
    );
}
