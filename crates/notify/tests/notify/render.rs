use crate::peers::{errors, run, t};
use autosync_model::RunStatus;
use autosync_notify::{Context, Event, render};

#[test]
fn a_failed_run_should_show_its_details_and_first_ten_errors() {
    let event = Event::RunFailed {
        run: run(42, "hr", "Delta Import", RunStatus::CompletedImportErrors),
        first_errors: errors(12, "duplicate-anchor"),
    };
    let r = render(&event, &Context::first(t(10, 2)));
    assert_eq!(
        r.subject,
        "[autosync] hr/Delta Import: completed-import-errors (run 42)"
    );
    for expected in [
        "MA:        hr",
        "Profile:   Delta Import",
        "Status:    completed-import-errors",
        "Run id:    42",
        "Reason:    trigger interval",
        "Started:   2026-11-23T10:00:00Z",
        "Ended:     2026-11-23T10:01:00Z (60.0 s)",
        "1. delta-import: completed-import-errors, 12 per-object error(s)",
        "message: connection refused by hr-db:5432",
        "Per-object errors (first 10 of 12):",
        "step 1, import `emp-000`: duplicate-anchor: detail of error 0",
        "`emp-009`",
    ] {
        assert!(
            r.text.contains(expected),
            "{expected:?} not in:\n{}",
            r.text
        );
    }
    assert!(!r.text.contains("emp-010"), "{}", r.text);

    let p = &r.payload;
    assert_eq!(p["version"], 1);
    assert_eq!(p["event"], "run-failed");
    assert_eq!(p["subject"], r.subject.as_str());
    assert_eq!(p["text"], r.text.as_str());
    assert_eq!(p["sent_at"], "2026-11-23T10:02:00Z");
    assert_eq!(p["reminder"], false);
    assert_eq!(p["ma"], "hr");
    assert_eq!(p["profile"], "Delta Import");
    assert_eq!(p["status"], "completed-import-errors");
    assert_eq!(p["run_id"], 42);
    assert_eq!(p["run"]["steps"][0]["type"], "delta-import");
    assert_eq!(p["errors_total"], 12);
    assert_eq!(p["first_errors"].as_array().unwrap().len(), 10);
    assert_eq!(p["first_errors"][0]["object"], "emp-000");
    assert_eq!(p["first_errors"][0]["error_type"], "duplicate-anchor");
    assert_eq!(p["first_errors"][0]["stage"], "import");
    assert!(
        p.get("trigger").is_none(),
        "absent fields are left out: {p}"
    );
}

#[test]
fn a_reminder_should_say_so_in_subject_body_and_payload() {
    let event = Event::MaFailed {
        ma: "hr".into(),
        profile: "Delta Import".into(),
        attempts: 5,
        last_status: RunStatus::StoppedConnectivity,
        message: "retries exhausted".into(),
    };
    let ctx = Context {
        now: t(12, 0),
        reminder: true,
        suppressed: 7,
        first_seen: Some(t(8, 0)),
    };
    let r = render(&event, &ctx);
    assert_eq!(
        r.subject,
        "[autosync] reminder: hr/Delta Import: failed after 5 attempt(s) (stopped-connectivity)"
    );
    assert!(
        r.text.contains("since 2026-11-23T08:00:00Z; 7 repeat(s)"),
        "{}",
        r.text
    );
    assert_eq!(r.payload["reminder"], true);
    assert_eq!(r.payload["suppressed_since_last"], 7);
    assert_eq!(r.payload["first_seen"], "2026-11-23T08:00:00Z");
    assert_eq!(r.payload["attempts"], 5);
}

#[test]
fn every_event_should_have_a_one_line_subject_naming_it() {
    let events = [
        Event::ThresholdExceeded {
            ma: "hr".into(),
            run_id: 7,
            what: "deletes 120 > 100 (12.0% > 10%)".into(),
        },
        Event::TriggerError {
            ma: "hr".into(),
            trigger: "nightly".into(),
            message: "bad\nthing".into(),
        },
        Event::Oscillation {
            ma: "hr".into(),
            detail: "delta-sync ↔ export 10 times".into(),
        },
        Event::ConfigReloadRejected {
            message: "line 3: unknown key".into(),
        },
        Event::Recovered {
            ma: "hr".into(),
            profile: "Delta Import".into(),
            failing_since: t(8, 0),
            failures: 3,
            last_status: Some(RunStatus::StoppedConnectivity),
        },
    ];
    let subjects: Vec<String> = events
        .iter()
        .map(|e| render(e, &Context::first(t(9, 0))).subject)
        .collect();
    assert_eq!(
        subjects,
        [
            "[autosync] hr: staging threshold exceeded (run 7): deletes 120 > 100 (12.0% > 10%)",
            "[autosync] hr: trigger nightly failed",
            "[autosync] hr: oscillation detected",
            "[autosync] configuration reload rejected",
            "[autosync] hr/Delta Import: recovered",
        ]
    );
    let r = render(&events[4], &Context::first(t(9, 0)));
    assert!(
        r.text.contains("recovered from stopped-connectivity"),
        "{}",
        r.text
    );
    assert_eq!(r.payload["failures"], 3);
    let long = Event::TriggerError {
        ma: "a\r\nBcc: evil@example.org".into(),
        trigger: "x".repeat(200),
        message: String::new(),
    };
    let subject = render(&long, &Context::first(t(9, 0))).subject;
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(subject.chars().count() < 160, "{subject:?}");
}

/// A service that stopped by itself: the subject names the problem (the
/// message up to its first `: ` outside parentheses), the body and the
/// payload carry the whole message; no MA.
#[test]
fn a_service_stop_should_name_its_problem_in_the_subject() {
    let message = "the store file /var/lib/autosync/autosync.db was deleted or moved away while \
                   the service ran: the service stopped, and saves what it held";
    let deleted = Event::ServiceStopped {
        message: message.into(),
    };
    let r = render(&deleted, &Context::first(t(9, 0)));
    assert_eq!(
        r.subject,
        "[autosync] service stopped: the store file /var/lib/autosync/autosync.db was deleted \
         or moved away while the service ran"
    );
    assert!(r.text.contains(message), "{}", r.text);
    assert_eq!(r.payload["event"], "service-stopped");
    assert_eq!(r.payload["message"], message);
    assert!(r.payload.get("ma").is_none(), "{}", r.payload);
    // Each stop is news: never suppressed as a repeat.
    assert_eq!(deleted.suppression(), None);

    let damaged = Event::ServiceStopped {
        message: "the store file /s.db is damaged (quick_check: page 3: btree): the service \
                  stopped; restore the store from a backup"
            .into(),
    };
    assert_eq!(
        render(&damaged, &Context::first(t(9, 0))).subject,
        "[autosync] service stopped: the store file /s.db is damaged (quick_check: page 3: btree)"
    );
    let lost = Event::ServiceStopped {
        message: "another process took over its lease on the store (this one was frozen)".into(),
    };
    assert_eq!(
        render(&lost, &Context::first(t(9, 0))).subject,
        "[autosync] service stopped: another process took over its lease on the store (this one \
         was frozen)"
    );
}
