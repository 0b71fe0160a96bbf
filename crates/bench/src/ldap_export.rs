//! Scenario `ldap-export`: the LDAP connector's export against OpenLDAP's
//! own tools, on one private slapd (the test kit's) in the same run.
//!
//! N people in a CSV source (the engine in this process) are provisioned
//! to an LDAP MA under `ou=export`; then one attribute (`title`) of each
//! changes; then each is terminated, and deprovisioning deletes them.
//! Each time the LDAP MA's export run alone is timed (the sync before it
//! and the confirming import after it are not). The raw reference: the
//! same N entries (same attributes and values) under `ou=raw`, added with
//! `ldapadd`, modified with `ldapmodify` and deleted with `ldapdelete`,
//! each of one LDIF file. The order within a pair turns each time (raw
//! adds, export adds, export modifies, raw modifies, raw deletes, export
//! deletes), so that a drift of the machine's speed favours neither; the
//! six phases run `--rounds` times (3 by default; the entries are added
//! again each round) and the figures are the medians. Each phase also
//! reports slapd's CPU seconds (from `/proc`): a figure the load of other
//! processes on the machine changes less than wall time.

use crate::engine_scenario::{engine_for, run_step};
use crate::ldap_raw::{self, person};
use anyhow::{Context as _, bail};
use autosync_engine::Engine;
use autosync_model::{RunRecord, StepCounters};
use autosync_testkit::{Slapd, SlapdBuilder};
use std::io::Write as _;
use std::path::Path;

fn config(s: &Slapd, export_ou: &str) -> String {
    format!(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "uid", "firstName", "lastName", "displayName", "email", "title", "phone", "status"]

[[ma]]
name = "hr"
connector = {{ type = "csv", path = "hr.csv" }}
object_types = [{{ name = "person", anchor = "employee_id" }}]
join = [{{ on = [{{ cs = "employee_id", mv = "employeeId" }}] }}]
projection = [{{ mv_type = "person" }}]
staging_thresholds = {{ deletes = "off" }}
import_flows = [
  {{ mv = "employeeId", from = "employee_id" }},
  {{ mv = "uid", from = "uid" }},
  {{ mv = "firstName", from = "first_name" }},
  {{ mv = "lastName", from = "last_name" }},
  {{ mv = "displayName", expr = "first_name + ' ' + last_name" }},
  {{ mv = "email", from = "email" }},
  {{ mv = "title", from = "title" }},
  {{ mv = "phone", from = "phone" }},
  {{ mv = "status", from = "status" }},
]

[[ma]]
name = "dir"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{export_ou}"], object_classes = {{ person = "inetOrgPerson" }}, attributes = ["uid", "cn", "sn", "givenName", "mail", "title", "telephoneNumber", "employeeNumber"] }}
object_types = [{{ name = "person", anchor = "entryUUID" }}]
join = [{{ mv_type = "person", on = [{{ cs = "employeeNumber", mv = "employeeId" }}] }}]
export_flows = [
  {{ cs = "uid", from = "uid" }},
  {{ cs = "cn", from = "displayName" }},
  {{ cs = "sn", from = "lastName" }},
  {{ cs = "givenName", from = "firstName" }},
  {{ cs = "mail", from = "email" }},
  {{ cs = "title", from = "title" }},
  {{ cs = "telephoneNumber", from = "phone" }},
  {{ cs = "employeeNumber", from = "employeeId" }},
]
provisioning = [{{ mv_type = "person", condition = "status == 'active'", anchor = "employeeId", dn = '"uid=" + uid + ",{export_ou}"' }}]
deprovisioning = "delete"
export_deletion_threshold = "off"
"#,
        url = s.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
    )
}

/// The CSV source: N people, their titles after `round` modifies, all
/// active or all terminated.
fn write_hr(path: &Path, n: u64, round: u32, active: bool) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(
        w,
        "employee_id,uid,first_name,last_name,email,title,phone,status"
    )?;
    let status = if active { "active" } else { "terminated" };
    for i in 0..n {
        let p = person(i, round);
        let get = |a: &str| {
            p.iter()
                .find(|(k, _)| *k == a)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        writeln!(
            w,
            "{},{},{},{},{},{},{},{status}",
            get("employeeNumber"),
            get("uid"),
            get("givenName"),
            get("sn"),
            get("mail"),
            get("title"),
            get("telephoneNumber"),
        )?;
    }
    w.flush()?;
    Ok(())
}

