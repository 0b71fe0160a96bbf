//! The real service for end-to-end tests: `autosync -c CONFIG run ARGS`
//! as a child process, the way a user starts it, its log (stderr) kept
//! as it comes, signals sent by name, and stopped (SIGTERM, then SIGKILL
//! after a while) when dropped.

use crate::KitError;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a dropped service has to end after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// A running `autosync run`.
pub struct ServiceProcess {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServiceProcess {
    /// Starts `bin -c config run args` with the log at `info`, without
    /// colour, without `AUTOSYNC_CONFIG` from the test's environment.
    pub fn start(bin: &Path, config: &Path, args: &[&str]) -> Result<ServiceProcess, KitError> {
        Self::start_with_env(bin, config, args, &[])
    }

    /// [`ServiceProcess::start`] with more environment variables.
    pub fn start_with_env(
        bin: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<ServiceProcess, KitError> {
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(config)
            .arg("run")
            .args(args)
            .env_remove("AUTOSYNC_CONFIG")
            .env("AUTOSYNC_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| KitError::new(format!("cannot start {}: {e}", bin.display())))?;
        let log = Arc::new(Mutex::new(String::new()));
        let reader = child.stderr.take().map(|stderr| {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { return };
                    let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        });
        Ok(ServiceProcess { child, log, reader })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (polling every 20 ms, at most `timeout`) until `done` holds
    /// of the log; an error with the log when the service ended first or
    /// the time ran out.
    pub fn wait_log(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&str) -> bool,
    ) -> Result<(), KitError> {
        let start = Instant::now();
        loop {
            let log = self.log();
            if done(&log) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(KitError::new(format!(
                    "the service ended ({status}) while waiting for {what}; log:\n{log}"
                )));
            }
            if start.elapsed() > timeout {
                return Err(KitError::new(format!(
                    "gave up waiting for {what} after {timeout:?}; log:\n{log}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends signal `name` (`TERM`, `HUP`, `KILL`, ...).
    pub fn signal(&self, name: &str) -> Result<(), KitError> {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(KitError::new(format!(
                "kill -{name} {} failed",
                self.child.id()
            )))
        }
    }

    /// SIGTERM, then the exit code (`None`: ended by a signal) and the
    /// whole log.
    pub fn terminate(mut self) -> Result<(Option<i32>, String), KitError> {
        self.signal("TERM")?;
        let status = self.child.wait()?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Ok((status.code(), self.log()))
    }
}

impl ServiceProcess {
    /// SIGKILL, as a crash would end it, and wait until it is gone.
    pub fn kill(mut self) -> Result<(), KitError> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.signal("TERM");
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < STOP_WAIT {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
