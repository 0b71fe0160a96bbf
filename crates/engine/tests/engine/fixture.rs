//! A test world: a temp folder with a configuration (TOML text), its data
//! files, a real SQLite store and the real connectors.

use autosync_connector::Registry;
use autosync_engine::{Engine, RunOptions};
use autosync_model::{
    CsObject, ExportCounters, ImportCounters, MvObject, RunRecord, RunStatus, StepCounters,
    SyncCounters,
};
use autosync_store::lease::{Instance, LeaseTiming, Leases};
use autosync_store::sqlite::SqliteStore;
use autosync_store::{CsFilter, MvQuery, Store};
use std::path::PathBuf;
use std::sync::Arc;

pub struct World {
    pub dir: tempfile::TempDir,
    pub engine: Arc<Engine>,
    pub store: Arc<SqliteStore>,
}

pub fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    autosync_connectors::register_all(&mut r);
    Arc::new(r)
}

impl World {
    /// A world with `files` written first (name, contents), then `config`.
    pub fn new(config: &str, files: &[(&str, &str)]) -> World {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let engine = Self::engine_for(&dir, config, store.clone());
        World { dir, engine, store }
    }

    /// An engine for `config` (written to the folder) over `store`.
    pub fn engine_for(dir: &tempfile::TempDir, config: &str, store: Arc<dyn Store>) -> Arc<Engine> {
        let path = dir.path().join("autosync.toml");
        std::fs::write(&path, config).unwrap();
        let registry = registry();
        let loaded = match autosync_config::load_str(config, &path, &registry) {
            Ok(l) => l,
            Err(e) => panic!("bad test configuration: {e}"),
        };
        Arc::new(Engine::new(Arc::new(loaded.system), store, registry).unwrap())
    }

    /// A second node on this world's store: an engine with its own store
    /// handle and its own lease instance id (this host, this process).
    pub fn second_node(&self) -> Arc<Engine> {
        let config = std::fs::read_to_string(self.dir.path().join("autosync.toml")).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&self.dir.path().join("state.db")).unwrap());
        let engine = Arc::try_unwrap(Self::engine_for(&self.dir, &config, store.clone())).unwrap();
        let leases = Leases::new(store, Instance::fresh(), LeaseTiming::default());
        Arc::new(engine.with_leases(leases))
    }

    /// Replace the engine with one for another configuration, same store.
    pub fn reconfigure(&mut self, config: &str) {
        self.engine = Self::engine_for(&self.dir, config, self.store.clone());
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    pub fn run(&self, ma: &str, profile: &str) -> RunRecord {
        self.engine
            .run_profile(ma, profile, RunOptions::manual("test"))
            .unwrap()
    }

    /// Run and assert the status.
    pub fn run_ok(&self, ma: &str, profile: &str, status: RunStatus) -> RunRecord {
        let r = self.run(ma, profile);
        assert_eq!(r.status, status, "{ma} {profile}: {r:#?}");
        r
    }

    pub fn cs(&self, ma: &str, anchor: &str) -> Option<CsObject> {
        self.store.read().unwrap().cs_by_anchor(ma, anchor).unwrap()
    }

    pub fn cs_all(&self, ma: &str, filter: CsFilter) -> Vec<CsObject> {
        self.store
            .read()
            .unwrap()
            .cs_page(ma, filter, 0, 100_000)
            .unwrap()
    }

    pub fn mv_all(&self) -> Vec<MvObject> {
        self.store
            .read()
            .unwrap()
            .mv_page(&MvQuery::default(), 0, 100_000)
            .unwrap()
    }

    /// The MV object joined to a CS object.
    pub fn mv_of(&self, ma: &str, anchor: &str) -> Option<MvObject> {
        let cs = self.cs(ma, anchor)?;
        let id = cs.connection.mv_id()?;
        self.store.read().unwrap().mv_get(id).unwrap()
    }

    /// An MV attribute as text.
    pub fn mv_text(&self, ma: &str, anchor: &str, attr: &str) -> Option<String> {
        self.mv_of(ma, anchor)?.get(attr).map(|v| v.to_text())
    }
}

pub fn import_counters(r: &RunRecord) -> ImportCounters {
    match &r.steps[0].counters {
        StepCounters::Import(c) => c.clone(),
        other => panic!("not an import: {other:?}"),
    }
}

pub fn sync_counters(r: &RunRecord) -> SyncCounters {
    match &r.steps[0].counters {
        StepCounters::Sync(c) => c.clone(),
        other => panic!("not a sync: {other:?}"),
    }
}

pub fn export_counters(r: &RunRecord) -> ExportCounters {
    match &r.steps[0].counters {
        StepCounters::Export(c) => c.clone(),
        other => panic!("not an export: {other:?}"),
    }
}

/// HR (CSV source, projects people) and a directory (CSV target, provisioned
/// from the metaverse, deleted on deprovisioning).
pub const HR_DIR: &str = r#"
[metaverse.person]
attributes = ["employeeId", "firstName", "lastName", "department", "email"]

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
]

[[ma]]
name = "dir"
connector = { type = "csv", path = "dir.csv" }
object_types = [{ name = "user", anchor = "uid" }]
deprovisioning = "delete"
export_flows = [
  { cs = "name", expr = 'firstName + " " + lastName' },
  { cs = "dept", from = "department" },
  { cs = "employee", from = "employeeId" },
]
provisioning = [{ mv_type = "person", object_type = "user", anchor = 'lower(firstName) + "." + employeeId' }]
"#;

pub const HR_CSV: &str =
    "id,first,last,dept\n1,Ada,Lovelace,R&D\n2,Alan,Turing,R&D\n3,Grace,Hopper,Navy\n";
