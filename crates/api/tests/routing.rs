//! What the router itself answers, around the routes: authentication
//! before anything else (path, method, body), and every error as
//! `{ "error", "code" }` (an unknown path, a method a route does not take,
//! a body over the limit, a body with a field its route does not take).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use autosync_service::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Sends one raw HTTP/1.1 request and returns the whole answer. The
/// request is written while the answer is read: a server that answers
/// before reading a large body (and closes) is still heard.
async fn http(addr: std::net::SocketAddr, request: Vec<u8>) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writing = tokio::spawn(async move {
        // The server may close before it read everything: not an error here.
        let _ = write.write_all(&request).await;
        write
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        read.read_to_end(&mut answer),
    )
    .await
    .expect("no answer within 20 s");
    drop(writing.await);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request: `token` (when given) as the bearer token, `body` with its
/// length.
fn request(method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Vec<u8> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn serve_with(
    reload: Option<autosync_api::Reload>,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Command>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (listener, addr) = autosync_api::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let router = autosync_api::router_with(tx, "secret".into(), reload, None);
    tokio::spawn(autosync_api::serve(
        listener,
        router,
        std::future::pending(),
    ));
    (addr, rx)
}

async fn serve() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Command>) {
    serve_with(None).await
}

/// The answer's status.
fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {answer}"))
}

