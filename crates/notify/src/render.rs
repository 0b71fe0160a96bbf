//! The message of an event: a subject line, a plain-text body, and the JSON
//! document webhooks receive (field names documented in docs/src/reference/notifications.md).

use crate::event::{Event, EventKind, ObjectErrorSummary};
use autosync_model::{RunRecord, RunStatus, StepCounters};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::fmt::Write as _;

/// Per-object errors shown in a message.
pub const MAX_ERRORS_SHOWN: usize = 10;
/// Version of the webhook JSON document (`version` field).
pub const PAYLOAD_VERSION: u32 = 1;

/// How this notice relates to earlier ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// When it is sent.
    pub now: DateTime<Utc>,
    /// A reminder of a failure that keeps repeating.
    pub reminder: bool,
    /// Repeats suppressed since the previous notice.
    pub suppressed: u64,
    /// When this failure was first seen.
    pub first_seen: Option<DateTime<Utc>>,
}

impl Context {
    /// A first notice at `now`.
    pub fn first(now: DateTime<Utc>) -> Self {
        Context {
            now,
            reminder: false,
            suppressed: 0,
            first_seen: Some(now),
        }
    }
}

/// A rendered notice.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub payload: serde_json::Value,
}

/// The webhook document. Absent fields are left out.
#[derive(Serialize)]
struct Payload<'a> {
    version: u32,
    event: EventKind,
    subject: &'a str,
    text: &'a str,
    sent_at: String,
    reminder: bool,
    suppressed_since_last: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ma: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<RunStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a RunRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_errors: Option<&'a [ObjectErrorSummary]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    what: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<u64>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One line, no control characters, at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() > max {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        flat.to_owned()
    }
}

/// What a message is about: its text up to its first `: ` outside
/// parentheses (`the store file X was deleted or moved away while the
/// service ran: the service stopped and ...`), or all of it.
fn headline(message: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in message.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ':' if depth == 0 && message[i + 1..].starts_with(' ') => return &message[..i],
            _ => {}
        }
    }
    message
}

/// Per-object errors the run raised in all (the step counts, or the list
/// when longer).
fn errors_total(run: &RunRecord, first: &[ObjectErrorSummary]) -> u64 {
    let counted: u64 = run.steps.iter().map(|s| s.errors).sum();
    counted.max(first.len() as u64)
}

