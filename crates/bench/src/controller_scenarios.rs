//! Scenarios of the controller (`autosync run`) on the quickstart folder:
//!
//! - `quickstart`: changes to the HR file one at a time at a steady rate;
//!   time from each write to the change showing in both targets; the run
//!   profiles they cost; the time from a finished run to the start of its
//!   follow-up (from run history).
//! - `idle`: three MAs, each with a file watch, and no change: run profiles
//!   executed and CPU used by the service.
//! - `vs-fixed-order`: the same workload once with the service and once with
//!   a fixed-order scheduler (import all, sync all, export all, every T) on
//!   the same engine, in this process.
//!
//! The service is the real binary (`autosync -c ... run`), as users run it.

use crate::service_proc::{self, ServiceProc};
use crate::workload::{self, Driven, HrFile, Kind, Measured, Tracker, Workload, WriteMode};
use anyhow::{Context as _, bail};
use autosync_connector::Registry;
use autosync_engine::{CancelFlag, Engine, RunOptions};
use autosync_model::{RunReason, RunStatus};
use autosync_store::Store;
use autosync_store::sqlite::SqliteStore;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What every controller scenario needs.
pub struct Common {
    /// The `autosync` binary.
    pub autosync: PathBuf,
    /// The quickstart folder to copy (configuration and HR file).
    pub example: PathBuf,
    /// Keep the working folders (printed on stderr).
    pub keep: bool,
}

/// The quickstart folder of this repository.
pub fn default_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart")
}

/// A run that did its work (an export with nothing to send included).
fn ok(status: RunStatus) -> bool {
    matches!(status, RunStatus::Success | RunStatus::CompletedNoObjects)
}

/// The store of the quickstart's configuration, relative to its folder.
const QUICKSTART_STORE: &str = "state/autosync.db";

/// Longest time for the service to settle (first start included).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// No run for this long (with nothing queued) = quiescent. Longer than the
/// default file-watch debounce (1 s).
const SETTLE: Duration = Duration::from_millis(2_000);

/// Nearest-rank percentile of `v` (sorted in place), `None` when empty.
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (p * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!(round3(x)))
}

