//! Shared helpers: a copy of the quickstart with its configuration edited,
//! a running service over the real engine and SQLite store, status polling
//! (events are awaited by polling the service's status or the store with a
//! generous bound, never by fixed sleeps), and a loopback webhook sink.

use autosync_config::Loaded;
use autosync_connector::Registry;
use autosync_engine::Engine;
use autosync_model::RunRecord;
use autosync_service::{
    Command, Control, ControllerConfig, EngineAdapter, MaStateView, PushOutcome, Refusal, Service,
    Status, Summary, SyncEngine, controller_config,
};
use autosync_store::Store;
use autosync_store::sqlite::SqliteStore;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long any awaited event may take before the test gives up (a bound,
/// not a timed assertion: events normally come in well under a second).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The line of the quickstart's `hr` trigger (replaced by tests).
pub const HR_TRIGGER: &str =
    r#"triggers = [{ type = "file-watch", debounce = "100ms", max_delay = "1s" }]"#;

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A fresh copy of the quickstart (no state, no target data), without its
/// groups ([`crate::people::without_groups`]).
pub fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    copy_dir(&source, dir.path());
    for generated in [
        "state",
        "data/app.db",
        "data/directory.jsonl",
        "data/groups.csv",
    ] {
        let p = dir.path().join(generated);
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
    }
    let config = dir.path().join("autosync.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, crate::people::without_groups(&text)).unwrap();
    dir
}

/// A copy of the quickstart after one service run on its own configuration
/// (import, sync, exports, confirming imports): the targets hold what HR
/// says. Tests then edit the configuration.
pub async fn converged_quickstart() -> tempfile::TempDir {
    let dir = quickstart();
    let summary = converge(dir.path()).await;
    assert!(summary.runs.len() >= 6, "{:?}", summary.runs.len());
    assert_eq!(app_ids(dir.path()), hr_active(dir.path()));
    dir
}

/// Edits the folder's configuration.
pub fn edit_config(dir: &Path, edit: impl FnOnce(String) -> String) {
    let config = dir.join("autosync.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let new = edit(text.clone());
    std::fs::write(&config, new).unwrap();
}

/// The configuration text with `hr`'s `[ma.controller]` keys replaced by
/// `keys` (one or more `key = value` lines).
/// The quickstart's staging thresholds of hr, as its file writes them.
pub const QUICKSTART_STAGING: &str = "staging_thresholds = { deletes = \"10%\" }";

pub fn hr_controller(text: &str, keys: &str) -> String {
    assert!(
        text.contains(HR_TRIGGER),
        "the quickstart's hr trigger moved"
    );
    text.replacen(HR_TRIGGER, keys, 1)
}

/// The configuration text with an inline `controller = { ... }` on a target
/// MA (`app` or `directory`); `inner` is the table's contents.
pub fn target_controller(text: &str, ma: &str, inner: &str) -> String {
    let marker = "deprovisioning = \"delete\"";
    let n = match ma {
        "app" => 0,
        "directory" => 1,
        other => panic!("not a target MA of the quickstart: {other}"),
    };
    let (pos, _) = text.match_indices(marker).nth(n).unwrap();
    let at = pos + marker.len();
    format!("{}\ncontroller = {{ {inner} }}{}", &text[..at], &text[at..])
}

/// The configuration text with lines appended to the global `[controller]`
/// table (the last table of the quickstart).
pub fn global_controller(text: &str, lines: &str) -> String {
    format!("{text}\n{lines}\n")
}

/// A `[controller.notifications]` section posting to `url`.
pub fn webhook_section(url: &str) -> String {
    format!("[controller.notifications]\n[[controller.notifications.webhooks]]\nurl = \"{url}\"\n")
}

pub fn registry() -> Registry {
    let mut registry = Registry::new();
    autosync_connectors::register_all(&mut registry);
    registry
}

pub fn load(dir: &Path) -> Result<Loaded, autosync_config::ConfigError> {
    autosync_config::load(&dir.join("autosync.toml"), &registry())
}

/// The folder's configuration, built like `autosync run` builds it: the
/// controller's configuration and an engine over `store`.
pub fn build(dir: &Path, store: &Arc<dyn Store>) -> (Arc<dyn SyncEngine>, ControllerConfig) {
    let loaded = load(dir).unwrap();
    let config = match controller_config(&loaded, &registry()) {
        Ok(c) => c,
        Err(d) => panic!("{}", loaded.error(d)),
    };
    let system = Arc::new(loaded.system);
    let engine = Engine::new(system, store.clone(), Arc::new(registry())).unwrap();
    (Arc::new(EngineAdapter(Arc::new(engine))), config)
}

pub fn open_store(dir: &Path) -> Arc<dyn Store> {
    let loaded = load(dir).unwrap();
    let system = loaded.system;
    Arc::new(SqliteStore::open(&system.base_dir.join(&system.store.path)).unwrap())
}

/// A service over the folder's configuration, with its store.
pub fn service(dir: &Path) -> (Service, Arc<dyn Store>) {
    let store = open_store(dir);
    let loaded = load(dir).unwrap();
    let config = match controller_config(&loaded, &registry()) {
        Ok(c) => c,
        Err(d) => panic!("{}", loaded.error(d)),
    };
    let system = Arc::new(loaded.system);
    let engine = Engine::new(system, store.clone(), Arc::new(registry())).unwrap();
    let adapter = EngineAdapter(Arc::new(engine));
    (
        Service::new(Arc::new(adapter), store.clone(), config),
        store,
    )
}

/// Runs the service once (until quiescent) over the folder: the targets
/// then hold what the source says.
pub async fn converge(dir: &Path) -> Summary {
    let (service, _store) = service(dir);
    service.run(true).await.unwrap()
}

/// A service running in the background.
pub struct Running {
    pub commands: mpsc::UnboundedSender<Command>,
    pub stop: CancellationToken,
    pub store: Arc<dyn Store>,
    pub handle: Option<tokio::task::JoinHandle<Result<Summary, autosync_service::ServiceError>>>,
    pub dir: PathBuf,
}

impl Running {
    pub fn start(dir: &Path) -> Running {
        let (service, store) = service(dir);
        let commands = service.commands();
        let stop = service.shutdown_token();
        let handle = tokio::spawn(service.run(false));
        Running {
            commands,
            stop,
            store,
            handle: Some(handle),
            dir: dir.to_owned(),
        }
    }

    /// Stops the service gracefully and returns what it ran.
    pub async fn shutdown(mut self) -> Summary {
        self.stop.cancel();
        let handle = self.handle.take().unwrap();
        tokio::time::timeout(EVENT_TIMEOUT, handle)
            .await
            .expect("the service did not stop")
            .unwrap()
            .unwrap()
    }

    pub async fn status(&self) -> Status {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status { reply }).unwrap();
        answer.await.unwrap()
    }

    pub fn state(status: &Status, ma: &str) -> MaStateView {
        status.mas[ma].state.clone()
    }

    /// Polls the status until `done` holds (bounded by [`EVENT_TIMEOUT`]).
    pub async fn wait(&self, what: &str, mut done: impl FnMut(&Status) -> bool) -> Status {
        let start = Instant::now();
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                start.elapsed() < EVENT_TIMEOUT,
                "gave up waiting for {what}; status: {status:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until nothing runs or is queued on any MA that may run.
    pub async fn wait_quiet(&self, what: &str) -> Status {
        self.wait(what, quiet).await
    }

    /// An operator's control; a refusal as its sentence
    /// ([`Running::control_refusal`] keeps its code).
    pub async fn control(&self, action: Control, ma: Option<&str>) -> Result<String, String> {
        self.control_refusal(action, ma)
            .await
            .map_err(|refusal| refusal.message)
    }

    pub async fn control_refusal(
        &self,
        action: Control,
        ma: Option<&str>,
    ) -> Result<String, Refusal> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Control {
                action,
                ma: ma.map(str::to_owned),
                by: "test".into(),
                reply,
            })
            .unwrap();
        answer.await.unwrap()
    }

    pub async fn queue(&self, ma: &str, profile: &str) -> Result<PushOutcome, Refusal> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Queue {
                ma: ma.into(),
                profile: profile.into(),
                exclusive: false,
                run_immediate: false,
                by: "test".into(),
                reply,
            })
            .unwrap();
        answer.await.unwrap()
    }

    /// Every run of `ma` (all MAs with `None`), oldest first.
    pub fn runs(&self, ma: Option<&str>) -> Vec<RunRecord> {
        runs(self.store.as_ref(), ma)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Every run of `ma` (all MAs with `None`) in the store, oldest first.
pub fn runs(store: &dyn Store, ma: Option<&str>) -> Vec<RunRecord> {
    let mut runs = store.read().unwrap().runs(ma, 100_000).unwrap();
    runs.reverse();
    runs
}

/// No MA runs, and every MA is idle with an empty queue (or cannot run:
/// stopped, failed, threshold-exceeded).
pub fn quiet(status: &Status) -> bool {
    status.mas.values().all(|m| match &m.state {
        MaStateView::Idle => m.queue.is_empty(),
        MaStateView::Running { .. } | MaStateView::Waiting { .. } | MaStateView::Queued => false,
        MaStateView::Stopped
        | MaStateView::Disabled
        | MaStateView::Failed { .. }
        | MaStateView::ThresholdExceeded { .. } => true,
    })
}

/// Waits (polling) until `done` holds.
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < EVENT_TIMEOUT,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The application table's employee ids.
pub fn app_ids(dir: &Path) -> Vec<String> {
    let path = dir.join("data/app.db");
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT employee_id FROM users ORDER BY employee_id")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The application table's (employee id, title).
pub fn app_titles(dir: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(dir.join("data/app.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT employee_id, title FROM users ORDER BY employee_id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The directory file's ids.
pub fn directory_ids(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("data/directory.jsonl")).unwrap_or_default();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    ids
}

/// The HR file's data lines (without the header).
pub fn hr_lines(dir: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(dir.join("data/hr.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_owned();
    (header, lines.map(str::to_owned).collect())
}

pub fn write_hr(dir: &Path, header: &str, lines: &[String]) {
    let mut text = format!("{header}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    // Written aside and renamed into place, as a careful HR export does: a
    // file watch never reads a half-written file (on a loaded machine the
    // truncate and the write of a plain rewrite can land more than a
    // debounce window apart, and the half-written file is a change).
    let tmp = dir.join("data/.hr.csv.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("data/hr.csv")).unwrap();
}

/// Active employees of the HR file.
pub fn hr_active(dir: &Path) -> Vec<String> {
    let (_, lines) = hr_lines(dir);
    let mut ids: Vec<String> = lines
        .iter()
        .filter(|l| l.trim_end().ends_with(",active"))
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Sets one employee's title in the HR file.
pub fn set_title(dir: &Path, id: &str, title: &str) {
    let (header, mut lines) = hr_lines(dir);
    let line = lines
        .iter_mut()
        .find(|l| l.starts_with(&format!("{id},")))
        .unwrap();
    let mut fields: Vec<String> = line.split(',').map(str::to_owned).collect();
    fields[5] = title.to_owned();
    *line = fields.join(",");
    write_hr(dir, &header, &lines);
}

/// The first active employee of the HR file.
pub fn first_active(dir: &Path) -> String {
    hr_active(dir).into_iter().next().unwrap()
}

/// A loopback HTTP server that answers 200 to every POST and keeps the JSON
/// bodies.
#[derive(Clone)]
pub struct WebhookSink {
    pub url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl WebhookSink {
    pub fn start() -> WebhookSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(json) = serde_json::from_slice(&body)
                {
                    kept.lock().unwrap().push(json);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        WebhookSink { url, bodies }
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The bodies of one event (`ma-failed`, `threshold-exceeded`, ...).
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.bodies()
            .into_iter()
            .filter(|b| b["event"] == event)
            .collect()
    }

    /// Waits until `n` bodies of `event` arrived.
    pub async fn wait_events(&self, event: &str, n: usize) -> Vec<serde_json::Value> {
        let what = format!("{n} `{event}` webhook(s)");
        wait_for(&what, || self.events(event).len() >= n).await;
        self.events(event)
    }
}
