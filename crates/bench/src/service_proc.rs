//! The real service: `autosync -c <config> run`, started as a child process
//! the way a user runs it, watched through `autosync status --json` and
//! `autosync history --json`, and stopped with SIGTERM (gracefully).

use anyhow::{Context as _, bail};
use autosync_model::{RunReason, RunRecord, StepType};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the `autosync` binary is: `--autosync`, else `$AUTOSYNC`, else next
/// to this program (cargo puts both in `target/<profile>/`).
pub fn find_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given.or_else(|| std::env::var_os("AUTOSYNC").map(PathBuf::from)) {
        Some(p) => p,
        None => std::env::current_exe()
            .context("cannot find this program's path")?
            .with_file_name(format!("autosync{}", std::env::consts::EXE_SUFFIX)),
    };
    if !path.is_file() {
        bail!(
            "no autosync binary at {} (build it with `cargo build --release -p autosync`, or pass --autosync PATH)",
            path.display()
        );
    }
    Ok(path)
}

/// A running service.
pub struct ServiceProc {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// `api.json`, written next to the store once the service serves.
    api_file: PathBuf,
    child: Option<Child>,
    pid: u32,
}

impl ServiceProc {
    /// Starts `autosync -c config run`, its output going to `log`.
    /// `store` is the store's path (its folder receives `api.json`).
    pub fn start(
        bin: &Path,
        config: &Path,
        store: &Path,
        log: &Path,
    ) -> anyhow::Result<ServiceProc> {
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cannot share {}", log.display()))?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(config)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {} run", bin.display()))?;
        Ok(ServiceProc {
            bin: bin.to_path_buf(),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            api_file: store.with_file_name("api.json"),
            pid: child.id(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run autosync {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "autosync {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout)
            .with_context(|| format!("autosync {}: output is not UTF-8", args.join(" ")))
    }

    /// Fails with the end of the service's log if it has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().context("cannot check the service")?
        {
            self.child = None;
            bail!(
                "the service exited ({status}); end of its log {}:\n{}",
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Waits until the service answers, nothing runs, every queue is empty
    /// and no run started or ended for `settle` (longer than any trigger's
    /// debounce, so a pending file-watch request has fired).
    pub fn wait_quiescent(&mut self, settle: Duration, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut last: Option<(String, Instant)> = None;
        loop {
            self.check_alive()?;
            if start.elapsed() > timeout {
                bail!(
                    "the service did not settle within {timeout:?}; log {}",
                    self.log.display()
                );
            }
            // Until the service has written its API file, `status` would
            // open the store itself, racing the service's creation of it
            // (the store's schema check is not atomic with its creation).
            if !self.api_file.is_file() {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let status: serde_json::Value = self
                .cli(&["status", "--json"])
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(serde_json::Value::Null);
            let idle = status["service"].as_bool() == Some(true)
                && status["mas"].as_object().is_some_and(|mas| {
                    mas.values().all(|m| {
                        m["state"].as_str() == Some("idle")
                            && m["queue"].as_array().is_some_and(Vec::is_empty)
                    })
                });
            if idle {
                // The last run of each MA, with its end: nothing new = settled.
                let key: String = status["mas"]
                    .as_object()
                    .map(|mas| {
                        mas.iter()
                            .map(|(k, m)| {
                                format!(
                                    "{k}:{}:{};",
                                    m["last_run"]["id"], m["last_run"]["ended_at"]
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                match &last {
                    Some((k, since)) if *k == key => {
                        if since.elapsed() >= settle {
                            return Ok(());
                        }
                    }
                    _ => last = Some((key, Instant::now())),
                }
            } else {
                last = None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every run in the store, oldest first.
    pub fn history(&self) -> anyhow::Result<Vec<RunRecord>> {
        let text = self.cli(&["history", "--json", "--limit", "100000000"])?;
        let mut runs: Vec<RunRecord> =
            serde_json::from_str(&text).context("cannot read `autosync history --json`")?;
        runs.sort_by_key(|r| r.id);
        Ok(runs)
    }

    /// CPU time (user + system, all threads) the service used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time_of(self.pid)
    }

    /// SIGTERM, then wait (SIGKILL after 30 s).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let start = Instant::now();
        loop {
            if child
                .try_wait()
                .context("cannot wait for the service")?
                .is_some()
            {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the service did not stop within 30 s of SIGTERM; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServiceProc {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Clock ticks per second of /proc times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

/// utime + stime of a process, from /proc/PID/stat.
pub fn cpu_time_of(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{path}: no field {}", i + 3))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// Runs after `after` (by id), in id order.
pub fn runs_after(runs: &[RunRecord], after: i64) -> Vec<&RunRecord> {
    runs.iter().filter(|r| r.id > after).collect()
}

/// For every follow-up run among `runs` whose cause is known and ended:
/// (the controller's own overhead, the whole wait), in ms. The wait runs
/// from the cause's end to the follow-up's start. The overhead runs from
/// the moment the follow-up could start: the later of its cause's end and
/// the end of the last run, ended in between, that it may not overlap in
/// the default run mode (`supported`): a run of its own MA, any run when it
/// syncs, a sync when it imports or exports (a waiting sync also holds the
/// requests behind it). Waiting for those is the exclusivity the
/// controller keeps on purpose, not its overhead.
pub fn follow_up_overheads(all: &[RunRecord], runs: &[&RunRecord]) -> Vec<(f64, f64)> {
    let by_id: BTreeMap<i64, &RunRecord> = all.iter().map(|r| (r.id, r)).collect();
    runs.iter()
        .filter_map(|r| match &r.reason {
            RunReason::FollowUp { run_id, .. } => {
                let cause = by_id.get(run_id)?;
                let ended = cause.ended_at?;
                let ready = all
                    .iter()
                    .filter(|x| x.id != r.id && x.started_at < r.started_at)
                    .filter_map(|x| {
                        x.ended_at
                            .filter(|e| *e > ended && *e <= r.started_at)
                            .map(|e| (x, e))
                    })
                    .filter(|(x, _)| x.ma == r.ma || syncs(r) || syncs(x))
                    .map(|(_, e)| e)
                    .fold(ended, |a, b| a.max(b));
                let (over, wait) = (r.started_at - ready, r.started_at - ended);
                Some((
                    over.num_microseconds()? as f64 / 1000.0,
                    wait.num_microseconds()? as f64 / 1000.0,
                ))
            }
            _ => None,
        })
        .collect()
}

/// Whether a run has a sync step.
fn syncs(r: &RunRecord) -> bool {
    r.steps
        .iter()
        .any(|s| matches!(s.step_type, StepType::FullSync | StepType::DeltaSync))
}
