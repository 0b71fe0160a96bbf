//! Progress of a running profile: a bar with counts and rate on a terminal,
//! plain lines otherwise (CI logs, pipes), nothing with `--json`.
//!
//! Plain lines: one when a step starts, one every [`LINE_EVERY`] while it
//! runs (objects so far and the rate), and one when it ends (its status,
//! objects and rate), so a long step in a log is never silent.
//!
//! A step that waits before it starts (a sync step while another process
//! syncs) says so on stderr in every mode, even `--json` and
//! `--no-progress`: a command that seems to hang must say why.

use autosync_engine::ProgressSink;
use autosync_model::{StepRecord, StepType};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a running step prints a plain progress line.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Where progress goes.
pub enum Progress {
    Bar(Mutex<Option<ProgressBar>>),
    Lines(Mutex<Lines>),
    Quiet,
}

/// Plain progress lines and what the current step has shown.
pub struct Lines {
    out: Box<dyn Write + Send>,
    every: Duration,
    step: Option<(usize, StepType)>,
    started: Instant,
    last_line: Instant,
    processed: u64,
}

impl Lines {
    pub fn new(out: Box<dyn Write + Send>, every: Duration) -> Lines {
        let now = Instant::now();
        Lines {
            out,
            every,
            step: None,
            started: now,
            last_line: now,
            processed: 0,
        }
    }

    /// `N objects in S s, R/s`: the step's count, time and rate so far.
    fn counts(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.processed as f64 / secs
        } else {
            0.0
        };
        format!("{} objects in {secs:.1} s, {rate:.0}/s", self.processed)
    }

    fn line(&mut self, text: &str) {
        // Progress is a courtesy: a closed stderr must not fail the run.
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}

pub fn sink(quiet: bool) -> Arc<Progress> {
    Arc::new(if quiet {
        Progress::Quiet
    } else if std::io::stderr().is_terminal() {
        Progress::Bar(Mutex::new(None))
    } else {
        Progress::Lines(Mutex::new(Lines::new(
            Box::new(std::io::stderr()),
            LINE_EVERY,
        )))
    })
}

impl Progress {
    pub fn finish(&self) {
        if let Progress::Bar(b) = self
            && let Ok(mut b) = b.lock()
            && let Some(bar) = b.take()
        {
            bar.finish_and_clear();
        }
    }
}