fn export_counters(r: &RunRecord) -> autosync_model::ExportCounters {
    let mut total = autosync_model::ExportCounters::default();
    for s in &r.steps {
        if let StepCounters::Export(c) = &s.counters {
            total.adds += c.adds;
            total.updates += c.updates;
            total.deletes += c.deletes;
            total.failures += c.failures;
        }
    }
    total
}

/// The source imported and synced (untimed), then the LDAP MA's export
/// (timed): its counters, seconds and slapd's CPU seconds (`cpu`).
fn export_phase(
    engine: &Engine,
    cpu: &dyn Fn() -> anyhow::Result<f64>,
) -> anyhow::Result<(autosync_model::ExportCounters, f64, f64)> {
    run_step(engine, "hr", "full-import")?;
    run_step(engine, "hr", "full-sync")?;
    let c0 = cpu()?;
    let (record, secs) = run_step(engine, "dir", "export")?;
    let cpu_s = cpu()? - c0;
    let c = export_counters(&record);
    // The confirming import (untimed), as the controller would run it.
    run_step(engine, "dir", "full-import")?;
    Ok((c, secs, cpu_s))
}

/// Runs the scenario: its results.
pub fn run(n: u64, rounds: u32, keep: bool) -> anyhow::Result<serde_json::Value> {
    if n == 0 || rounds == 0 {
        bail!("--objects and --rounds must be at least 1");
    }
    let dir = tempfile::Builder::new()
        .prefix("autosync-bench-ldap-")
        .tempdir()?;
    let root = dir.path().to_path_buf();
    let slapd = SlapdBuilder::new()
        .start()
        .map_err(|e| anyhow::anyhow!("cannot start slapd: {e}"))?;
    let raw_ou = ldap_raw::add_ou(&slapd, "raw")?;
    let export_ou = ldap_raw::add_ou(&slapd, "export")?;
    let hr = root.join("hr.csv");
    write_hr(&hr, n, 0, true)?;
    let (engine, _store) = engine_for(&root, &config(&slapd, &export_ou))?;
    let check = |what: &str, got: u64| -> anyhow::Result<()> {
        if got != n {
            bail!("{what}: {got} of {n}");
        }
        Ok(())
    };
    let none = |what: &str, got: u64| -> anyhow::Result<()> {
        if got != 0 {
            bail!("{what}: {got}, none expected");
        }
        Ok(())
    };

    let mut rounds_out = Vec::new();
    for round in 0..rounds {
        // Titles: the adds write round 0's, the modifies round + 1's.
        let modified = round + 1;
        let cpu = || crate::service_proc::cpu_time_of(slapd.pid()).map(|d| d.as_secs_f64());
        let mut t = Times::default();

        // Adds.
        write_hr(&hr, n, 0, true)?;
        let c0 = cpu()?;
        t.raw_add =
            ldap_raw::timed_tool(&slapd, &root, "ldapadd", &ldap_raw::add_ldif(&raw_ou, n))?;
        let c1 = cpu()?;
        check("raw adds", ldap_raw::count_under(&slapd, &raw_ou)?)?;
        let (c, secs, cpu_s) = export_phase(&engine, &cpu)?;
        t.export_add = secs;
        t.cpu.extend([c1 - c0, cpu_s]);
        check("exported adds", c.adds)?;
        none("export failures", c.failures)?;
        check(
            "entries added by the export",
            ldap_raw::count_under(&slapd, &export_ou)?,
        )?;

        // Modifies: one attribute of each.
        write_hr(&hr, n, modified, true)?;
        let (c, secs, cpu_s) = export_phase(&engine, &cpu)?;
        t.export_modify = secs;
        check("exported modifies", c.updates)?;
        none("export failures", c.failures)?;
        check(
            "titles changed by the export",
            ldap_raw::count_titles(&slapd, &export_ou, n, modified)?,
        )?;
        let c0 = cpu()?;
        t.raw_modify = ldap_raw::timed_tool(
            &slapd,
            &root,
            "ldapmodify",
            &ldap_raw::modify_ldif(&raw_ou, n, modified),
        )?;
        t.cpu.extend([cpu()? - c0, cpu_s]);
        check(
            "titles changed by ldapmodify",
            ldap_raw::count_titles(&slapd, &raw_ou, n, modified)?,
        )?;

        // Deletes: everyone terminated, deprovisioned.
        let c0 = cpu()?;
        t.raw_delete = ldap_raw::timed_tool(
            &slapd,
            &root,
            "ldapdelete",
            &ldap_raw::delete_list(&raw_ou, n),
        )?;
        let c1 = cpu()?;
        none(
            "entries left after ldapdelete",
            ldap_raw::count_under(&slapd, &raw_ou)?,
        )?;
        write_hr(&hr, n, modified, false)?;
        let (c, secs, cpu_s) = export_phase(&engine, &cpu)?;
        t.export_delete = secs;
        t.cpu.extend([c1 - c0, cpu_s]);
        check("exported deletes", c.deletes)?;
        none("export failures", c.failures)?;
        none(
            "entries left after the export",
            ldap_raw::count_under(&slapd, &export_ou)?,
        )?;
        rounds_out.push(t);
    }
    drop(engine);
    let results = summary(n, &rounds_out);
    if keep {
        let kept = dir.keep();
        eprintln!("working folder kept: {}", kept.display());
    }
    Ok(results)
}

