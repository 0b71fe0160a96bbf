//! `autosync events [--json] [--count N]`: follows the running service's
//! event stream (`GET /api/v1/events`, Server-Sent Events, found through
//! the API file next to the store as the controls find it) and prints one
//! line per event, as text or as the event's JSON, until interrupted, the
//! service stops, or `--count` events were printed. Without a service it
//! fails as the controls do (exit 5); with a service that runs without its
//! API (`--no-api`), it says so (exit 2).

#![allow(clippy::print_stdout)] // printing is what this command is for

use crate::args::{Cli, EventsArgs};
use crate::control::{agent, api_error, service_without_api};
use crate::exit::{Code, Failure};
use crate::locate::Located;
use autosync_service::{Published, ServiceEvent, ServiceState};
use std::fmt::Write as _;
use std::io::BufRead as _;

/// One event as read from the stream: its `event:` and `data:` fields.
#[derive(Default)]
struct Frame {
    event: String,
    data: String,
}

/// The failure when no API answers: a service without its API, or none.
fn no_api(located: &Located, none: String) -> Failure {
    located.warn();
    match service_without_api(located) {
        Ok(Some(why)) => Failure::Usage(format!(
            "{why}: `autosync events` follows the event stream of its API; run the service with its API (`autosync run` without `--no-api` or `--once`; `run --once` ends by itself) (its log says what it does meanwhile)"
        )),
        Ok(None) => Failure::NoService(none),
        Err(e) => e,
    }
}

pub fn events(cli: &Cli, a: &EventsArgs) -> Result<Code, Failure> {
    let located = Located::find(&cli.config)?;
    let path = located.api_path();
    let Some(api) = located.api_file() else {
        return Err(no_api(
            &located,
            format!(
                "no autosync service is running for this configuration (no {}); start it with `autosync run`",
                path.display()
            ),
        ));
    };
    let url = format!("{}/api/v1/events", api.url);
    let answer = agent()
        .get(&url)
        .header("Authorization", &format!("Bearer {}", api.token))
        .header("Accept", "text/event-stream")
        .call();
    let mut response = match answer {
        Ok(response) => response,
        Err(e) => {
            return Err(no_api(
                &located,
                format!(
                    "no autosync service answers at {} (named by {}, which a service that did not stop cleanly left behind; {e}); start it with `autosync run`",
                    api.url,
                    path.display()
                ),
            ));
        }
    };
    located.warn();
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        return Err(api_error(status, &text));
    }
    errln!(
        "following the events of the service at {} (Ctrl-C to stop)",
        api.url
    );
    if a.count == Some(0) {
        return Ok(Code::Ok);
    }
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let mut frame = Frame::default();
    let mut printed = 0u64;
    for line in reader.lines() {
        let line = line.map_err(|e| {
            Failure::Other(anyhow::anyhow!("the service's event stream broke: {e}"))
        })?;
        if line.is_empty() {
            let done = std::mem::take(&mut frame);
            if done.event.is_empty() {
                // A keep-alive comment.
                continue;
            }
            outln!("{}", if a.json { done.data } else { text_of(&done) });
            printed += 1;
            if a.count.is_some_and(|n| printed >= n) || crate::output::is_closed() {
                return Ok(Code::Ok);
            }
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => frame.event = value.to_owned(),
            "data" if frame.data.is_empty() => frame.data = value.to_owned(),
            "data" => {
                frame.data.push('\n');
                frame.data.push_str(value);
            }
            // `id` (the event's number is in its JSON too) and comments.
            _ => {}
        }
    }
    errln!("the service stopped: its event stream ended");
    Ok(Code::Ok)
}

/// One event in words; an event this version does not know is shown as
/// its type and JSON.
fn text_of(frame: &Frame) -> String {
    if frame.event == "lagged" {
        let missed = serde_json::from_str::<serde_json::Value>(&frame.data)
            .ok()
            .and_then(|v| v["missed"].as_u64())
            .unwrap_or(0);
        return format!("missed {missed} event(s): this follower fell behind the service");
    }
    match serde_json::from_str::<Published>(&frame.data) {
        Ok(published) => line(&published.event),
        Err(_) => format!("{} {}", frame.event, frame.data),
    }
}

/// `HH:MM:SS MA: what happened`.
fn line(event: &ServiceEvent) -> String {
    let mut out = event.at().format("%H:%M:%S ").to_string();
    if let Some(ma) = event.ma() {
        let _ = write!(out, "{ma}: ");
    }
    let _ = describe(&mut out, event);
    out
}

