//! The API over a real (loopback) socket: the token is required, a queue
//! request and the controls reach the service's command channel, every
//! error answers its status and stable code, and the event stream follows
//! the service (Server-Sent Events, `lagged` for a follower that fell
//! behind).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use autosync_api::ErrorCode;
use autosync_service::{Command, Refusal, RefusalCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Sends one raw HTTP/1.1 request and returns the whole answer.
async fn http(addr: std::net::SocketAddr, request: String) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

async fn serve() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Command>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (listener, addr) = autosync_api::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let router = autosync_api::router(tx, "secret".into());
    tokio::spawn(autosync_api::serve(
        listener,
        router,
        std::future::pending(),
    ));
    (addr, rx)
}

#[tokio::test]
async fn status_without_the_token_should_be_refused() {
    let (addr, _rx) = serve().await;
    let answer = http(
        addr,
        "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let wrong = http(
        addr,
        "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
}

#[tokio::test]
async fn a_queue_request_with_the_token_should_reach_the_service() {
    let (addr, mut rx) = serve().await;
    let body = r#"{"ma":"hr","profile":"delta-import"}"#;
    let request = format!(
        "POST /api/v1/queue HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answering = tokio::spawn(async move {
        match rx.recv().await.unwrap() {
            Command::Queue {
                ma,
                profile,
                by,
                reply,
                ..
            } => {
                assert_eq!(
                    (ma.as_str(), profile.as_str(), by.as_str()),
                    ("hr", "delta-import", "api")
                );
                let _ = reply.send(Err(Refusal::new(
                    RefusalCode::UnknownMa,
                    "management agent `hr` is not there",
                )));
            }
            other => panic!("unexpected command {other:?}"),
        }
    });
    let answer = http(addr, request).await;
    answering.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert_eq!(
        json_body(&answer),
        serde_json::json!({ "error": "management agent `hr` is not there", "code": "unknown-ma" })
    );
}

#[test]
fn the_api_file_should_be_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = autosync_api::ApiFile::path_for(&dir.path().join("autosync.db"));
    let file = autosync_api::ApiFile {
        url: "http://127.0.0.1:1".into(),
        token: autosync_api::new_token(),
        store: None,
    };
    file.write(&path).unwrap();
    assert_eq!(autosync_api::ApiFile::read(&path), Some(file));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[cfg(unix)]
#[test]
fn a_new_api_file_should_never_put_the_token_into_an_older_wider_file() {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = autosync_api::ApiFile::path_for(&dir.path().join("autosync.db"));
    // A stale file from an earlier service, readable by everyone, held open
    // by someone else.
    std::fs::write(&path, "{}").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut held_open = std::fs::File::open(&path).unwrap();
    let file = autosync_api::ApiFile {
        url: "http://127.0.0.1:1".into(),
        token: autosync_api::new_token(),
        store: None,
    };
    file.write(&path).unwrap();
    let mut seen = String::new();
    held_open.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, "{}", "the token went into the old file");
    assert_eq!(autosync_api::ApiFile::read(&path), Some(file));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file is left"
    );
}

#[test]
fn the_token_comparison_should_accept_the_token_and_refuse_any_other() {
    let token = autosync_api::new_token();
    assert_eq!(token.len(), 32);
    assert!(autosync_api::token_matches(&token, &token.clone()));
    let mut same_length = token.clone().into_bytes();
    same_length[31] = if same_length[31] == b'0' { b'1' } else { b'0' };
    let same_length = String::from_utf8(same_length).unwrap();
    assert!(!autosync_api::token_matches(&token, &same_length));
    assert!(!autosync_api::token_matches(&token, &token[..31]));
    assert!(!autosync_api::token_matches(&token, &format!("{token}0")));
    assert!(!autosync_api::token_matches(&token, ""));
}