/// A working folder: deleted at the end, or kept (and printed) with
/// `--keep`, also when the scenario fails.
struct Work {
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Work {
    fn new(prefix: &str, keep: bool) -> anyhow::Result<Work> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        if keep {
            let path = dir.keep();
            eprintln!("working folder (kept): {}", path.display());
            Ok(Work { _dir: None, path })
        } else {
            Ok(Work {
                path: dir.path().to_path_buf(),
                _dir: Some(dir),
            })
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// People in the quickstart's HR file.
pub fn people(c: &Common) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(c.example.join("data/hr.csv"))
        .with_context(|| format!("cannot read {}", c.example.join("data/hr.csv").display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count())
}

fn latencies_ms(d: &Driven) -> Vec<f64> {
    d.measured
        .iter()
        .map(|m| m.latency.as_secs_f64() * 1000.0)
        .collect()
}

/// `{ "changes", "p50_ms", "max_ms" }` of the measured changes that `keep`
/// selects.
fn summary_of(d: &Driven, keep: impl Fn(&Measured) -> bool) -> Value {
    let mut v: Vec<f64> = d
        .measured
        .iter()
        .filter(|m| keep(m))
        .map(|m| m.latency.as_secs_f64() * 1000.0)
        .collect();
    let n = v.len();
    json!({ "changes": n, "p50_ms": ms(percentile(&mut v, 0.5)), "max_ms": ms(percentile(&mut v, 1.0)) })
}

fn by_kind(d: &Driven) -> Value {
    let mut out = serde_json::Map::new();
    for kind in [Kind::Add, Kind::Change, Kind::Terminate] {
        out.insert(kind.as_str().into(), summary_of(d, |m| m.kind == kind));
    }
    Value::Object(out)
}

fn by_write(d: &Driven) -> Value {
    let mut out = serde_json::Map::new();
    for mode in [WriteMode::Rename, WriteMode::InPlace] {
        out.insert(mode.as_str().into(), summary_of(d, |m| m.mode == mode));
    }
    Value::Object(out)
}

/// The service on a copy of the quickstart, the workload against it.
struct ControllerOutcome {
    driven: Driven,
    /// Run profiles from the first write until the service was quiescent again.
    runs: usize,
    /// Per follow-up: (the controller's overhead, the whole wait from its cause's end).
    overheads_ms: Vec<(f64, f64)>,
}

fn controller_run(c: &Common, root: &Path, w: Workload) -> anyhow::Result<ControllerOutcome> {
    workload::copy_quickstart(&c.example, root)?;
    let cfg = root.join("autosync.toml");
    let mut service = ServiceProc::start(
        &c.autosync,
        &cfg,
        &root.join(QUICKSTART_STORE),
        &root.join("service.log"),
    )?;
    service.wait_quiescent(SETTLE, SETTLE_TIMEOUT)?;
    let baseline = service.history()?.last().map_or(0, |r| r.id);
    let mut hr = HrFile::open(&root.join("data/hr.csv"))?;
    let mut tracker = Tracker::new(root);
    let driven = workload::drive(&mut hr, &mut tracker, w)?;
    service.wait_quiescent(SETTLE, SETTLE_TIMEOUT)?;
    let all = service.history()?;
    service.stop()?;
    let window = service_proc::runs_after(&all, baseline);
    if let Some(bad) = window.iter().find(|r| !ok(r.status)) {
        eprintln!(
            "note: run {} ({} {}) ended {}",
            bad.id, bad.ma, bad.profile, bad.status
        );
    }
    let overheads_ms = service_proc::follow_up_overheads(&all, &window);
    Ok(ControllerOutcome {
        driven,
        runs: window.len(),
        overheads_ms,
    })
}

/// Scenario `quickstart`: returns (results, bars).
pub fn quickstart(c: &Common, w: Workload) -> anyhow::Result<(Value, Value)> {
    let dir = Work::new("autosync-bench-quickstart-", c.keep)?;
    let out = controller_run(c, dir.path(), w)?;
    let mut lat = latencies_ms(&out.driven);
    let mut over: Vec<f64> = out.overheads_ms.iter().map(|o| o.0).collect();
    let mut waits: Vec<f64> = out.overheads_ms.iter().map(|o| o.1).collect();
    let p99 = percentile(&mut lat, 0.99);
    let fu_p99 = percentile(&mut over, 0.99);
    let results = json!({
        "changes": out.driven.measured.len(),
        "interval_ms": w.interval.as_millis() as u64,
        "p50_ms": ms(percentile(&mut lat, 0.5)),
        "p99_ms": ms(p99),
        "max_ms": ms(percentile(&mut lat, 1.0)),
        "by_kind": by_kind(&out.driven),
        "by_write": by_write(&out.driven),
        "run_profiles": out.runs,
        "follow_ups": over.len(),
        "follow_up_p50_ms": ms(percentile(&mut over, 0.5)),
        "follow_up_p99_ms": ms(fu_p99),
        "follow_up_max_ms": ms(percentile(&mut over, 1.0)),
        "follow_up_wait_p50_ms": ms(percentile(&mut waits, 0.5)),
        "follow_up_wait_p99_ms": ms(percentile(&mut waits, 0.99)),
        "follow_up_wait_max_ms": ms(percentile(&mut waits, 1.0)),
    });
    let bars = json!({
        "p99_ms": { "bar": 1000, "met": p99.is_some_and(|x| x <= 1000.0) },
        "follow_up_p99_ms": { "bar": 5, "met": fu_p99.is_some_and(|x| x <= 5.0) },
    });
    Ok((results, bars))
}

/// The file-watch triggers the `idle` scenario adds to the quickstart's
/// targets (the source `hr` keeps its own, or the default one).
const IDLE_TRIGGERS: [(&str, &str); 2] = [
    ("app", "data/app.db"),
    ("directory", "data/directory.jsonl"),
];

/// Adds a file watch on its own file to each target MA of the copied
/// quickstart configuration.
fn add_idle_triggers(cfg: &Path) -> anyhow::Result<()> {
    let mut text =
        std::fs::read_to_string(cfg).with_context(|| format!("cannot read {}", cfg.display()))?;
    for (ma, file) in IDLE_TRIGGERS {
        let line = format!("name = \"{ma}\"\n");
        if !text.contains(&line) {
            bail!("{}: no MA `{ma}`", cfg.display());
        }
        text = text.replacen(
            &line,
            &format!(
                "{line}controller = {{ triggers = [{{ type = \"file-watch\", path = \"{file}\" }}] }}\n"
            ),
            1,
        );
    }
    std::fs::write(cfg, text).with_context(|| format!("cannot write {}", cfg.display()))
}

/// Scenario `idle`: returns (results, bars).
pub fn idle(c: &Common, seconds: f64) -> anyhow::Result<(Value, Value)> {
    let dir = Work::new("autosync-bench-idle-", c.keep)?;
    let root = dir.path();
    workload::copy_quickstart(&c.example, root)?;
    let cfg = root.join("autosync.toml");
    add_idle_triggers(&cfg)?;
    let mut service = ServiceProc::start(
        &c.autosync,
        &cfg,
        &root.join(QUICKSTART_STORE),
        &root.join("service.log"),
    )?;
    service.wait_quiescent(SETTLE, SETTLE_TIMEOUT)?;
    let baseline = service.history()?.last().map_or(0, |r| r.id);
    let cpu_before = service.cpu_time()?;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let cpu = service.cpu_time()?.saturating_sub(cpu_before);
    let wall = start.elapsed();
    let all = service.history()?;
    let pid = service.pid();
    service.stop()?;
    let runs = service_proc::runs_after(&all, baseline);
    let fraction = cpu.as_secs_f64() / wall.as_secs_f64();
    let results = json!({
        "seconds": round3(wall.as_secs_f64()),
        "mas": 3,
        "file_watches": 3,
        "run_profiles": runs.len(),
        "runs": runs.iter().map(|r| format!("{} {} {} ({})", r.id, r.ma, r.profile, r.reason)).collect::<Vec<_>>(),
        "cpu_s": round3(cpu.as_secs_f64()),
        "cpu_fraction": (fraction * 1e5).round() / 1e5,
        "pid": pid,
    });
    let bars = json!({
        "run_profiles": { "bar": 0, "met": runs.is_empty() },
        "cpu_fraction": { "bar": 0.01, "met": fraction < 0.01 },
    });
    Ok((results, bars))
}

/// The fixed-order scheduler's profiles: every MA imports, then every MA
/// synchronises, then every MA exports (as a MIM script does).
const FIXED_STEPS: [&str; 3] = ["delta-import", "delta-sync", "export"];

fn fixed_cycle(engine: &Engine, mas: &[String], starts: &mut Vec<Instant>) -> anyhow::Result<()> {
    for profile in FIXED_STEPS {
        for ma in mas {
            starts.push(Instant::now());
            let record = engine
                .run_profile(
                    ma,
                    profile,
                    RunOptions {
                        reason: RunReason::Manual {
                            by: "bench fixed-order scheduler".into(),
                        },
                        progress: None,
                        cancel: CancelFlag::default(),
                        sync_batch: None,
                    },
                )
                .with_context(|| format!("{ma} {profile}"))?;
            if !ok(record.status) {
                eprintln!(
                    "note: fixed-order run {ma} {profile} ended {}",
                    record.status
                );
            }
        }
    }
    Ok(())
}

struct FixedOutcome {
    driven: Driven,
    runs: usize,
}

fn fixed_run(
    c: &Common,
    root: &Path,
    w: Workload,
    period: Duration,
) -> anyhow::Result<FixedOutcome> {
    workload::copy_quickstart(&c.example, root)?;
    let cfg = root.join("autosync.toml");
    let mut registry = Registry::new();
    autosync_connectors::register_all(&mut registry);
    let loaded = autosync_config::load(&cfg, &registry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let system = Arc::new(loaded.system);
    let mas: Vec<String> = system.mas.iter().map(|m| m.name.clone()).collect();
    let store = Arc::new(SqliteStore::open(
        &system.base_dir.join(&system.store.path),
    )?);
    let engine = Arc::new(Engine::new(
        system,
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::new(registry),
    )?);
    // Initial load, then a cycle that confirms it.
    let mut warmup = Vec::new();
    fixed_cycle(&engine, &mas, &mut warmup)?;
    fixed_cycle(&engine, &mas, &mut warmup)?;

    let stop = Arc::new(AtomicBool::new(false));
    let scheduler = {
        let (engine, mas, stop) = (Arc::clone(&engine), mas.clone(), Arc::clone(&stop));
        std::thread::spawn(move || -> anyhow::Result<Vec<Instant>> {
            let mut starts = Vec::new();
            let begin = Instant::now();
            let mut k: u32 = 0;
            while !stop.load(Ordering::Relaxed) {
                let next = begin + period * k;
                let now = Instant::now();
                if next > now {
                    // Short naps so that a stop is seen promptly.
                    std::thread::sleep((next - now).min(Duration::from_millis(20)));
                    continue;
                }
                fixed_cycle(&engine, &mas, &mut starts)?;
                k += 1;
                // A cycle longer than the period starts the next at once.
                while begin + period * k + period < Instant::now() {
                    k += 1;
                }
            }
            Ok(starts)
        })
    };
    let start = Instant::now();
    let mut hr = HrFile::open(&root.join("data/hr.csv"))?;
    let mut tracker = Tracker::new(root);
    let driven = workload::drive(&mut hr, &mut tracker, w);
    let end = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let starts = scheduler
        .join()
        .map_err(|_| anyhow::anyhow!("the fixed-order scheduler thread panicked"))??;
    let driven = driven?;
    let runs = starts.iter().filter(|t| **t >= start && **t <= end).count();
    Ok(FixedOutcome { driven, runs })
}

/// Scenario `vs-fixed-order`: returns (results, bars).
pub fn vs_fixed_order(c: &Common, w: Workload, period: Duration) -> anyhow::Result<(Value, Value)> {
    let cdir = Work::new("autosync-bench-vs-controller-", c.keep)?;
    let controller = controller_run(c, cdir.path(), w)?;
    let fdir = Work::new("autosync-bench-vs-fixed-", c.keep)?;
    let fixed = fixed_run(c, fdir.path(), w, period)?;

    let mut clat = latencies_ms(&controller.driven);
    let mut flat = latencies_ms(&fixed.driven);
    let cp50 = percentile(&mut clat, 0.5);
    let fp50 = percentile(&mut flat, 0.5);
    let changes = controller.driven.measured.len();
    let per_change = |runs: usize| {
        if changes == 0 {
            Value::Null
        } else {
            json!(round3(runs as f64 / changes as f64))
        }
    };
    let results = json!({
        "changes": changes,
        "interval_ms": w.interval.as_millis() as u64,
        "fixed_interval_ms": period.as_millis() as u64,
        "controller_runs": controller.runs,
        "fixed_runs": fixed.runs,
        "controller_runs_per_change": per_change(controller.runs),
        "fixed_runs_per_change": per_change(fixed.runs),
        "runs_ratio_controller_to_fixed": if fixed.runs == 0 { Value::Null } else { json!(round3(controller.runs as f64 / fixed.runs as f64)) },
        "controller_p50_ms": ms(cp50),
        "fixed_p50_ms": ms(fp50),
        "controller_max_ms": ms(percentile(&mut clat, 1.0)),
        "fixed_max_ms": ms(percentile(&mut flat, 1.0)),
        "p50_ratio_fixed_to_controller": match (cp50, fp50) {
            (Some(cp), Some(fp)) if cp > 0.0 => json!(round3(fp / cp)),
            _ => Value::Null,
        },
    });
    Ok((results, Value::Null))
}
