//! Real peers on loopback: the test kit's SMTP server (Python's aiosmtpd,
//! which keeps each message it accepts), an HTTP server that records
//! requests, and one that never answers.

use autosync_model::{
    ErrorStage, RunReason, RunRecord, RunStatus, StepCounters, StepRecord, StepType,
};
use autosync_notify::ObjectErrorSummary;
use chrono::{DateTime, TimeZone, Utc};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A test CA and a server certificate (`ca.pem`, `server.pem`,
/// `server.key` in `dir`).
pub fn write_certificates(dir: &Path) {
    autosync_testkit::smtp::write_certificates(dir).unwrap();
}

/// One HTTP request as received.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP server answering `status` to every request; returns its base
/// URL and the requests it received.
pub async fn http_sink(status: u16) -> (String, mpsc::UnboundedReceiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap().split(' ');
                let method = first.next().unwrap().to_owned();
                let path = first.next().unwrap().to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let _ = tx.send(Request {
                    method,
                    path,
                    headers,
                    body,
                });
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), rx)
}

/// An HTTP server that accepts connections and never answers.
pub async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    format!("http://{addr}")
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
}

/// A finished run of `ma` / `profile` ending in `status`.
pub fn run(id: i64, ma: &str, profile: &str, status: RunStatus) -> RunRecord {
    RunRecord {
        id,
        ma: ma.into(),
        profile: profile.into(),
        status,
        started_at: t(10, 0),
        ended_at: Some(t(10, 1)),
        reason: RunReason::Trigger {
            trigger: "interval".into(),
        },
        steps: vec![StepRecord {
            step_type: StepType::DeltaImport,
            status,
            started_at: t(10, 0),
            ended_at: Some(t(10, 1)),
            counters: StepCounters::for_step(StepType::DeltaImport),
            errors: 12,
            message: Some("connection refused by hr-db:5432".into()),
        }],
    }
}

/// `n` per-object errors of type `kind`.
pub fn errors(n: usize, kind: &str) -> Vec<ObjectErrorSummary> {
    (0..n)
        .map(|i| ObjectErrorSummary {
            step_index: 0,
            object: format!("emp-{i:03}"),
            stage: ErrorStage::Import,
            error_type: kind.into(),
            detail: format!("detail of error {i}"),
        })
        .collect()
}
