//! Progress of a running profile: a bar with counts and rate on a terminal,
//! plain lines otherwise (CI logs, pipes), nothing with `--json`.

use autosync_engine::ProgressSink;
use autosync_model::{StepRecord, StepType};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// Where progress goes.
pub enum Progress {
    Bar(Mutex<Option<ProgressBar>>),
    Lines,
    Quiet,
}

pub fn sink(quiet: bool) -> Arc<Progress> {
    Arc::new(if quiet {
        Progress::Quiet
    } else if std::io::stderr().is_terminal() {
        Progress::Bar(Mutex::new(None))
    } else {
        Progress::Lines
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
            Progress::Lines => eprintln!("step {}: {} started", index + 1, step),
            Progress::Quiet => {}
        }
    }

    fn advanced(&self, processed: u64) {
        if let Progress::Bar(b) = self
            && let Ok(b) = b.lock()
            && let Some(bar) = b.as_ref()
        {
            bar.set_position(processed);
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
            Progress::Lines => eprintln!(
                "step {}: {} finished: {}",
                index + 1,
                record.step_type,
                record.status
            ),
            Progress::Quiet => {}
        }
    }
}
