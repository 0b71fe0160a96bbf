//! `autosync status` as text: one row per MA (name, state, queue length,
//! last run), then its queued requests and what wants an operator's eye
//! (failing triggers, objects with errors, a full sync needed). Columns
//! are as wide as their content; on a terminal, a state too long for the
//! room left (a waiting or failed MA's reason) wraps inside its column,
//! so the rows stay in line; piped, every state is kept whole on its row.

use autosync_controller::machine::{MaConfig, TriggerProblem};
use autosync_controller::resolve_profiles;
use autosync_model::StepType;
use autosync_service::{ControllerConfig, MaStateView, Status};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The run profiles an MA's hints name, as the controller resolves them
/// from the configuration (`[ma.run_profiles]`, `[ma.controller.profiles]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintProfiles {
    /// The profile that sends the MA's pending exports: its export (what
    /// the export follow-up runs), else its first profile with an export
    /// step; or why it has none.
    pub export: Result<String, String>,
    /// Every profile with an export step (one of them queued sends the
    /// pending exports).
    pub exporting: Vec<String>,
    /// The profile the service queues for a full sync (its first with a
    /// full-sync step), if any.
    pub full_sync: Option<String>,
}

/// Each MA's [`HintProfiles`], from the controller's configuration.
pub fn hint_profiles(config: &ControllerConfig) -> BTreeMap<String, HintProfiles> {
    config
        .mas
        .iter()
        .map(|(ma, m)| {
            let exporting: Vec<String> = m
                .info
                .profiles
                .iter()
                .filter(|(_, steps)| steps.contains(&StepType::Export))
                .map(|(p, _)| p.clone())
                .collect();
            let export = match resolve_profiles(&m.info, &m.profiles).export {
                Ok(p) => Ok(p),
                Err(_) => exporting.first().cloned().ok_or_else(|| {
                    let names: Vec<String> =
                        m.info.profiles.keys().map(|p| format!("`{p}`")).collect();
                    format!(
                        "none of its run profiles ({}) has an export step",
                        names.join(", ")
                    )
                }),
            };
            let full_sync = MaConfig::new(m.info.clone()).full_sync_profile();
            (
                ma.clone(),
                HintProfiles {
                    export,
                    exporting,
                    full_sync,
                },
            )
        })
        .collect()
}

/// `word` as one shell word: as it is when nothing in it is special to
/// a shell, else in single quotes (a profile named `Full Sync`).
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The width of the terminal standard output is, if it is one.
pub fn terminal_width() -> Option<usize> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return None;
    }
    terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
}

/// The narrowest the state column is made on a terminal (a narrower
/// terminal gets longer lines instead).
const MIN_STATE: usize = 24;

/// One MA's state in words.
fn render_state(state: &MaStateView) -> String {
    match state {
        MaStateView::Idle => "idle".to_owned(),
        MaStateView::Running {
            profile,
            step,
            step_index,
            processed,
            expected,
            ..
        } => {
            let mut text = format!("running {profile}");
            if let Some(step) = step {
                match step_index {
                    Some(i) => {
                        let _ = write!(text, ", step {} {step}", i + 1);
                    }
                    None => {
                        let _ = write!(text, ", {step}");
                    }
                }
            }
            match expected {
                Some(expected) => {
                    let _ = write!(text, " {processed}/{expected}");
                }
                None if *processed > 0 => {
                    let _ = write!(text, " {processed} objects");
                }
                None => {}
            }
            text
        }
        MaStateView::Waiting { reason } => reason.clone(),
        MaStateView::Stopped => "stopped".to_owned(),
        MaStateView::Disabled => "disabled".to_owned(),
        MaStateView::Failed {
            profile,
            status,
            attempts,
            next_retry,
            error,
            ..
        } => {
            let mut text = format!("failed: {profile} {status} after {attempts} attempt(s)");
            if let Some(error) = error {
                let _ = write!(text, " at {error}");
            }
            if let Some(at) = next_retry {
                let _ = write!(text, "; next try at {}", at.format("%H:%M:%S UTC"));
            }
            text
        }
        MaStateView::ThresholdExceeded { exceeded, .. } => format!(
            "threshold exceeded ({}): approve or reject",
            exceeded.join(", ")
        ),
        MaStateView::Queued => "queued".to_owned(),
    }
}