#[tokio::test]
async fn status_with_a_wrong_token_of_the_right_length_should_be_refused() {
    let (addr, _rx) = serve().await;
    // The server's token is "secret".
    for guess in ["secreT", "secre", "secrets"] {
        let answer = http(
            addr,
            format!("GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {guess}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{guess}: {answer}");
    }
}

/// A POST with the token and an optional JSON body.
fn post(path: &str, token: &str, body: Option<&str>) -> String {
    let body = body.unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The JSON body of an answer.
fn json_body(answer: &str) -> serde_json::Value {
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// Answers the next command, which must be a control, with `result`, and
/// hands back what it asked.
async fn answer_control(
    rx: &mut mpsc::UnboundedReceiver<Command>,
    result: Result<String, Refusal>,
) -> (autosync_service::Control, Option<String>, String) {
    match rx.recv().await.unwrap() {
        Command::Control {
            action,
            ma,
            by,
            reply,
        } => {
            reply.send(result).unwrap();
            (action, ma, by)
        }
        other => panic!("unexpected command {other:?}"),
    }
}

#[tokio::test]
async fn every_control_on_an_ma_should_reach_the_service_and_answer_its_sentence() {
    use autosync_service::Control;
    let (addr, mut rx) = serve().await;
    for control in Control::ALL.into_iter().filter(|c| !c.global_only()) {
        let path = autosync_api::control_path(control, Some("hr"));
        assert_eq!(path, format!("/api/v1/mas/hr/{}", control.name()));
        let asking = tokio::spawn(http(addr, post(&path, "secret", None)));
        let asked = answer_control(&mut rx, Ok(format!("{control}: done"))).await;
        assert_eq!(asked, (control, Some("hr".to_owned()), "api".to_owned()));
        let answer = asking.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(
            json_body(&answer),
            serde_json::json!({ "ok": true, "message": format!("{control}: done") })
        );
    }
}

#[tokio::test]
async fn a_global_control_should_reach_the_service_without_an_ma_and_record_who_asked() {
    use autosync_service::Control;
    let (addr, mut rx) = serve().await;
    for control in Control::ALL.into_iter().filter(|c| !c.needs_ma()) {
        let path = autosync_api::control_path(control, None);
        assert_eq!(path, format!("/api/v1/{}", control.name()));
        let asking = tokio::spawn(http(addr, post(&path, "secret", Some(r#"{"by":"alice"}"#))));
        let asked = answer_control(&mut rx, Ok("all done".into())).await;
        assert_eq!(asked, (control, None, "alice".to_owned()));
        let answer = asking.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(json_body(&answer)["message"], "all done");
    }
}

#[tokio::test]
async fn a_control_the_service_refuses_should_answer_its_code_and_reason() {
    let (addr, mut rx) = serve().await;
    let asking = tokio::spawn(http(addr, post("/api/v1/mas/hr/cancel", "secret", None)));
    let asked = answer_control(
        &mut rx,
        Err(Refusal::new(
            RefusalCode::NotRunning,
            "management agent `hr` is not running anything to cancel",
        )),
    )
    .await;
    assert_eq!(asked.0, autosync_service::Control::Cancel);
    let answer = asking.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    assert_eq!(
        json_body(&answer),
        serde_json::json!({
            "error": "management agent `hr` is not running anything to cancel",
            "code": "not-running",
        })
    );
}

/// Every refusal's status, by its code (README, API).
fn expected_status(code: RefusalCode) -> u16 {
    match code {
        RefusalCode::UnknownMa | RefusalCode::UnknownProfile => 404,
        RefusalCode::ServiceStopping => 503,
        RefusalCode::Busy | RefusalCode::HeldByThreshold | RefusalCode::NotRunning => 409,
        RefusalCode::MaDisabled
        | RefusalCode::NothingToApprove
        | RefusalCode::NothingToReject
        | RefusalCode::NotInMaintenance
        | RefusalCode::NeedsMa
        | RefusalCode::GlobalOnly
        | RefusalCode::EngineFailed
        | RefusalCode::ReloadRefused => 400,
    }
}

#[tokio::test]
async fn every_refusal_should_answer_its_status_and_code_through_the_router() {
    let (addr, mut rx) = serve().await;
    for code in RefusalCode::ALL {
        let asking = tokio::spawn(http(addr, post("/api/v1/mas/hr/stop", "secret", None)));
        answer_control(&mut rx, Err(Refusal::new(code, format!("refused: {code}")))).await;
        let answer = asking.await.unwrap();
        let status = expected_status(code);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{code}: {answer}"
        );
        assert_eq!(
            json_body(&answer),
            serde_json::json!({ "error": format!("refused: {code}"), "code": code.as_str() }),
            "{code}"
        );
        // A queue request's refusal answers the same way.
        let body = r#"{"ma":"hr","profile":"export"}"#;
        let asking = tokio::spawn(http(addr, post("/api/v1/queue", "secret", Some(body))));
        match rx.recv().await.unwrap() {
            Command::Queue { reply, .. } => reply.send(Err(Refusal::new(code, "no"))).unwrap(),
            other => panic!("unexpected command {other:?}"),
        }
        let answer = asking.await.unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{code}: {answer}"
        );
        assert_eq!(json_body(&answer)["code"], code.as_str());
    }
}

#[test]
fn the_error_codes_should_keep_their_names_and_statuses() {
    // Programs match on these: a code once published keeps its name and
    // its status. A new code is added here, never renamed.
    let expected: [(&str, u16); 22] = [
        ("unknown-ma", 404),
        ("unknown-profile", 404),
        ("held-by-threshold", 409),
        ("ma-disabled", 400),
        ("not-running", 409),
        ("busy", 409),
        ("nothing-to-approve", 400),
        ("nothing-to-reject", 400),
        ("not-in-maintenance", 400),
        ("needs-ma", 400),
        ("global-only", 400),
        ("engine-failed", 400),
        ("service-stopping", 503),
        ("reload-refused", 400),
        ("unauthorized", 401),
        ("unknown-action", 404),
        ("bad-body", 400),
        ("reload-unavailable", 400),
        ("events-unavailable", 400),
        ("not-found", 404),
        ("method-not-allowed", 405),
        ("body-too-large", 413),
    ];
    let codes: Vec<(&str, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.status().as_u16()))
        .collect();
    assert_eq!(codes, expected);
    for code in ErrorCode::ALL {
        assert_eq!(
            serde_json::to_value(code).unwrap(),
            serde_json::json!(code.as_str())
        );
        assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
    }
    // Every refusal of the service is an API code of the same name.
    for code in RefusalCode::ALL {
        assert_eq!(ErrorCode::from(code).as_str(), code.as_str());
        assert_eq!(
            ErrorCode::from(code).status().as_u16(),
            expected_status(code)
        );
    }
}

#[tokio::test]
async fn an_unknown_action_should_answer_404_with_the_list_of_actions() {
    let (addr, mut rx) = serve().await;
    for path in ["/api/v1/mas/hr/explode", "/api/v1/explode"] {
        let answer = http(addr, post(path, "secret", None)).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        assert_eq!(json_body(&answer)["code"], "unknown-action");
        let error = json_body(&answer)["error"].as_str().unwrap().to_owned();
        assert!(error.contains("`explode`"), "{error}");
        for control in autosync_service::Control::ALL {
            assert!(error.contains(control.name()), "{error}");
        }
    }
    assert!(
        rx.try_recv().is_err(),
        "an unknown action reached the service"
    );
}

#[tokio::test]
async fn a_control_asked_in_the_wrong_place_should_answer_400_without_reaching_the_service() {
    let (addr, mut rx) = serve().await;
    let answer = http(addr, post("/api/v1/cancel", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "needs-ma");
    let error = json_body(&answer)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("needs a management agent"), "{error}");
    let answer = http(addr, post("/api/v1/mas/hr/maintenance", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "global-only");
    let error = json_body(&answer)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("whole service"), "{error}");
    let answer = http(
        addr,
        post("/api/v1/mas/hr/stop", "secret", Some(r#"{"who":"x"}"#)),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "bad-body");
    for body in [r#"{"ma":"hr"}"#, "not json", ""] {
        let answer = http(addr, post("/api/v1/queue", "secret", Some(body))).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{body}: {answer}");
        assert_eq!(json_body(&answer)["code"], "bad-body", "{body}");
    }
    assert!(
        rx.try_recv().is_err(),
        "a misplaced control reached the service"
    );
}

#[tokio::test]
async fn a_control_without_the_token_should_be_refused_before_anything_else() {
    let (addr, mut rx) = serve().await;
    for path in [
        "/api/v1/mas/hr/stop",
        "/api/v1/stop",
        "/api/v1/explode",
        "/api/v1/queue",
    ] {
        let answer = http(addr, post(path, "guess", None)).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert_eq!(
            json_body(&answer),
            serde_json::json!({ "error": "missing or wrong bearer token", "code": "unauthorized" })
        );
        let no_token = http(
            addr,
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(no_token.starts_with("HTTP/1.1 401"), "{no_token}");
    }
    assert!(
        rx.try_recv().is_err(),
        "an unauthorised control reached the service"
    );
}

#[tokio::test]
async fn a_control_while_the_service_stops_should_answer_503() {
    let (addr, mut rx) = serve().await;
    // The service takes the command but stops before answering.
    let asking = tokio::spawn(http(addr, post("/api/v1/stop", "secret", None)));
    drop(rx.recv().await.unwrap());
    let answer = asking.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "service-stopping");
    // The service is gone.
    drop(rx);
    let answer = http(addr, post("/api/v1/mas/hr/start", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "service-stopping");
}

#[tokio::test]
async fn an_ma_name_that_is_not_url_safe_should_reach_the_service_as_typed() {
    use autosync_service::Control;
    let path = autosync_api::control_path(Control::Stop, Some("h r/ä"));
    assert_eq!(path, "/api/v1/mas/h%20r%2F%C3%A4/stop");
    let (addr, mut rx) = serve().await;
    let asking = tokio::spawn(http(addr, post(&path, "secret", None)));
    let asked = answer_control(
        &mut rx,
        Err(Refusal::new(
            RefusalCode::UnknownMa,
            "no management agent named `h r/ä`",
        )),
    )
    .await;
    assert_eq!(
        asked,
        (Control::Stop, Some("h r/ä".to_owned()), "api".to_owned())
    );
    let answer = asking.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "unknown-ma");
}

#[tokio::test]
async fn reload_should_answer_what_the_reload_said() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let (listener, addr) = autosync_api::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let reload: autosync_api::Reload = std::sync::Arc::new(move || {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if n == 0 {
                Ok("configuration reloaded: `hr` changed".to_owned())
            } else {
                Err("configuration reload refused: autosync.toml:3:1 ...".to_owned())
            }
        })
    });
    let router = autosync_api::router_with_reload(tx, "secret".into(), reload);
    tokio::spawn(autosync_api::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let answer = http(addr, post("/api/v1/reload", "guess", None)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let answer = http(addr, post("/api/v1/reload", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        json_body(&answer)["message"],
        "configuration reloaded: `hr` changed"
    );
    let answer = http(addr, post("/api/v1/reload", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "reload-refused");
    assert!(
        json_body(&answer)["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{answer}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn reload_without_a_reloader_should_answer_reload_unavailable() {
    let (addr, _rx) = serve().await;
    let answer = http(addr, post("/api/v1/reload", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "reload-unavailable");
}

/// One Server-Sent Event as the client reads it.
#[derive(Debug, PartialEq)]
struct Frame {
    event: String,
    id: Option<String>,
    data: serde_json::Value,
}

/// A client of `GET /api/v1/events`: the head, then the frames of the
/// chunked body as they come.
struct EventsClient {
    reader: tokio::io::BufReader<tokio::net::TcpStream>,
    pending: String,
}

impl EventsClient {
    /// Opens the stream; `Err` with the whole answer when it is refused.
    async fn open(addr: std::net::SocketAddr, token: &str) -> Result<EventsClient, String> {
        use tokio::io::AsyncBufReadExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            within(reader.read_line(&mut line)).await.unwrap();
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        if !head.starts_with("HTTP/1.1 200") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            within(reader.read_exact(&mut body)).await.unwrap();
            return Err(format!("{head}{}", String::from_utf8(body).unwrap()));
        }
        assert!(head.contains("text/event-stream"), "{head}");
        Ok(EventsClient {
            reader,
            pending: String::new(),
        })
    }

    /// The next frame (keep-alive comments skipped); `None` when the
    /// stream ended.
    async fn next(&mut self) -> Option<Frame> {
        use tokio::io::AsyncBufReadExt;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut frame = Frame {
                    event: String::new(),
                    id: None,
                    data: serde_json::Value::Null,
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        frame.event = v.to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        frame.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        frame.data = serde_json::from_str(v).unwrap();
                    }
                }
                if any {
                    return Some(frame);
                }
                continue;
            }
            let mut size = String::new();
            within(self.reader.read_line(&mut size)).await.unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                return None;
            }
            let mut chunk = vec![0; size + 2];
            within(self.reader.read_exact(&mut chunk)).await.unwrap();
            chunk.truncate(size);
            self.pending.push_str(&String::from_utf8(chunk).unwrap());
        }
    }
}

/// Awaits `f`, bounded (a bound, not a timing assertion).
async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(10), f)
        .await
        .expect("nothing came from the API within 10 s")
}

/// An API serving `feed`'s events (no reloader).
async fn serve_events(feed: Option<autosync_service::EventFeed>) -> std::net::SocketAddr {
    let (tx, rx) = mpsc::unbounded_channel();
    std::mem::forget(rx);
    let (listener, addr) = autosync_api::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let router = autosync_api::router_with(tx, "secret".into(), None, feed);
    tokio::spawn(autosync_api::serve(
        listener,
        router,
        std::future::pending(),
    ));
    addr
}

fn published(seq: u64, event: autosync_service::ServiceEvent) -> autosync_service::Published {
    autosync_service::Published { seq, event }
}

fn state_changed(ma: &str, to: autosync_service::MaStateName) -> autosync_service::ServiceEvent {
    autosync_service::ServiceEvent::StateChanged {
        at: at(),
        ma: ma.into(),
        from: None,
        to: Some(to),
        detail: None,
    }
}

/// A fixed time.
fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::UNIX_EPOCH
}

#[tokio::test]
async fn the_event_stream_should_send_each_event_with_its_type_number_and_json_and_end_with_the_service()
 {
    use autosync_service::{MaStateName, ServiceEvent, ServiceState};
    let (sender, _) = tokio::sync::broadcast::channel(16);
    let addr = serve_events(Some(autosync_service::EventFeed::new(&sender))).await;
    let mut client = EventsClient::open(addr, "secret").await.unwrap();
    let sent = [
        published(
            1,
            ServiceEvent::Service {
                at: at(),
                state: ServiceState::Started,
            },
        ),
        published(2, state_changed("hr", MaStateName::Idle)),
        published(3, state_changed("hr", MaStateName::Running)),
    ];
    for p in &sent {
        sender.send(p.clone()).unwrap();
    }
    for p in &sent {
        let frame = client.next().await.unwrap();
        assert_eq!(frame.event, p.event.kind());
        assert_eq!(frame.id, Some(p.seq.to_string()));
        assert_eq!(frame.data, serde_json::to_value(p).unwrap());
        assert_eq!(frame.data["type"], p.event.kind());
    }
    // The service stops: the stream ends.
    drop(sender);
    assert_eq!(client.next().await, None);
}

#[tokio::test]
async fn a_follower_that_falls_behind_should_be_told_how_many_events_it_missed_and_go_on() {
    use autosync_service::MaStateName;
    let (sender, _) = tokio::sync::broadcast::channel(4);
    let addr = serve_events(Some(autosync_service::EventFeed::new(&sender))).await;
    let mut client = EventsClient::open(addr, "secret").await.unwrap();
    // Ten at once, on this one thread: the API's receiver keeps only four.
    for seq in 1..=10 {
        sender
            .send(published(seq, state_changed("hr", MaStateName::Idle)))
            .unwrap();
    }
    let lagged = client.next().await.unwrap();
    assert_eq!(
        lagged,
        Frame {
            event: "lagged".into(),
            id: None,
            data: serde_json::json!({ "type": "lagged", "missed": 6 }),
        }
    );
    for seq in 7..=10 {
        let frame = client.next().await.unwrap();
        assert_eq!(frame.id, Some(seq.to_string()));
    }
    // And the stream goes on.
    sender
        .send(published(11, state_changed("hr", MaStateName::Running)))
        .unwrap();
    assert_eq!(client.next().await.unwrap().id, Some("11".into()));
}

#[tokio::test]
async fn the_event_stream_should_be_refused_without_the_token_a_feed_or_a_running_service() {
    let (sender, _) = tokio::sync::broadcast::channel(4);
    let feed = autosync_service::EventFeed::new(&sender);
    let addr = serve_events(Some(feed.clone())).await;
    let answer = EventsClient::open(addr, "guess").await.err().unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "unauthorized");
    // The service has stopped.
    drop(sender);
    let answer = EventsClient::open(addr, "secret").await.err().unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "service-stopping");
    // An API without the service's events.
    let addr = serve_events(None).await;
    let answer = EventsClient::open(addr, "secret").await.err().unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "events-unavailable");
}

