use crate::peers::{dead_port, errors, http_sink, run, silent_server, t};
use autosync_model::RunStatus;
use autosync_notify::{
    Channel, Delivery, Event, EventKind, Notifier, NotifyConfig, SendError, Submission,
    SuppressionState,
};
use autosync_testkit::{SinkTls, SmtpSink};

/// A configuration from TOML (as `[controller.notifications]`).
fn config(text: &str) -> NotifyConfig {
    let c: NotifyConfig = toml::from_str(text).unwrap();
    c.validate().unwrap();
    c
}

fn smtp_toml(port: u16) -> String {
    format!(
        r#"
        [smtp]
        host = "127.0.0.1"
        port = {port}
        security = "none"
        username = "autosync"
        password = "smtp-s3cret"
        from = "Autosync <autosync@example.org>"
        to = ["ops@example.org", "oncall@example.org"]
        timeout = "5s"
        "#
    )
}

fn failed(id: i64) -> Event {
    Event::RunFailed {
        run: run(id, "hr", "Delta Import", RunStatus::CompletedImportErrors),
        first_errors: errors(12, "duplicate-anchor"),
    }
}

fn channels(d: &Delivery) -> &[autosync_notify::ChannelOutcome] {
    match d {
        Delivery::Sent { channels, .. } => channels,
        other => panic!("expected a send, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_should_reach_the_smtp_server_with_subject_body_and_recipients() {
    let sink = SmtpSink::start().unwrap();
    let mut n = Notifier::new(config(&smtp_toml(sink.port())), SuppressionState::new());
    let d = n.notify(failed(42), t(10, 2)).await;
    let ch = channels(&d);
    assert_eq!(ch.len(), 1);
    assert_eq!(
        ch[0].channel,
        Channel::Email {
            server: format!("127.0.0.1:{}", sink.port())
        }
    );
    assert_eq!(ch[0].result, Ok(()));

    let mails = sink.mails().unwrap();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.mail_from, "autosync@example.org");
    assert_eq!(m.rcpt_tos, ["ops@example.org", "oncall@example.org"]);
    assert_eq!(
        m.login.as_deref(),
        Some(&["autosync".to_owned(), "smtp-s3cret".to_owned()][..]),
        "credentials are sent to the server"
    );
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("[autosync] hr/Delta Import: completed-import-errors (run 42)")
    );
    assert!(m.header("Message-ID").is_some() && m.header("Date").is_some());
    let to = m.header("To").unwrap();
    assert!(
        to.contains("ops@example.org") && to.contains("oncall@example.org"),
        "{to}"
    );
    let body = m.body();
    for expected in [
        "Run id:    42",
        "Status:    completed-import-errors",
        "Per-object errors (first 10 of 12):",
        "`emp-009`: duplicate-anchor: detail of error 9",
    ] {
        assert!(body.contains(expected), "{expected:?} not in:\n{body}");
    }
    assert!(
        !m.data.contains("smtp-s3cret"),
        "the password is not in the message"
    );
}