impl ProgressSink for Progress {
    fn step_started(&self, index: usize, step: StepType, expected: Option<u64>) {
        match self {
            Progress::Bar(b) => {
                let bar = match expected {
                    Some(n) => ProgressBar::new(n),
                    None => ProgressBar::new_spinner(),
                };
                bar.set_draw_target(ProgressDrawTarget::stderr());
                let template = if expected.is_some() {
                    "{prefix:>14} [{bar:30}] {pos}/{len} objects, {per_sec}, {elapsed}"
                } else {
                    "{prefix:>14} {spinner} {pos} objects, {per_sec}, {elapsed}"
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(format!("{}. {}", index + 1, step));
                if let Ok(mut slot) = b.lock()
                    && let Some(old) = slot.replace(bar)
                {
                    old.finish_and_clear();
                }
            }
            Progress::Lines(l) => {
                if let Ok(mut l) = l.lock() {
                    let now = Instant::now();
                    l.step = Some((index, step));
                    l.started = now;
                    l.last_line = now;
                    l.processed = 0;
                    l.line(&format!("step {}: {step} started", index + 1));
                }
            }
            Progress::Quiet => {}
        }
    }

    fn advanced(&self, processed: u64) {
        match self {
            Progress::Bar(b) => {
                if let Ok(b) = b.lock()
                    && let Some(bar) = b.as_ref()
                {
                    bar.set_position(processed);
                }
            }
            Progress::Lines(l) => {
                if let Ok(mut l) = l.lock() {
                    l.processed = processed;
                    if let Some((index, step)) = l.step
                        && l.last_line.elapsed() >= l.every
                    {
                        l.last_line = Instant::now();
                        let text = format!("step {}: {step}: {}", index + 1, l.counts());
                        l.line(&text);
                    }
                }
            }
            Progress::Quiet => {}
        }
    }

    fn waiting(&self, index: usize, step: StepType, why: &str) {
        let text = format!("step {}: {step}: {why}", index + 1);
        match self {
            Progress::Bar(b) => {
                let bar = ProgressBar::new_spinner();
                bar.set_draw_target(ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                    bar.set_style(style);
                }
                bar.set_message(text);
                bar.enable_steady_tick(Duration::from_millis(200));
                if let Ok(mut slot) = b.lock()
                    && let Some(old) = slot.replace(bar)
                {
                    old.finish_and_clear();
                }
            }
            Progress::Lines(l) => {
                if let Ok(mut l) = l.lock() {
                    l.line(&text);
                }
            }
            Progress::Quiet => {
                let mut err = std::io::stderr();
                let _ = writeln!(err, "{text}");
            }
        }
    }

    fn step_finished(&self, index: usize, record: &StepRecord) {
        match self {
            Progress::Bar(b) => {
                if let Ok(mut b) = b.lock()
                    && let Some(bar) = b.take()
                {
                    bar.finish_and_clear();
                }
            }
            Progress::Lines(l) => {
                if let Ok(mut l) = l.lock() {
                    let text = format!(
                        "step {}: {} finished: {}, {}",
                        index + 1,
                        record.step_type,
                        record.status,
                        l.counts()
                    );
                    l.step = None;
                    l.line(&text);
                }
            }
            Progress::Quiet => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_model::{ImportCounters, RunStatus, StepCounters};

    /// A `Write` whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record() -> StepRecord {
        StepRecord {
            step_type: StepType::FullImport,
            status: RunStatus::Success,
            started_at: chrono::Utc::now(),
            ended_at: None,
            counters: StepCounters::Import(ImportCounters::default()),
            errors: 0,
            message: None,
        }
    }

    /// The lines a step with two progress reports prints.
    fn lines(every: Duration) -> Vec<String> {
        let out = Shared::default();
        let p = Progress::Lines(Mutex::new(Lines::new(Box::new(out.clone()), every)));
        p.step_started(0, StepType::FullImport, None);
        p.advanced(1000);
        p.advanced(2500);
        p.step_finished(0, &record());
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn plain_lines_should_show_counts_and_rate_while_a_step_runs_and_when_it_ends() {
        let got = lines(Duration::ZERO);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert_eq!(got[0], "step 1: full-import started");
        assert!(
            got[1].starts_with("step 1: full-import: 1000 objects in "),
            "{got:#?}"
        );
        assert!(
            got[2].starts_with("step 1: full-import: 2500 objects in "),
            "{got:#?}"
        );
        assert!(
            got[3].starts_with("step 1: full-import finished: success, 2500 objects in "),
            "{got:#?}"
        );
        assert!(got[1..].iter().all(|l| l.ends_with("/s")), "{got:#?}");
    }

    #[test]
    fn plain_lines_should_say_what_a_step_waits_for_before_it_starts() {
        let out = Shared::default();
        let p = Progress::Lines(Mutex::new(Lines::new(
            Box::new(out.clone()),
            Duration::from_secs(3600),
        )));
        p.waiting(
            0,
            StepType::FullSync,
            "waiting for the sync of `hr` in process 1234 (run 17)",
        );
        p.step_started(0, StepType::FullSync, Some(10));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "step 1: full-sync: waiting for the sync of `hr` in process 1234 (run 17)\nstep 1: full-sync started\n"
        );
    }

    #[test]
    fn plain_lines_should_wait_their_interval_between_progress_lines() {
        let got = lines(Duration::from_secs(3600));
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[1].contains("finished: success, 2500 objects"),
            "{got:#?}"
        );
    }
}
