//! Scenario `status-under-load`: how fast the running service answers
//! `GET /api/v1/status` while it is busy.
//!
//! N people are imported, synchronised and exported in this process (the
//! `engine` scenario's configuration), then the real service
//! (`autosync -c ... run`) starts on that store. A client thread asks for
//! the status over the HTTP API every 5 ms, one request at a time, and
//! records each answer's latency from when the request was due, while:
//!
//! 1. `sync`: the service runs a full sync of `hr` (every one of the N
//!    connector-space objects read and evaluated again), asked for through
//!    `POST /api/v1/queue`;
//! 2. `locked`: another process (this one) holds the store's write lock
//!    (`BEGIN IMMEDIATE`) for a few seconds, and a request is queued in the
//!    middle of it (so the service has something to persist).
//!
//! Each window reports the count and the p50, p99 and largest latency of
//! the answers that started in it. The bar (issue 18): p99 ≤ 5 ms in both.

use crate::controller_scenarios::percentile;
use crate::engine_scenario;
use crate::service_proc::ServiceProc;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The bar on the status answer's p99, in ms.
const P99_BAR_MS: f64 = 5.0;
/// Time between two status requests (when the last one was answered in time).
const INTERVAL: Duration = Duration::from_millis(5);
/// How long the other process holds the store's write lock.
const LOCK_HOLD: Duration = Duration::from_secs(4);

/// One status answer: when its request started, how long it took, whether
/// it succeeded.
struct Sample {
    at: SystemTime,
    latency_ms: f64,
    ok: bool,
}

/// The service's API, from `api.json` next to the store.
struct Api {
    url: String,
    auth: String,
    agent: ureq::Agent,
}