/// A header of the answer (its name in lower case), if it has it.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let (head, _) = answer.split_once("\r\n\r\n").unwrap();
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The JSON body of an answer, which must say it is JSON.
fn json_body(answer: &str) -> serde_json::Value {
    assert_eq!(
        header(answer, "content-type"),
        Some("application/json"),
        "{answer}"
    );
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// A body one byte over the limit.
fn too_large() -> Vec<u8> {
    vec![b'a'; autosync_api::BODY_LIMIT + 1]
}

#[tokio::test]
async fn every_request_without_the_token_should_answer_401_whatever_its_path_method_or_body() {
    let (addr, mut rx) = serve().await;
    let big = too_large();
    let cases: [(&str, &str, &[u8]); 9] = [
        ("GET", "/api/v1/nope", b""),
        ("GET", "/api/v1/mas/hr", b""),
        ("GET", "/nothing/here", b""),
        ("POST", "/api/v1/status", b""),
        ("DELETE", "/api/v1/queue", b""),
        ("GET", "/api/v1/stop", b""),
        ("POST", "/api/v1/mas/%FF/stop", b""),
        ("POST", "/api/v1/queue", &big),
        ("POST", "/api/v1/mas/hr/stop", &big),
    ];
    for (method, path, body) in cases {
        for token in [None, Some("guess")] {
            let answer = http(addr, request(method, path, token, body)).await;
            assert_eq!(status(&answer), 401, "{method} {path} {token:?}: {answer}");
            assert_eq!(
                json_body(&answer),
                serde_json::json!({ "error": "missing or wrong bearer token", "code": "unauthorized" }),
                "{method} {path}"
            );
            assert_eq!(
                header(&answer, "allow"),
                None,
                "a refused request learns nothing of the routes: {answer}"
            );
        }
    }
    assert!(
        rx.try_recv().is_err(),
        "an unauthorised request reached the service"
    );
}

#[tokio::test]
async fn an_unknown_path_should_answer_404_not_found() {
    let (addr, mut rx) = serve().await;
    for (method, path) in [
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v1/mas/hr"),
        ("POST", "/api/v1/mas/hr"),
        ("GET", "/"),
        ("POST", "/api/v1/mas/hr/stop/now"),
        ("GET", "/api/v1/mas/hr/explode"),
        ("DELETE", "/api/v1/explode"),
        // Not UTF-8 once decoded: it names no MA.
        ("POST", "/api/v1/mas/%FF/stop"),
    ] {
        let answer = http(addr, request(method, path, Some("secret"), b"")).await;
        assert_eq!(status(&answer), 404, "{method} {path}: {answer}");
        let body = json_body(&answer);
        assert_eq!(body["code"], "not-found", "{method} {path}: {answer}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("no route"), "{error}");
        assert_eq!(header(&answer, "allow"), None, "{method} {path}: {answer}");
    }
    assert!(
        rx.try_recv().is_err(),
        "an unknown path reached the service"
    );
}

#[tokio::test]
async fn a_method_a_route_does_not_take_should_answer_405_with_its_allow_header() {
    let (addr, mut rx) = serve().await;
    for (method, path, allow) in [
        ("POST", "/api/v1/status", "GET,HEAD"),
        ("DELETE", "/api/v1/events", "GET,HEAD"),
        ("DELETE", "/api/v1/queue", "POST"),
        ("GET", "/api/v1/queue", "POST"),
        ("GET", "/api/v1/reload", "POST"),
        ("GET", "/api/v1/stop", "POST"),
        ("PUT", "/api/v1/mas/hr/stop", "POST"),
    ] {
        let answer = http(addr, request(method, path, Some("secret"), b"")).await;
        assert_eq!(status(&answer), 405, "{method} {path}: {answer}");
        assert_eq!(header(&answer, "allow"), Some(allow), "{answer}");
        let body = json_body(&answer);
        assert_eq!(body["code"], "method-not-allowed", "{answer}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(path) && error.contains(method), "{error}");
    }
    assert!(rx.try_recv().is_err(), "a wrong method reached the service");
}

#[tokio::test]
async fn a_body_over_the_limit_should_answer_413_saying_the_limit() {
    let (addr, mut rx) = serve().await;
    let big = too_large();
    for path in [
        "/api/v1/queue",
        "/api/v1/mas/hr/stop",
        "/api/v1/stop",
        "/api/v1/reload",
    ] {
        let answer = http(addr, request("POST", path, Some("secret"), &big)).await;
        assert_eq!(status(&answer), 413, "{path}: {answer}");
        let body = json_body(&answer);
        assert_eq!(body["code"], "body-too-large", "{answer}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(&autosync_api::BODY_LIMIT.to_string()),
            "the error says the limit: {error}"
        );
    }
    assert!(
        rx.try_recv().is_err(),
        "a body too large reached the service"
    );
}

#[tokio::test]
async fn a_queue_body_with_a_field_it_does_not_take_should_be_refused_naming_it() {
    let (addr, mut rx) = serve().await;
    for (body, field) in [
        (
            r#"{"ma":"hr","profile":"full-import","run_immedaite":true}"#,
            "run_immedaite",
        ),
        (
            r#"{"ma":"hr","profile":"full-import","priority":"high"}"#,
            "priority",
        ),
    ] {
        let asking = http(
            addr,
            request("POST", "/api/v1/queue", Some("secret"), body.as_bytes()),
        );
        let answer = tokio::select! {
            answer = asking => answer,
            Some(command) = rx.recv() => {
                panic!("{body}: the request reached the service: {command:?}")
            }
        };
        assert_eq!(status(&answer), 400, "{body}: {answer}");
        let json = json_body(&answer);
        assert_eq!(json["code"], "bad-body", "{answer}");
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(&format!("`{field}`")), "{error}");
    }
    assert!(
        rx.try_recv().is_err(),
        "a refused queue body reached the service"
    );
}

#[tokio::test]
async fn a_reload_body_should_be_empty_or_an_empty_object() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let reload: autosync_api::Reload = std::sync::Arc::new(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok("configuration reloaded: nothing changed".to_owned()) })
    });
    let (addr, _rx) = serve_with(Some(reload)).await;
    for (body, says) in [
        ("this is not json", "expected"),
        (r#"{"by":"alice"}"#, "`by`"),
        ("[]", "expected"),
        ("\"reload\"", "expected"),
    ] {
        let answer = http(
            addr,
            request("POST", "/api/v1/reload", Some("secret"), body.as_bytes()),
        )
        .await;
        assert_eq!(status(&answer), 400, "{body}: {answer}");
        let json = json_body(&answer);
        assert_eq!(json["code"], "bad-body", "{body}: {answer}");
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a refused body reloaded"
    );
    for body in ["", " \n", "{}", " { } "] {
        let answer = http(
            addr,
            request("POST", "/api/v1/reload", Some("secret"), body.as_bytes()),
        )
        .await;
        assert_eq!(status(&answer), 200, "{body:?}: {answer}");
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
}
