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
                let _ = reply.send(Err("management agent `hr` is not there".into()));
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