impl Api {
    fn wait_for(store: &Path, timeout: Duration) -> anyhow::Result<Api> {
        let file = store.with_file_name("api.json");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && let (Some(url), Some(token)) = (v["url"].as_str(), v["token"].as_str())
            {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                return Ok(Api {
                    url: url.to_owned(),
                    auth: format!("Bearer {token}"),
                    agent,
                });
            }
            if start.elapsed() > timeout {
                bail!("the service wrote no {} within {timeout:?}", file.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn status(&self) -> anyhow::Result<Value> {
        let mut answer = self
            .agent
            .get(format!("{}/api/v1/status", self.url))
            .header("Authorization", &self.auth)
            .call()
            .context("GET /api/v1/status")?;
        let ok = answer.status().is_success();
        let text = answer
            .body_mut()
            .read_to_string()
            .context("read the status answer")?;
        if !ok {
            bail!("GET /api/v1/status answered {}", text);
        }
        Ok(serde_json::from_str(&text)?)
    }

    fn queue(&self, ma: &str, profile: &str) -> anyhow::Result<()> {
        let body = json!({ "ma": ma, "profile": profile }).to_string();
        let mut answer = self
            .agent
            .post(format!("{}/api/v1/queue", self.url))
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .context("POST /api/v1/queue")?;
        if !answer.status().is_success() {
            let text = answer.body_mut().read_to_string().unwrap_or_default();
            bail!("POST /api/v1/queue {ma} {profile} answered {text}");
        }
        Ok(())
    }
}

/// Asks for the status until `stop`, one request at a time, on a fixed
/// schedule (one every [`INTERVAL`]): each latency counts from the time
/// the request was due, not from when it could be sent, so that an answer
/// held up for a second counts for every request that should have gone out
/// meanwhile (no "coordinated omission": a client that waits would
/// otherwise send, and measure, fewer requests exactly while the service
/// is slow).
fn poll(api: &Api, stop: &AtomicBool) -> Vec<Sample> {
    let mut out = Vec::new();
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let mut k: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = t0 + INTERVAL * k;
        k += 1;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let ok = api.status().is_ok();
        out.push(Sample {
            at: wall0 + (due - t0),
            latency_ms: due.elapsed().as_secs_f64() * 1000.0,
            ok,
        });
    }
    out
}

/// The figures of the samples that started within `from..to`.
fn window(samples: &[Sample], from: SystemTime, to: SystemTime) -> Value {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to)
        .collect();
    let failed = inside.iter().filter(|s| !s.ok).count();
    let mut ms: Vec<f64> = inside.iter().map(|s| s.latency_ms).collect();
    let p99 = percentile(&mut ms, 0.99);
    json!({
        "requests": inside.len(),
        "failed": failed,
        "seconds": to.duration_since(from).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "p50_ms": percentile(&mut ms, 0.50),
        "p99_ms": p99,
        "max_ms": ms.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
    })
}

/// The newest run of `ma` with `profile` that started after `after`, once
/// it ended: its start and end.
fn ended_run(
    svc: &ServiceProc,
    ma: &str,
    profile: &str,
    after: SystemTime,
    timeout: Duration,
) -> anyhow::Result<(SystemTime, SystemTime)> {
    let start = Instant::now();
    loop {
        let runs = svc.history()?;
        let found = runs.iter().rev().find(|r| {
            r.ma == ma && r.profile == profile && SystemTime::from(r.started_at) >= after
        });
        if let Some(run) = found
            && let Some(ended) = run.ended_at
        {
            if run.status.is_stopped() {
                bail!("{ma} {profile} ended {}", run.status);
            }
            return Ok((SystemTime::from(run.started_at), SystemTime::from(ended)));
        }
        if start.elapsed() > timeout {
            bail!("{ma} {profile} did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run the scenario: the results and the bars.
pub fn run(autosync: &Path, objects: u64, keep: bool) -> anyhow::Result<(Value, Value)> {
    let dir = tempfile::Builder::new()
        .prefix("autosync-bench-status-")
        .tempdir()?;
    let root: PathBuf = dir.path().to_path_buf();
    let prepared = Instant::now();
    let store = engine_scenario::prepare(&root, objects)?;
    let prepare_s = prepared.elapsed().as_secs_f64();
    let config = root.join("autosync.toml");
    let log = root.join("service.log");
    let mut svc = ServiceProc::start(autosync, &config, &store, &log)?;
    svc.wait_quiescent(Duration::from_secs(2), Duration::from_secs(600))?;
    let api = Arc::new(Api::wait_for(&store, Duration::from_secs(60))?);
    api.status().context("the first status request")?;

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (api, stop) = (Arc::clone(&api), Arc::clone(&stop));
        std::thread::spawn(move || poll(&api, &stop))
    };
    type Window = (SystemTime, SystemTime);
    let mut run = || -> anyhow::Result<(Window, Window)> {
        // 1. A full sync of every object.
        let asked = SystemTime::now();
        api.queue("hr", "full-sync")?;
        let sync = ended_run(&svc, "hr", "full-sync", asked, Duration::from_secs(1800))?;
        svc.wait_quiescent(Duration::from_secs(2), Duration::from_secs(600))?;

        // 2. Another process holds the store's write lock; a request is
        // queued in the middle of it.
        let conn = rusqlite::Connection::open(&store)
            .with_context(|| format!("cannot open {}", store.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.execute_batch("BEGIN IMMEDIATE")
            .context("cannot take the store's write lock")?;
        let lock_from = SystemTime::now();
        std::thread::sleep(LOCK_HOLD / 2);
        // Its answer may wait for the lock: asked from another thread.
        let queued = {
            let api = Arc::clone(&api);
            std::thread::spawn(move || api.queue("app", "export"))
        };
        std::thread::sleep(LOCK_HOLD / 2);
        let lock_to = SystemTime::now();
        conn.execute_batch("ROLLBACK")?;
        drop(conn);
        queued
            .join()
            .map_err(|_| anyhow::anyhow!("the queue request's thread panicked"))??;
        svc.wait_quiescent(Duration::from_secs(2), Duration::from_secs(600))?;
        Ok((sync, (lock_from, lock_to)))
    };
    let outcome = run();
    stop.store(true, Ordering::Relaxed);
    let samples = poller
        .join()
        .map_err(|_| anyhow::anyhow!("the status client thread panicked"))?;
    let ((sync_from, sync_to), (lock_from, lock_to)) = outcome?;
    svc.stop()?;

    let sync = window(&samples, sync_from, sync_to);
    let locked = window(&samples, lock_from, lock_to);
    let met = |w: &Value| {
        w["requests"].as_u64().unwrap_or(0) > 0
            && w["failed"].as_u64() == Some(0)
            && w["p99_ms"].as_f64().is_some_and(|p| p <= P99_BAR_MS)
    };
    let bars = json!({
        "status_p99_ms_during_full_sync": { "bar": P99_BAR_MS, "met": met(&sync) },
        "status_p99_ms_while_store_locked": { "bar": P99_BAR_MS, "met": met(&locked) },
    });
    let results = json!({
        "prepare_s": prepare_s,
        "during_full_sync": sync,
        "while_store_locked": locked,
        "requests_total": samples.len(),
    });
    if keep {
        let kept = dir.keep();
        eprintln!("working folder kept: {}", kept.display());
    }
    Ok((results, bars))
}
