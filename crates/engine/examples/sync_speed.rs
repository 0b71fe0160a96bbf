//! A quick measure of the engine's steps (not a test): N people from a CSV
//! file, full import, full sync (join + projection + 10 flows + provisioning
//! to one target MA), export to a CSV target, then a second full sync over
//! the joined objects.
//!
//! `cargo run --release -p autosync-engine --example sync_speed -- [N]`

use autosync_connector::Registry;
use autosync_engine::{Engine, RunOptions};
use autosync_model::{RunRecord, StepCounters};
use autosync_store::sqlite::SqliteStore;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

const CONFIG: &str = r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "lastName", "department", "title", "phone", "city", "country", "manager", "costCenter"]

[[ma]]
name = "hr"
connector = { type = "csv", path = "hr.csv" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "firstName", from = "first" },
  { mv = "lastName", from = "last" },
  { mv = "department", from = "dept" },
  { mv = "title", from = "title" },
  { mv = "phone", from = "phone" },
  { mv = "city", from = "city" },
  { mv = "country", expr = "upper(country)" },
  { mv = "manager", from = "manager" },
  { mv = "costCenter", from = "cc" },
]

[[ma]]
name = "dir"
connector = { type = "csv", path = "dir.csv" }
object_types = [{ name = "user", anchor = "uid" }]
join = [{ on = [{ cs = "employee", mv = "employeeId" }] }]
export_flows = [
  { cs = "employee", from = "employeeId" },
  { cs = "name", expr = 'firstName + " " + lastName' },
  { cs = "givenName", from = "firstName" },
  { cs = "sn", from = "lastName" },
  { cs = "dept", from = "department" },
  { cs = "title", from = "title" },
  { cs = "phone", from = "phone" },
  { cs = "l", from = "city" },
  { cs = "c", from = "country" },
  { cs = "cc", from = "costCenter" },
]
provisioning = [{ mv_type = "person", object_type = "user", anchor = '"u" + employeeId' }]
"#;

fn counters(r: &RunRecord) -> String {
    match &r.steps[0].counters {
        StepCounters::Import(c) => format!("adds {} updates {}", c.stage_add, c.stage_update),
        StepCounters::Sync(c) => format!(
            "projections {} joins {} flow updates {} outbound {:?}",
            c.projections, c.joins, c.connectors_with_flow_updates, c.outbound
        ),
        StepCounters::Export(c) => format!("adds {} updates {}", c.adds, c.updates),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.path().join("hr.csv"))?);
        writeln!(f, "id,first,last,dept,title,phone,city,country,manager,cc")?;
        for i in 0..n {
            writeln!(
                f,
                "{i},First{i},Last{i},Dept{},Engineer,+1555{i:07},City{},nl,{},CC{}",
                i % 50,
                i % 300,
                i / 10,
                i % 40
            )?;
        }
    }
    let path = dir.path().join("autosync.toml");
    std::fs::write(&path, CONFIG)?;
    let mut registry = Registry::new();
    autosync_connectors::register_all(&mut registry);
    let loaded =
        autosync_config::load_str(CONFIG, &path, &registry).map_err(|e| format!("{e:?}"))?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db"))?);
    let engine = Engine::new(Arc::new(loaded.system), store, Arc::new(registry))?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let line = |ma: &str, profile: &str| -> Result<(), Box<dyn std::error::Error>> {
        let t = Instant::now();
        let r = engine.run_profile(ma, profile, RunOptions::manual("bench"))?;
        let s = t.elapsed().as_secs_f64();
        tracing::warn!("{ma} {profile}: {:?}", r.status);
        let rate = n as f64 / s;
        let out = format!(
            "{ma:>4} {profile:<12} {n} objects in {s:7.2} s = {rate:>9.0} objects/s  [{:?}] {}\n",
            r.status,
            counters(&r)
        );
        std::io::stderr().write_all(out.as_bytes())?;
        Ok(())
    };
    std::io::stderr().write_all(format!("machine: {cores} cores, N = {n}\n").as_bytes())?;
    line("hr", "full-import")?;
    line("hr", "full-sync")?;
    line("dir", "export")?;
    line("dir", "full-import")?;
    line("hr", "full-sync")?;
    Ok(())
}