/// The seconds of one round's phases, and slapd's CPU seconds in each
/// (raw add, export add, raw modify, export modify, raw delete, export
/// delete).
#[derive(Debug, Default)]
struct Times {
    raw_add: f64,
    export_add: f64,
    raw_modify: f64,
    export_modify: f64,
    raw_delete: f64,
    export_delete: f64,
    cpu: Vec<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The rates of the median round of each figure, each round's ratios,
/// and the median ratios (the figures the bars read).
fn summary(n: u64, rounds: &[Times]) -> serde_json::Value {
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let rate = |secs: f64| (n as f64 / secs).round();
    let pick = |f: &dyn Fn(&Times) -> f64| median(rounds.iter().map(f).collect());
    let ratio = |f: &dyn Fn(&Times) -> f64| r3(pick(f));
    let per_round: Vec<serde_json::Value> = rounds
        .iter()
        .map(|t| {
            let seconds = [
                t.raw_add,
                t.export_add,
                t.raw_modify,
                t.export_modify,
                t.raw_delete,
                t.export_delete,
            ]
            .map(r3);
            serde_json::json!({
                "add_ratio": r3(t.raw_add / t.export_add),
                "modify_ratio": r3(t.raw_modify / t.export_modify),
                "delete_ratio": r3(t.raw_delete / t.export_delete),
                "seconds": seconds,
                "slapd_cpu_seconds": t.cpu.iter().map(|c| r3(*c)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "export_add_per_s": rate(pick(&|t| t.export_add)),
        "raw_add_per_s": rate(pick(&|t| t.raw_add)),
        "add_ratio": ratio(&|t| t.raw_add / t.export_add),
        "export_modify_per_s": rate(pick(&|t| t.export_modify)),
        "raw_modify_per_s": rate(pick(&|t| t.raw_modify)),
        "modify_ratio": ratio(&|t| t.raw_modify / t.export_modify),
        "export_delete_per_s": rate(pick(&|t| t.export_delete)),
        "raw_delete_per_s": rate(pick(&|t| t.raw_delete)),
        "delete_ratio": ratio(&|t| t.raw_delete / t.export_delete),
        "rounds": per_round,
    })
}

/// The bar: each export rate at least 0.8 of the raw rate of the same run.
pub fn bars(results: &serde_json::Value) -> serde_json::Value {
    let bar = |key: &str| {
        let got = results[key].as_f64().unwrap_or(0.0);
        serde_json::json!({ "bar": 0.8, "met": got >= 0.8 })
    };
    serde_json::json!({
        "add_ratio": bar("add_ratio"),
        "modify_ratio": bar("modify_ratio"),
        "delete_ratio": bar("delete_ratio"),
    })
}