/// An `api.json` copied with its store's folder (a snapshot restored
/// elsewhere) names the service of the original store: read beside the
/// copy it is left aside, so that commands on the copy never reach that
/// service (a black-box review: `maintenance` on the copy put the running
/// original in maintenance).
#[test]
fn an_api_file_copied_beside_another_store_should_be_left_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (prod, copy) = (dir.path().join("prod"), dir.path().join("copy"));
    std::fs::create_dir(&prod).unwrap();
    std::fs::create_dir(&copy).unwrap();
    let (prod_store, copy_store) = (prod.join("autosync.db"), copy.join("autosync.db"));
    std::fs::write(&prod_store, b"x").unwrap();
    std::fs::write(&copy_store, b"x").unwrap();
    let file = autosync_api::ApiFile {
        url: "http://127.0.0.1:1".into(),
        token: autosync_api::new_token(),
        store: Some(autosync_api::ApiFile::store_name(&prod_store)),
    };
    file.write(&autosync_api::ApiFile::path_for(&prod_store))
        .unwrap();
    std::fs::copy(
        autosync_api::ApiFile::path_for(&prod_store),
        autosync_api::ApiFile::path_for(&copy_store),
    )
    .unwrap();
    assert_eq!(autosync_api::ApiFile::for_store(&prod_store), Some(file));
    assert_eq!(autosync_api::ApiFile::for_store(&copy_store), None);
    // Reached through a symbolic link, it is the same store.
    #[cfg(unix)]
    {
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&prod, &link).unwrap();
        assert!(autosync_api::ApiFile::for_store(&link.join("autosync.db")).is_some());
    }
}