#[tokio::test]
async fn a_webhook_should_receive_a_json_post_with_its_headers() {
    let (base, mut rx) = http_sink(204).await;
    let cfg = config(&format!(
        r#"
        [[webhooks]]
        url = "{base}/hook?key=q-s3cret"
        headers = {{ Authorization = "Bearer tok-s3cret", X-Team = "identity" }}
        "#
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let d = n.notify(failed(42), t(10, 2)).await;
    assert_eq!(channels(&d)[0].result, Ok(()));
    let req = rx.recv().await.unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook?key=q-s3cret");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer tok-s3cret"));
    assert_eq!(req.header("x-team"), Some("identity"));
    let json = req.json();
    assert_eq!(json["event"], "run-failed");
    assert_eq!(json["version"], 1);
    assert_eq!(json["run_id"], 42);
    assert_eq!(json["ma"], "hr");
    assert_eq!(json["first_errors"].as_array().unwrap().len(), 10);
    let body = String::from_utf8(req.body.clone()).unwrap();
    assert!(!body.contains("s3cret"), "no secret in the payload: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_never_answers_should_time_out_and_email_still_go_out() {
    let sink = SmtpSink::start().unwrap();
    let silent = silent_server().await;
    let cfg = config(&format!(
        "{}\n[[webhooks]]\nurl = \"{silent}/hook\"\ntimeout = \"1s\"\n",
        smtp_toml(sink.port())
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let d = n.notify(failed(1), t(10, 2)).await;
    let ch = channels(&d);
    assert_eq!(ch.len(), 2);
    assert_eq!(ch[0].result, Ok(()), "email");
    assert!(
        matches!(&ch[1].result, Err(SendError::Timeout { .. })),
        "webhook: {:?}",
        ch[1].result
    );
    assert!(d.delivered());
    assert_eq!(d.failures().len(), 1);
    assert_eq!(sink.mails().unwrap().len(), 1);
}

#[tokio::test]
async fn a_dead_smtp_server_should_not_stop_webhooks() {
    let (base, mut rx) = http_sink(200).await;
    let cfg = config(&format!(
        "{}\n[[webhooks]]\nurl = \"{base}/a\"\n[[webhooks]]\nurl = \"{base}/b\"\n",
        smtp_toml(dead_port())
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let d = n.notify(failed(1), t(10, 2)).await;
    let ch = channels(&d);
    assert_eq!(ch.len(), 3);
    let email_error = ch[0].result.clone().unwrap_err();
    assert!(
        matches!(email_error, SendError::Smtp { .. }),
        "{email_error:?}"
    );
    assert!(!email_error.to_string().contains("smtp-s3cret"));
    assert_eq!(ch[1].result, Ok(()));
    assert_eq!(ch[2].result, Ok(()));
    let mut paths = vec![rx.recv().await.unwrap().path, rx.recv().await.unwrap().path];
    paths.sort();
    assert_eq!(paths, ["/a", "/b"]);
}

#[tokio::test]
async fn a_webhook_error_status_should_be_a_failure_without_the_secret_url() {
    let (base, _rx) = http_sink(500).await;
    let dead = dead_port();
    let cfg = config(&format!(
        "[[webhooks]]\nurl = \"{base}/services/T0/tok-s3cret\"\n\
         [[webhooks]]\nurl = \"http://127.0.0.1:{dead}/services/T0/tok-s3cret\"\n"
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let d = n.notify(failed(1), t(10, 2)).await;
    let ch = channels(&d);
    match &ch[0].result {
        Err(SendError::WebhookStatus { status, .. }) => assert_eq!(*status, 500),
        other => panic!("{other:?}"),
    }
    let refused = ch[1].result.clone().unwrap_err();
    assert!(matches!(refused, SendError::Webhook { .. }), "{refused:?}");
    for outcome in ch {
        let text = format!(
            "{} {:?} {}",
            outcome.channel,
            outcome.result,
            outcome.result.clone().unwrap_err()
        );
        assert!(!text.contains("tok-s3cret"), "{text}");
    }
    assert!(!d.delivered());
}

#[tokio::test]
async fn repeats_should_be_suppressed_until_a_success_resets_them() {
    let (base, mut rx) = http_sink(200).await;
    let cfg = config(&format!(
        "reminder_after = \"4h\"\n[[webhooks]]\nurl = \"{base}/hook\"\n"
    ));
    let mut n = Notifier::new(cfg.clone(), SuppressionState::new());

    assert!(n.notify(failed(1), t(8, 0)).await.delivered());
    assert_eq!(rx.recv().await.unwrap().json()["run_id"], 1);
    assert!(matches!(
        n.notify(failed(2), t(8, 30)).await,
        Delivery::Suppressed { suppressed: 1, .. }
    ));

    // Persisted and restored across a restart: still suppressed.
    let saved = serde_json::to_string(n.state()).unwrap();
    let mut n = Notifier::new(cfg, serde_json::from_str(&saved).unwrap());
    assert!(matches!(
        n.notify(failed(3), t(9, 0)).await,
        Delivery::Suppressed { suppressed: 2, .. }
    ));

    // After the period, a reminder.
    let d = n.notify(failed(4), t(12, 0)).await;
    assert!(matches!(d, Delivery::Sent { reminder: true, .. }), "{d:?}");
    let reminder = rx.recv().await.unwrap().json();
    assert_eq!(reminder["reminder"], true);
    assert_eq!(reminder["suppressed_since_last"], 2);
    assert_eq!(reminder["first_seen"], "2026-11-23T08:00:00Z");

    // A success: a recovered notice, and the same error is notified again.
    let ok = run(5, "hr", "Delta Import", RunStatus::Success);
    let d = n.run_finished(ok.clone(), vec![], t(12, 30)).await;
    assert!(
        matches!(
            d,
            Delivery::Sent {
                kind: EventKind::Recovered,
                ..
            }
        ),
        "{d:?}"
    );
    let recovered = rx.recv().await.unwrap().json();
    assert_eq!(recovered["event"], "recovered");
    assert_eq!(recovered["failures"], 4);
    assert_eq!(recovered["status"], "completed-import-errors");
    assert!(n.state().is_empty());
    assert_eq!(
        n.run_finished(ok, vec![], t(12, 40)).await,
        Delivery::Ignored
    );

    assert!(n.notify(failed(6), t(13, 0)).await.delivered());
    let again = rx.recv().await.unwrap().json();
    assert_eq!(
        (again["run_id"].clone(), again["reminder"].clone()),
        (6.into(), false.into())
    );
    assert!(rx.try_recv().is_err(), "nothing else was sent");
}

#[tokio::test]
async fn a_notice_no_channel_delivered_should_be_retried_on_the_next_repeat() {
    let cfg = config(&format!(
        "[[webhooks]]\nurl = \"http://127.0.0.1:{}/hook\"\n",
        dead_port()
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let first = n.notify(failed(1), t(8, 0)).await;
    assert!(!first.delivered());
    let second = n.notify(failed(2), t(8, 1)).await;
    assert!(
        matches!(
            second,
            Delivery::Sent {
                reminder: false,
                ..
            }
        ),
        "{second:?}"
    );
}

#[tokio::test]
async fn ignored_statuses_and_disabled_recovered_notices_should_send_nothing() {
    let (base, mut rx) = http_sink(200).await;
    let cfg = config(&format!(
        "ignore_statuses = [\"success\", \"completed-warnings\"]\nnotify_recovered = false\n\
         [[webhooks]]\nurl = \"{base}/hook\"\n"
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let warn = run(1, "hr", "Delta Import", RunStatus::CompletedWarnings);
    assert_eq!(
        n.run_finished(warn, vec![], t(8, 0)).await,
        Delivery::Ignored
    );
    let none = run(2, "hr", "Delta Import", RunStatus::CompletedNoObjects);
    assert!(
        n.run_finished(none, vec![], t(8, 1)).await.delivered(),
        "not ignored here"
    );
    assert_eq!(
        rx.recv().await.unwrap().json()["status"],
        "completed-no-objects"
    );
    assert_eq!(n.on_success("hr", "Delta Import", t(8, 2)), None);
    assert!(n.state().is_empty(), "reset even without a notice");
}

fn tls_toml(sink: &SmtpSink, security: &str, ca: bool) -> String {
    let ca_line = if ca {
        format!("ca_file = {:?}", sink.ca_file().display().to_string())
    } else {
        String::new()
    };
    format!(
        r#"
        [smtp]
        host = "127.0.0.1"
        port = {}
        security = "{security}"
        username = "autosync"
        password = "smtp-s3cret"
        from = "autosync@example.org"
        to = ["ops@example.org"]
        timeout = "5s"
        {ca_line}
        "#,
        sink.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_tls_should_deliver_to_a_server_whose_ca_is_trusted() {
    for (mode, security) in [(SinkTls::Starttls, "starttls"), (SinkTls::Tls, "tls")] {
        let sink = SmtpSink::start_with(mode).unwrap();
        let mut n = Notifier::new(
            config(&tls_toml(&sink, security, true)),
            SuppressionState::new(),
        );
        let d = n.notify(failed(7), t(10, 2)).await;
        assert_eq!(channels(&d)[0].result, Ok(()), "{security}");
        let mails = sink.mails().unwrap();
        assert_eq!(mails.len(), 1, "{security}");
        assert!(mails[0].tls, "{security}: the message went over TLS");
        assert_eq!(mails[0].login.as_ref().unwrap()[0], "autosync");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_certificate_should_be_refused() {
    let sink = SmtpSink::start_with(SinkTls::Starttls).unwrap();
    let mut n = Notifier::new(
        config(&tls_toml(&sink, "starttls", false)),
        SuppressionState::new(),
    );
    let d = n.notify(failed(7), t(10, 2)).await;
    let error = channels(&d)[0].result.clone().unwrap_err();
    assert!(matches!(error, SendError::Smtp { .. }), "{error:?}");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
    assert!(sink.mails().unwrap().is_empty());
    assert!(!error.to_string().contains("smtp-s3cret"));
}

/// A log sink for one test thread.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_should_tell_what_failed_without_secrets() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (base, _rx) = http_sink(500).await;
    let cfg = config(&format!(
        "{}\n[[webhooks]]\nurl = \"{base}/services/T0/tok-s3cret?k=q-s3cret\"\n\
         headers = {{ Authorization = \"Bearer h-s3cret\" }}\n\
         [[webhooks]]\nurl = \"http://127.0.0.1:{}/services/tok-s3cret\"\n",
        smtp_toml(dead_port()),
        dead_port()
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let d = n.notify(failed(1), t(8, 0)).await;
    assert_eq!(d.failures().len(), 3);
    n.notify(
        Event::ConfigReloadRejected {
            message: "x".into(),
        },
        t(8, 1),
    )
    .await;
    let debug = format!("{n:?} {d:?}");
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("notification not delivered").count(),
        6,
        "{text}"
    );
    assert!(text.contains("answered HTTP 500"), "{text}");
    assert!(!text.contains("s3cret"), "a secret in the logs:\n{text}");
    assert!(!debug.contains("s3cret"), "a secret in Debug:\n{debug}");
}

fn rejected(message: &str) -> Event {
    Event::ConfigReloadRejected {
        message: message.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_should_send_from_its_own_queue_so_a_silent_webhook_delays_only_itself() {
    let sink = SmtpSink::start().unwrap();
    let silent = silent_server().await;
    let (base, mut rx) = http_sink(200).await;
    let cfg = config(&format!(
        "{}\n[[webhooks]]\nurl = \"{silent}/hook\"\ntimeout = \"2s\"\n\
         [[webhooks]]\nurl = \"{base}/ok\"\n",
        smtp_toml(sink.port())
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let start = std::time::Instant::now();
    let mut pending = Vec::new();
    for (i, message) in ["first", "second", "third"].into_iter().enumerate() {
        match n.submit(rejected(message), t(8, i as u32)) {
            Submission::Queued(p) => pending.push(p),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        start.elapsed() < std::time::Duration::from_millis(500),
        "submit does not wait for a channel"
    );
    let mut messages = Vec::new();
    for _ in 0..3 {
        let req = tokio::time::timeout(std::time::Duration::from_millis(1500), rx.recv())
            .await
            .expect("the healthy webhook is not held by the silent one")
            .unwrap();
        messages.push(req.json()["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(messages, ["first", "second", "third"], "in order");
    while sink.mails().unwrap().len() < 3 && start.elapsed() < std::time::Duration::from_secs(2) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(sink.mails().unwrap().len(), 3, "every mail went out");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "the mail is not held by the silent webhook"
    );
    // The silent webhook times out, each notice in turn.
    let first = pending.remove(0).outcome().await;
    assert!(first.delivery().delivered());
    assert_eq!(first.delivery().failures().len(), 1);
    assert!(
        matches!(
            first.delivery().failures()[0].result,
            Err(SendError::Timeout { .. })
        ),
        "{first:?}"
    );
    assert!(!n.settle(&first), "delivered: nothing to send again");
}

#[tokio::test]
async fn a_notice_no_channel_delivered_should_be_sent_again_unless_a_later_one_went_out() {
    let cfg = config(&format!(
        "[[webhooks]]\nurl = \"http://127.0.0.1:{}/hook\"\n",
        dead_port()
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let Submission::Queued(first) = n.submit(failed(1), t(8, 0)) else {
        panic!()
    };
    // A different failure went out before the first one's outcome came.
    let Submission::Queued(second) = n.submit(
        Event::RunFailed {
            run: run(2, "hr", "Delta Import", RunStatus::StoppedServerDown),
            first_errors: vec![],
        },
        t(8, 1),
    ) else {
        panic!()
    };
    let first = first.outcome().await;
    assert!(!first.delivery().delivered());
    assert!(!n.settle(&first), "a later notice of the problem went out");
    let second = second.outcome().await;
    assert!(n.settle(&second));
    let again = n.notify(
        Event::RunFailed {
            run: run(3, "hr", "Delta Import", RunStatus::StoppedServerDown),
            first_errors: vec![],
        },
        t(8, 2),
    );
    assert!(
        matches!(
            again.await,
            Delivery::Sent {
                reminder: false,
                ..
            }
        ),
        "the undelivered repeat is sent again"
    );
}

/// A stop bounds the time the channels get: a webhook that never answers
/// (its `timeout` 5 minutes) holds neither the stop nor the runtime's end
/// beyond the bound, and what it did not deliver is logged as an error and
/// is not taken as sent (the next equal notice goes out).
#[test]
fn a_stop_should_give_up_on_a_silent_webhook_within_its_bound_and_not_take_its_notices_as_sent() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bound = std::time::Duration::from_millis(400);
    let started = std::time::Instant::now();
    // Silent on a thread of its own: the runtime's end does not close the
    // connections it holds (as a remote server's would not be).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept() {
            held.push(sock);
        }
    });
    runtime.block_on(async {
        let cfg = config(&format!(
            "[[webhooks]]\nurl = \"{silent}/hook/tok-s3cret\"\ntimeout = \"5m\"\n"
        ));
        let mut n = Notifier::new(cfg, SuppressionState::new());
        // One notice being sent, one waiting behind it.
        let Submission::Queued(first) = n.submit(failed(1), t(8, 0)) else {
            panic!()
        };
        let Submission::Queued(second) = n.submit(rejected("queued"), t(8, 1)) else {
            panic!()
        };
        let outcomes = tokio::spawn(async move { (first.outcome().await, second.outcome().await) });
        let stop = std::time::Instant::now();
        let gave_up = tokio::time::timeout(bound * 3, n.stop(bound))
            .await
            .expect("the stop returns within its bound");
        assert!(gave_up);
        let took = stop.elapsed();
        assert!(
            took >= bound && took < bound + std::time::Duration::from_secs(1),
            "the stop took {took:?} (bound {bound:?})"
        );
        let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(1), outcomes)
            .await
            .expect("the outcomes come at once")
            .unwrap();
        for settled in [&first, &second] {
            let failures = settled.delivery().failures();
            assert_eq!(failures.len(), 1, "{settled:?}");
            assert!(
                matches!(failures[0].result, Err(SendError::Abandoned { .. })),
                "{settled:?}"
            );
        }
        assert!(n.settle(&first), "not delivered: not taken as sent");
        let key = autosync_notify::SuppressionKey::new(EventKind::RunFailed, "hr", "Delta Import");
        assert_eq!(
            n.state().get(&key).unwrap().last_sent,
            None,
            "{:?}",
            n.state()
        );
        // The next equal failure is notified, not suppressed as a repeat.
        assert!(
            matches!(n.submit(failed(2), t(8, 2)), Submission::Queued(_)),
            "the failure never delivered is sent again"
        );
    });
    let (ended, end) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = ended.send(());
    });
    end.recv_timeout(std::time::Duration::from_secs(2))
        .expect("the webhook's request does not hold the runtime's end");
    assert!(started.elapsed() < bound + std::time::Duration::from_secs(2));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("notification not delivered"))
        .collect();
    assert_eq!(errors.len(), 2, "{text}");
    assert!(
        errors[0].contains("event=run-failed")
            && errors[0].contains("channel=webhook 0 (http://127.0.0.1:")
            && errors[0]
                .contains("subject=[autosync] hr/Delta Import: completed-import-errors (run 1)"),
        "{text}"
    );
    assert!(errors[1].contains("event=config-reload-rejected"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn a_stop_should_wait_for_what_the_channels_send_within_the_bound() {
    let (base, mut rx) = http_sink(200).await;
    let cfg = config(&format!("[[webhooks]]\nurl = \"{base}/ok\"\n"));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    let Submission::Queued(pending) = n.submit(failed(1), t(8, 0)) else {
        panic!()
    };
    assert!(
        !n.stop(std::time::Duration::from_secs(60)).await,
        "nothing given up"
    );
    assert!(rx.try_recv().is_ok(), "sent before the stop returned");
    let settled = pending.outcome().await;
    assert!(settled.delivery().delivered());
    assert!(!n.settle(&settled));
    assert!(
        !n.stop(std::time::Duration::from_secs(60)).await,
        "nothing left"
    );
}

#[tokio::test]
async fn a_failure_no_channel_delivered_should_not_be_followed_by_a_recovered_notice() {
    let cfg = config(&format!(
        "[[webhooks]]\nurl = \"http://127.0.0.1:{}/hook\"\n",
        dead_port()
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    assert!(!n.notify(failed(1), t(8, 0)).await.delivered());
    // The run ends well: no one heard of the failure, so no recovery.
    let ok = run(2, "hr", "Delta Import", RunStatus::Success);
    assert_eq!(
        n.run_finished(ok, vec![], t(8, 30)).await,
        Delivery::Ignored
    );
    assert!(n.state().is_empty());
}

#[tokio::test]
async fn a_delivered_failure_should_be_followed_by_a_recovered_notice() {
    let (base, mut rx) = http_sink(200).await;
    let cfg = config(&format!(
        "reminder_after = \"1h\"\n[[webhooks]]\nurl = \"{base}/hook\"\n"
    ));
    let mut n = Notifier::new(cfg, SuppressionState::new());
    assert!(n.notify(failed(1), t(8, 0)).await.delivered());
    rx.recv().await.unwrap();
    let ok = run(2, "hr", "Delta Import", RunStatus::Success);
    let d = n.run_finished(ok, vec![], t(8, 30)).await;
    assert!(
        matches!(
            d,
            Delivery::Sent {
                kind: EventKind::Recovered,
                ..
            }
        ),
        "{d:?}"
    );
}