fn counters_line(c: &StepCounters) -> String {
    let value = serde_json::to_value(c).unwrap_or_default();
    let mut parts = Vec::new();
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            match v {
                serde_json::Value::Number(n) if n.as_u64() != Some(0) => {
                    parts.push(format!("{k} {n}"))
                }
                serde_json::Value::Object(targets) => {
                    for (target, tv) in targets {
                        if let serde_json::Value::Object(tc) = tv {
                            for (tk, tn) in tc {
                                if tn.as_u64().is_some_and(|n| n > 0) {
                                    parts.push(format!("{k}[{target}].{tk} {tn}"));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if parts.is_empty() {
        "no changes".into()
    } else {
        parts.join(", ")
    }
}

fn run_details(out: &mut String, run: &RunRecord, first_errors: &[ObjectErrorSummary]) {
    let _ = writeln!(out, "MA:        {}", run.ma);
    let _ = writeln!(out, "Profile:   {}", run.profile);
    let _ = writeln!(out, "Status:    {}", run.status);
    let _ = writeln!(out, "Run id:    {}", run.id);
    let _ = writeln!(out, "Reason:    {}", run.reason);
    let _ = writeln!(out, "Started:   {}", ts(run.started_at));
    match run.ended_at {
        Some(end) => {
            let secs = end.signed_duration_since(run.started_at).num_milliseconds() as f64 / 1000.0;
            let _ = writeln!(out, "Ended:     {} ({secs:.1} s)", ts(end));
        }
        None => {
            let _ = writeln!(out, "Ended:     (not ended)");
        }
    }
    if !run.steps.is_empty() {
        let _ = writeln!(out, "\nSteps:");
        for (i, step) in run.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {}: {}, {} per-object error(s)",
                i + 1,
                step.step_type,
                step.status,
                step.errors
            );
            let _ = writeln!(out, "     counters: {}", counters_line(&step.counters));
            if let Some(msg) = &step.message {
                let _ = writeln!(out, "     message: {msg}");
            }
        }
    }
    let total = errors_total(run, first_errors);
    if !first_errors.is_empty() {
        let shown = first_errors.len().min(MAX_ERRORS_SHOWN);
        let _ = writeln!(out, "\nPer-object errors (first {shown} of {total}):");
        for e in first_errors.iter().take(MAX_ERRORS_SHOWN) {
            let _ = writeln!(
                out,
                "  - step {}, {} `{}`: {}: {}",
                e.step_index + 1,
                serde_json::to_value(e.stage)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                e.object,
                e.error_type,
                e.detail
            );
        }
    } else if total > 0 {
        let _ = writeln!(out, "\nPer-object errors: {total}");
    }
}

/// Renders `event`.
pub fn render(event: &Event, ctx: &Context) -> Rendered {
    let mut p = Payload {
        version: PAYLOAD_VERSION,
        event: event.kind(),
        subject: "",
        text: "",
        sent_at: ts(ctx.now),
        reminder: ctx.reminder,
        suppressed_since_last: ctx.suppressed,
        first_seen: ctx.first_seen.map(ts),
        ma: event.ma(),
        profile: event.profile(),
        status: None,
        run_id: None,
        run: None,
        errors_total: None,
        first_errors: None,
        attempts: None,
        what: None,
        trigger: None,
        message: None,
        failures: None,
    };
    let mut text = String::new();
    let subject = match event {
        Event::RunFailed { run, first_errors } => {
            p.status = Some(run.status);
            p.run_id = Some(run.id);
            p.run = Some(run);
            p.errors_total = Some(errors_total(run, first_errors));
            p.first_errors = Some(&first_errors[..first_errors.len().min(MAX_ERRORS_SHOWN)]);
            let _ = writeln!(
                text,
                "Run {} of profile \"{}\" on MA \"{}\" ended with status {}.\n",
                run.id, run.profile, run.ma, run.status
            );
            run_details(&mut text, run, first_errors);
            format!(
                "{}/{}: {} (run {})",
                one_line(&run.ma, 60),
                one_line(&run.profile, 60),
                run.status,
                run.id
            )
        }
        Event::MaFailed {
            ma,
            profile,
            attempts,
            last_status,
            message,
        } => {
            p.status = Some(*last_status);
            p.attempts = Some(*attempts);
            p.message = Some(message);
            let _ = writeln!(
                text,
                "MA \"{ma}\" is marked failed: profile \"{profile}\" still failed after {attempts} retries, \
                 the last with status {last_status}. It is still retried, the delay growing \
                 up to its max_backoff, and recovers by itself when a run succeeds; \
                 `autosync start {ma}` retries at once.\n"
            );
            let _ = writeln!(text, "MA:        {ma}");
            let _ = writeln!(text, "Profile:   {profile}");
            let _ = writeln!(
                text,
                "Retries:   {attempts} (each one a run that failed again)"
            );
            let _ = writeln!(text, "Status:    {last_status}");
            let _ = writeln!(text, "Message:   {message}");
            format!(
                "{}/{}: failed after {attempts} attempt(s) ({last_status})",
                one_line(ma, 60),
                one_line(profile, 60)
            )
        }
        Event::ThresholdExceeded { ma, run_id, what } => {
            p.run_id = Some(*run_id);
            p.what = Some(what);
            let _ = writeln!(
                text,
                "The import of run {run_id} on MA \"{ma}\" staged more changes than allowed: \
                 {what}.\nThe cycle of this MA stopped before syncing; the staged changes are \
                 kept. Approve them to let them flow, or reject them to discard them.\n"
            );
            let _ = writeln!(text, "MA:        {ma}");
            let _ = writeln!(text, "Run id:    {run_id}");
            let _ = writeln!(text, "Exceeded:  {what}");
            format!(
                "{}: staging threshold exceeded (run {run_id}): {}",
                one_line(ma, 60),
                one_line(what, 80)
            )
        }
        Event::TriggerError {
            ma,
            trigger,
            message,
        } => {
            p.trigger = Some(trigger);
            p.message = Some(message);
            let _ = writeln!(
                text,
                "Trigger \"{trigger}\" of MA \"{ma}\" failed (it keeps running):\n\n{message}"
            );
            format!(
                "{}: trigger {} failed",
                one_line(ma, 60),
                one_line(trigger, 60)
            )
        }
        Event::Oscillation { ma, detail } => {
            p.message = Some(detail);
            let _ = writeln!(
                text,
                "Runs of MA \"{ma}\" keep causing each other; the controller stopped asking \
                 for follow-ups of this MA:\n\n{detail}"
            );
            format!("{}: oscillation detected", one_line(ma, 60))
        }
        Event::FullSyncNeeded { ma, because } => {
            let _ = writeln!(
                text,
                "MA \"{ma}\" needs a full sync: {because}. Until one runs, what it \
                 contributes and what is exported from it follow the old rules. Queue it with \
                 `autosync queue {ma} full-sync` (or set `full_sync_on_rule_change = true` \
                 under [controller] to queue it by itself)."
            );
            p.message = Some(because);
            format!("{}: full sync needed", one_line(ma, 60))
        }
        Event::ConfigReloadRejected { message } => {
            p.message = Some(message);
            let _ = writeln!(
                text,
                "A changed configuration was rejected; the service keeps running with the \
                 previous one:\n\n{message}"
            );
            "configuration reload rejected".to_owned()
        }
        Event::Recovered {
            ma,
            profile,
            failing_since,
            failures,
            last_status,
        } => {
            p.status = *last_status;
            p.failures = Some(*failures);
            p.first_seen = Some(ts(*failing_since));
            let from = last_status
                .map(|s| format!(" from {s}"))
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "Profile \"{profile}\" of MA \"{ma}\" recovered{from}: a run ended well at {}.\n\
                 It had been failing since {} ({failures} failure(s)).",
                ts(ctx.now),
                ts(*failing_since)
            );
            format!("{}/{}: recovered", one_line(ma, 60), one_line(profile, 60))
        }
        Event::ServiceStopped { message } => {
            p.message = Some(message);
            let _ = writeln!(
                text,
                "The autosync service stopped by itself:\n\n{message}\n\nNo run starts and \
                 nothing is synchronised until the service is started again. Its log ends \
                 with an ERROR saying what happened and what to do."
            );
            format!("service stopped: {}", one_line(headline(message), 120))
        }
    };
    if ctx.reminder {
        let since = ctx
            .first_seen
            .map(|t| format!(" since {}", ts(t)))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "\nThis is a reminder: the failure keeps repeating{since}; {} repeat(s) were not \
             notified since the last notice.",
            ctx.suppressed
        );
    }
    let subject = format!(
        "[autosync]{} {subject}",
        if ctx.reminder { " reminder:" } else { "" }
    );
    p.subject = &subject;
    p.text = &text;
    let payload = serde_json::to_value(&p).unwrap_or_default();
    Rendered {
        subject,
        text,
        payload,
    }
}