/// What happened, in words, written to `out`.
fn describe(out: &mut String, event: &ServiceEvent) -> std::fmt::Result {
    match event {
        ServiceEvent::Service { state, .. } => write!(
            out,
            "service {}",
            match state {
                ServiceState::Started => "started",
                ServiceState::Stopping => "stopping",
                ServiceState::Stopped => "stopped",
            }
        ),
        ServiceEvent::TriggerFired {
            trigger,
            profile,
            deferred,
            ..
        } => write!(
            out,
            "trigger {trigger} asks for {profile}{}",
            if *deferred {
                " (triggers paused: it waits for resume)"
            } else {
                ""
            }
        ),
        ServiceEvent::Queued {
            profile,
            request,
            reason,
            merged,
            ..
        } => {
            if *merged {
                write!(out, "{profile} already queued as {request} ({reason})")
            } else {
                write!(out, "queued {profile} as {request} ({reason})")
            }
        }
        ServiceEvent::RunStarted {
            profile,
            request,
            reason,
            ..
        } => match request {
            Some(request) => write!(out, "started {profile} ({request}, {reason})"),
            None => write!(out, "started {profile} outside the service ({reason})"),
        },
        ServiceEvent::StepProgress {
            profile,
            step_index,
            step,
            processed,
            expected,
            ..
        } => {
            write!(out, "{profile}")?;
            if let Some(step) = step {
                match step_index {
                    Some(i) => write!(out, ", step {} {step}", i + 1),
                    None => write!(out, ", {step}"),
                }?;
            }
            match expected {
                Some(expected) => write!(out, " {processed}/{expected}"),
                None => write!(out, " {processed} objects"),
            }
        }
        ServiceEvent::RunEnded {
            profile,
            run_id,
            status,
            message,
            counts,
            ..
        } => {
            match (status, run_id) {
                (Some(status), Some(id)) => write!(out, "{profile} ended {status} (run {id})"),
                _ => write!(out, "{profile} did not run"),
            }?;
            let figures: Vec<String> = [
                ("imported", counts.imported),
                ("synced", counts.synced),
                ("staged for export", counts.provisioned),
                ("exported", counts.exported),
                ("errors", counts.errors),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
            if !figures.is_empty() {
                write!(out, ": {}", figures.join(", "))?;
            }
            match message {
                Some(message) => write!(out, "; {message}"),
                None => Ok(()),
            }
        }
        ServiceEvent::StateChanged {
            from, to, detail, ..
        } => {
            match (from, to) {
                (Some(from), Some(to)) => write!(out, "{from} -> {to}"),
                (None, Some(to)) => write!(out, "{to}"),
                (_, None) => write!(out, "removed from the configuration"),
            }?;
            match detail {
                Some(detail) => write!(out, " ({detail})"),
                None => Ok(()),
            }
        }
        ServiceEvent::Notice { kind, message, .. } => {
            let kind = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            write!(out, "{kind}: {message}")
        }
        ServiceEvent::Control {
            action,
            by,
            message,
            ..
        } => write!(out, "{action} by {by}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_service::{MaStateName, RunCounts};

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::UNIX_EPOCH
    }

    #[test]
    fn events_should_read_as_one_line_each() {
        let changed = ServiceEvent::StateChanged {
            at: at(),
            ma: "hr".into(),
            from: Some(MaStateName::Idle),
            to: Some(MaStateName::Running),
            detail: Some("delta-import".into()),
        };
        assert_eq!(
            line(&changed),
            "00:00:00 hr: idle -> running (delta-import)"
        );
        let ended = ServiceEvent::RunEnded {
            at: at(),
            ma: "hr".into(),
            profile: "delta-import".into(),
            request: None,
            run_id: Some(3),
            status: Some(autosync_model::RunStatus::Success),
            message: None,
            counts: RunCounts {
                imported: 2,
                ..RunCounts::default()
            },
        };
        assert_eq!(
            line(&ended),
            "00:00:00 hr: delta-import ended success (run 3): 2 imported"
        );
        let paused = ServiceEvent::Control {
            at: at(),
            action: autosync_service::Control::Pause,
            ma: Some("hr".into()),
            by: "cli".into(),
            message: "paused the triggers of `hr`".into(),
        };
        assert_eq!(
            line(&paused),
            "00:00:00 hr: pause by cli: paused the triggers of `hr`"
        );
        let maintenance = ServiceEvent::Control {
            at: at(),
            action: autosync_service::Control::Maintenance,
            ma: None,
            by: "cli".into(),
            message: "maintenance mode on".into(),
        };
        assert_eq!(
            line(&maintenance),
            "00:00:00 maintenance by cli: maintenance mode on"
        );
        let recovered = ServiceEvent::Notice {
            at: at(),
            kind: autosync_service::NoticeKind::Recovered,
            ma: Some("hr".into()),
            message: "`delta-import` on `hr` recovered".into(),
        };
        assert_eq!(
            line(&recovered),
            "00:00:00 hr: recovered: `delta-import` on `hr` recovered"
        );
        let lagged = Frame {
            event: "lagged".into(),
            data: r#"{"type":"lagged","missed":6}"#.into(),
        };
        assert!(text_of(&lagged).starts_with("missed 6 event(s)"));
        let unknown = Frame {
            event: "from-the-future".into(),
            data: r#"{"seq":1,"type":"from-the-future"}"#.into(),
        };
        assert_eq!(
            text_of(&unknown),
            r#"from-the-future {"seq":1,"type":"from-the-future"}"#
        );
    }
}