/// The first line of a status read from the store.
pub const FROM_STORE: &str = "from the store (no service running)";

/// The status as text; `width`: the terminal's, to wrap states to it;
/// `profiles`: each MA's profiles its hints name (`None`: the
/// configuration does not load, the hints name none).
pub fn render(
    status: &Status,
    width: Option<usize>,
    profiles: Option<&BTreeMap<String, HintProfiles>>,
) -> String {
    let mut out = String::new();
    let source = if status.service {
        "from the service"
    } else {
        FROM_STORE
    };
    let _ = writeln!(out, "{source}");
    if status.stopping {
        let _ = writeln!(
            out,
            "the service is stopping: nothing starts any more (the queued requests and retries below wait for its next start)"
        );
    }
    if let Some(m) = &status.maintenance {
        let _ = writeln!(
            out,
            "maintenance mode on since {} (by {}): no run starts",
            m.at.format("%Y-%m-%d %H:%M:%S UTC"),
            crate::output::one_line(&m.by)
        );
    }
    let rows: Vec<[String; 4]> = status
        .mas
        .iter()
        .map(|(ma, s)| {
            let mut state = render_state(&s.state);
            if s.paused {
                state.push_str(" (triggers paused)");
            }
            let last = s
                .last_run
                .as_ref()
                .map(|r| format!("{} {} ({})", r.profile, r.status, r.id))
                .unwrap_or_else(|| "none".to_owned());
            [ma.clone(), state, s.queue.len().to_string(), last]
        })
        .collect();
    let header = [
        "MA".to_owned(),
        "STATE".to_owned(),
        "QUEUED".to_owned(),
        "LAST RUN".to_owned(),
    ];
    let w = |i: usize| {
        rows.iter()
            .chain(std::iter::once(&header))
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (ma_w, queued_w, last_w) = (w(0), w(2), w(3));
    let mut state_w = w(1);
    if let Some(width) = width {
        // MA, two spaces, STATE, two spaces, QUEUED, two spaces, LAST RUN.
        let room = width.saturating_sub(ma_w + queued_w + last_w + 6);
        state_w = state_w.min(room.max(MIN_STATE));
    }
    let line = |out: &mut String, r: &[String; 4]| {
        let mut state = wrap(&r[1], state_w).into_iter();
        let first = state.next().unwrap_or_default();
        let text = format!(
            "{:<ma_w$}  {first:<state_w$}  {:>queued_w$}  {}",
            r[0], r[2], r[3]
        );
        let _ = writeln!(out, "{}", text.trim_end());
        for more in state {
            let _ = writeln!(out, "{:<ma_w$}  {more}", "");
        }
    };
    line(&mut out, &header);
    for ((ma, s), row) in status.mas.iter().zip(&rows) {
        line(&mut out, row);
        for q in &s.queue {
            let _ = writeln!(out, "  {} {}: {}", q.id, q.profile, q.reason);
        }
        for d in &s.deferred {
            let _ = writeln!(out, "  waiting for resume {}: {}", d.profile, d.reason);
        }
        if s.objects_with_errors > 0 {
            let n = s.objects_with_errors;
            let objects = if n == 1 { "object" } else { "objects" };
            let _ = writeln!(
                out,
                "  {n} {objects} with errors (an export refused, a record unreadable): `autosync cs {ma} --errors`"
            );
        }
        // Exports nothing is about to send (a cancelled or failed export
        // left them): said while the MA is idle with no export queued.
        let known = profiles.map(|p| p.get(ma));
        let export_queued = s.queue.iter().any(|q| match known {
            Some(Some(p)) => p.exporting.contains(&q.profile),
            Some(None) => false,
            None => q.profile.to_ascii_lowercase().contains("export"),
        });
        if s.pending_exports > 0 && matches!(s.state, MaStateView::Idle) && !export_queued {
            let n = s.pending_exports;
            let objects = if n == 1 { "object" } else { "objects" };
            let w = shell_word(ma);
            let queue = match known {
                Some(Some(HintProfiles {
                    export: Ok(export), ..
                })) => format!("queue one: `autosync queue {w} {}`", shell_word(export)),
                Some(Some(HintProfiles {
                    export: Err(why), ..
                })) => format!("the MA has no export profile to queue: {why}"),
                Some(None) => "the configuration names no such MA".to_owned(),
                None => format!("queue its export profile: `autosync queue {w} PROFILE`"),
            };
            let _ = writeln!(
                out,
                "  {n} {objects} with an export pending: sent by the MA's next export ({queue}; list them: `autosync cs {w} --pending-export`)"
            );
        }
        for t in &s.trigger_errors {
            let _ = writeln!(out, "  {}", trigger_problem(t));
        }
        if let Some(why) = &s.full_sync_needed {
            let w = shell_word(ma);
            let queue = match profiles.map(|p| p.get(ma).map(|p| &p.full_sync)) {
                Some(Some(Some(p))) => format!("queue one: `autosync queue {w} {}`", shell_word(p)),
                Some(Some(None)) => {
                    "the MA has no run profile with a full-sync step: add one under `[ma.run_profiles]` and queue it".to_owned()
                }
                Some(None) => "the configuration names no such MA".to_owned(),
                None => format!(
                    "queue its profile with a full-sync step: `autosync queue {w} PROFILE`"
                ),
            };
            let _ = writeln!(out, "  full sync needed: {why} ({queue})");
        }
    }
    out
}

/// A failing trigger's line under its MA: since when, how often, its
/// last error on one line (a script's error may span several; the rest
/// is in the log and `--json`). `since` has its date when it is not the
/// day of the last error.
fn trigger_problem(t: &TriggerProblem) -> String {
    const TIME: &str = "%H:%M:%S UTC";
    let since = if t.since.date_naive() == t.last.date_naive() {
        t.since.format(TIME)
    } else {
        t.since.format("%Y-%m-%d %H:%M:%S UTC")
    };
    let times = if t.count == 1 { "time" } else { "times" };
    let mut lines = t
        .message
        .split(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let mut message = lines.next().unwrap_or_default().to_owned();
    if lines.next().is_some() {
        message.push_str(" ...");
    }
    format!(
        "trigger {} failing since {since} ({} {times}, last {}): {message}",
        crate::output::one_line(&t.trigger),
        t.count,
        t.last.format(TIME),
    )
}

/// `text` in lines of at most `width` characters, broken at spaces (a
/// word longer than a line is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let used = line.chars().count();
        if used > 0 && used + 1 + word.len() <= width {
            line.push(' ');
            line.extend(&word);
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut line));
        }
        while word.len() > width {
            lines.push(word.drain(..width).collect());
        }
        line.extend(&word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_model::{RunReason, RunRecord, RunStatus};
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_stopping_service_should_say_so_under_the_first_line() {
        let mut s = status();
        s.stopping = true;
        let text = render(&s, None, None);
        let second = text.lines().nth(1).unwrap_or_default();
        assert!(second.starts_with("the service is stopping"), "{text}");
        s.stopping = false;
        assert!(!render(&s, None, None).contains("is stopping"));
    }

    fn status() -> Status {
        let mut status: Status = serde_json::from_value(serde_json::json!({
            "service": true,
            "mas": {
                "hr": { "state": "idle", "queue": [] },
                "a-management-agent-with-a-long-name": {
                    "state": "threshold-exceeded",
                    "run_id": 7,
                    "exceeded": ["deletes 12% > 10%"],
                    "held": ["delta-sync"],
                    "queue": [],
                },
                "directory": {
                    "state": "waiting",
                    "reason": "retry in 2m: at step 1 delta-import: cannot open /srv/exports/directory/people-2026-12-05.jsonl: No such file or directory (os error 2)",
                    "queue": [],
                },
                "app": {
                    "state": "failed",
                    "profile": "export",
                    "status": "stopped-connectivity",
                    "run_id": 9,
                    "attempts": 5,
                    "since": "2026-12-05T12:00:00Z",
                    "error": "step 1 export: cannot connect to the database: connection refused",
                    "queue": [],
                },
            },
        }))
        .unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        if let Some(hr) = status.mas.get_mut("hr") {
            hr.last_run = Some(RunRecord {
                id: 12,
                ma: "hr".into(),
                profile: "delta-import".into(),
                status: RunStatus::Success,
                started_at: at,
                ended_at: Some(at),
                reason: RunReason::Manual { by: "test".into() },
                steps: vec![],
            });
        }
        status
    }

    /// Asserts that each MA's row has its last run under `LAST RUN`.
    fn assert_in_line(text: &str) {
        let mut lines = text.lines().skip(1);
        let header = lines.next().unwrap_or_default();
        let column = header.find("LAST RUN").unwrap_or(0);
        for row in lines.filter(|l| !l.starts_with(' ')) {
            assert_eq!(row.get(column - 2..column), Some("  "), "{text}");
            assert_ne!(row.get(column..=column), Some(" "), "{text}");
        }
    }

    #[test]
    fn piped_status_should_keep_each_state_whole_on_its_row_in_line() {
        let text = render(&status(), None, None);
        insta::assert_snapshot!("status_piped", text);
        // One line per MA (plus the source and the header), in line.
        assert_eq!(text.lines().count(), 6, "{text}");
        assert_in_line(&text);
        assert!(text.contains("(os error 2)  "), "{text}");
    }

    #[test]
    fn status_on_a_terminal_should_wrap_long_states_inside_their_column() {
        let text = render(&status(), Some(100), None);
        insta::assert_snapshot!("status_terminal_100", text);
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{line:?} is too long\n{text}");
        }
        assert_in_line(&text);
        // Nothing of a state is lost.
        let joined: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            joined.contains("No such file or directory (os error 2)"),
            "{text}"
        );
    }

    /// A trigger that fails (a change listener that cannot listen) leaves
    /// its MA idle: a line under the MA's row says so (a black-box review).
    #[test]
    fn a_failing_trigger_should_show_under_its_mas_row() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "service": true,
            "mas": {
                "directory": {
                    "state": "idle",
                    "queue": [],
                    "trigger_errors": [{
                        "trigger": "change-notification (every change)",
                        "message": "not listening to changes: connection refused; listening again after a backoff",
                        "since": "2026-12-05T14:02:11Z",
                        "last": "2026-12-05T14:09:40Z",
                        "count": 12,
                    }, {
                        "trigger": "script s (every 60s, s.rhai)",
                        "message": "Runtime error: boom\nin call to function f\n",
                        "since": "2026-12-04T23:59:00Z",
                        "last": "2026-12-05T00:00:10Z",
                        "count": 1,
                    }],
                },
            },
        }))
        .unwrap();
        let text = render(&status, None, None);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].starts_with("directory  idle"), "{text}");
        assert_eq!(
            lines[3],
            "  trigger change-notification (every change) failing since 14:02:11 UTC (12 times, last 14:09:40 UTC): not listening to changes: connection refused; listening again after a backoff",
            "{text}"
        );
        assert_eq!(
            lines[4],
            "  trigger script s (every 60s, s.rhai) failing since 2026-12-04 23:59:00 UTC (1 time, last 00:00:10 UTC): Runtime error: boom ...",
            "{text}"
        );
        assert_eq!(lines.len(), 5, "{text}");
    }

    /// Exports a cancelled export left wait for the next one with the MA
    /// idle: a line says so while nothing is about to send them (a
    /// black-box review: `idle 0` beside 16,500 pending exports).
    #[test]
    fn pending_exports_nothing_is_about_to_send_should_show_under_the_mas_row() {
        let one = |state: serde_json::Value, queue: serde_json::Value| -> String {
            let status: Status = serde_json::from_value(serde_json::json!({
                "service": true,
                "mas": { "app": {
                    "state": state,
                    "queue": queue,
                    "pending_exports": 16500,
                } },
            }))
            .unwrap();
            let profiles = BTreeMap::from([(
                "app".to_owned(),
                HintProfiles {
                    export: Ok("export".into()),
                    exporting: vec!["export".into()],
                    full_sync: Some("full-sync".into()),
                },
            )]);
            render(&status, None, Some(&profiles))
        };
        let idle = one(serde_json::json!("idle"), serde_json::json!([]));
        assert!(
            idle.contains("  16500 objects with an export pending: sent by the MA's next export (queue one: `autosync queue app export`"),
            "{idle}"
        );
        let queued = one(
            serde_json::json!("idle"),
            serde_json::json!([{
                "id": 7, "ma": "app", "profile": "export",
                "reason": { "kind": "manual", "by": "test" },
                "enqueued_at": "2026-12-05T14:02:11Z",
            }]),
        );
        assert!(!queued.contains("export pending"), "{queued}");
    }

    /// The hints name the MA's own profiles, not the conventional names
    /// (`autosync queue app export` failed for an MA whose export is
    /// `Export`: a black-box review), and say so when it has none.
    #[test]
    fn hints_should_name_the_mas_own_profiles_or_say_it_has_none() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "service": false,
            "mas": { "app": {
                "state": "idle",
                "queue": [],
                "pending_exports": 3,
                "full_sync_needed": "its rules changed",
            } },
        }))
        .unwrap();
        let with = |export: Result<String, String>, full_sync: Option<&str>| {
            let profiles = BTreeMap::from([(
                "app".to_owned(),
                HintProfiles {
                    exporting: export.clone().into_iter().collect(),
                    export,
                    full_sync: full_sync.map(str::to_owned),
                },
            )]);
            render(&status, None, Some(&profiles))
        };
        let named = with(Ok("Export".into()), Some("Full Sync"));
        assert!(
            named.contains("(queue one: `autosync queue app Export`; list them: `autosync cs app --pending-export`)"),
            "{named}"
        );
        assert!(
            named.contains(
                "full sync needed: its rules changed (queue one: `autosync queue app 'Full Sync'`)"
            ),
            "{named}"
        );
        let none = with(
            Err("none of its run profiles has an export step".into()),
            None,
        );
        assert!(!none.contains("autosync queue"), "{none}");
        assert!(
            none.contains(
                "the MA has no export profile to queue: none of its run profiles has an export step"
            ),
            "{none}"
        );
        assert!(
            none.contains("the MA has no run profile with a full-sync step"),
            "{none}"
        );
        // A queued `Export` sends them: no line.
        let mut queued = status.clone();
        if let Some(app) = queued.mas.get_mut("app") {
            app.queue = serde_json::from_value(serde_json::json!([{
                "id": 7, "ma": "app", "profile": "Export",
                "reason": { "kind": "manual", "by": "test" },
                "enqueued_at": "2026-12-05T14:02:11Z",
            }]))
            .unwrap();
        }
        let profiles = BTreeMap::from([(
            "app".to_owned(),
            HintProfiles {
                export: Ok("Export".into()),
                exporting: vec!["Export".into()],
                full_sync: None,
            },
        )]);
        let text = render(&queued, None, Some(&profiles));
        assert!(!text.contains("export pending"), "{text}");
        // Without the configuration: no profile is named.
        let unknown = render(&status, None, None);
        assert!(
            unknown.contains("queue its export profile: `autosync queue app PROFILE`"),
            "{unknown}"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn wrap_should_break_at_spaces_and_cut_only_a_word_too_long_for_a_line() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij x", 4), ["abcd", "efgh", "ij x"]);
        assert_eq!(wrap("short", 40), ["short"]);
        assert_eq!(wrap("", 10), [""]);
    }
}
