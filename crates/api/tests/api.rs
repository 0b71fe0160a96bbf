//! The API over a real (loopback) socket: the token is required, and a
//! queue request reaches the service's command channel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use autosync_service::Command;
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
                let _ = reply.send(Err(autosync_service::Refusal::new(
                    autosync_service::RefusalCode::UnknownMa,
                    "management agent `hr` is not there",
                )));
            }
            other => panic!("unexpected command {other:?}"),
        }
    });
    let answer = http(addr, request).await;
    answering.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("is not there"), "{answer}");
}

#[test]
fn the_api_file_should_be_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = autosync_api::ApiFile::path_for(&dir.path().join("autosync.db"));
    let file = autosync_api::ApiFile {
        url: "http://127.0.0.1:1".into(),
        token: autosync_api::new_token(),
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
    result: Result<String, String>,
) -> (autosync_service::Control, Option<String>, String) {
    match rx.recv().await.unwrap() {
        Command::Control {
            action,
            ma,
            by,
            reply,
        } => {
            reply
                .send(result.map_err(|m| {
                    autosync_service::Refusal::new(autosync_service::RefusalCode::NotRunning, m)
                }))
                .unwrap();
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
async fn a_control_the_service_refuses_should_answer_400_with_its_reason() {
    let (addr, mut rx) = serve().await;
    let asking = tokio::spawn(http(addr, post("/api/v1/mas/hr/cancel", "secret", None)));
    let asked = answer_control(
        &mut rx,
        Err("management agent `hr` is not running anything to cancel".into()),
    )
    .await;
    assert_eq!(asked.0, autosync_service::Control::Cancel);
    let answer = asking.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(
        json_body(&answer)["error"],
        "management agent `hr` is not running anything to cancel"
    );
}

#[tokio::test]
async fn an_unknown_action_should_answer_404_with_the_list_of_actions() {
    let (addr, mut rx) = serve().await;
    for path in ["/api/v1/mas/hr/explode", "/api/v1/explode"] {
        let answer = http(addr, post(path, "secret", None)).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
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
    let error = json_body(&answer)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("needs a management agent"), "{error}");
    let answer = http(addr, post("/api/v1/mas/hr/maintenance", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let error = json_body(&answer)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("whole service"), "{error}");
    let answer = http(
        addr,
        post("/api/v1/mas/hr/stop", "secret", Some(r#"{"who":"x"}"#)),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        rx.try_recv().is_err(),
        "a misplaced control reached the service"
    );
}

#[tokio::test]
async fn a_control_without_the_token_should_be_refused_before_anything_else() {
    let (addr, mut rx) = serve().await;
    for path in ["/api/v1/mas/hr/stop", "/api/v1/stop", "/api/v1/explode"] {
        let answer = http(addr, post(path, "guess", None)).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
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
    // The service is gone.
    drop(rx);
    let answer = http(addr, post("/api/v1/mas/hr/start", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}

#[tokio::test]
async fn an_ma_name_that_is_not_url_safe_should_reach_the_service_as_typed() {
    use autosync_service::Control;
    let path = autosync_api::control_path(Control::Stop, Some("h r/ä"));
    assert_eq!(path, "/api/v1/mas/h%20r%2F%C3%A4/stop");
    let (addr, mut rx) = serve().await;
    let asking = tokio::spawn(http(addr, post(&path, "secret", None)));
    let asked = answer_control(&mut rx, Err("no management agent named `h r/ä`".into())).await;
    assert_eq!(
        asked,
        (Control::Stop, Some("h r/ä".to_owned()), "api".to_owned())
    );
    let answer = asking.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
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
async fn reload_without_a_reloader_should_answer_404() {
    let (addr, _rx) = serve().await;
    let answer = http(addr, post("/api/v1/reload", "secret", None)).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}
