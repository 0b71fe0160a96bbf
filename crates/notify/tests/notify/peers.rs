//! Real peers on loopback: an SMTP server (Python's aiosmtpd) that writes
//! each message it accepts to a JSON file before answering 250, an HTTP
//! server that records requests, and one that never answers.

use autosync_model::{
    ErrorStage, RunReason, RunRecord, RunStatus, StepCounters, StepRecord, StepType,
};
use autosync_notify::ObjectErrorSummary;
use chrono::{DateTime, TimeZone, Utc};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const SMTP_SINK: &str = r#"
import asyncio, json, os, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

out, mode = sys.argv[1], sys.argv[2]
count = 0
ctx = None
if mode != "plain":
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])

class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        path = os.path.join(out, "%04d.json" % count)
        auth = session.auth_data
        login = None
        if isinstance(auth, LoginPassword):
            login = [auth.login.decode(), auth.password.decode()]
        tls = session.ssl is not None or \
            server.transport.get_extra_info("ssl_object") is not None
        with open(path + ".tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "login": login, "tls": tls,
                       "data": envelope.content.decode("utf8", "replace")}, f)
        os.rename(path + ".tmp", path)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True, auth_data=auth_data)

async def main():
    loop = asyncio.get_running_loop()
    handler = Handler()
    if mode == "starttls":
        factory = lambda: SMTP(handler, authenticator=authenticator, auth_require_tls=True,
                               tls_context=ctx, require_starttls=True)
    else:
        factory = lambda: SMTP(handler, authenticator=authenticator, auth_require_tls=False)
    srv = await loop.create_server(factory, "127.0.0.1", 0,
                                   ssl=ctx if mode == "tls" else None)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()

asyncio.run(main())
"#;

/// A Python with aiosmtpd.
fn python() -> String {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("AUTOSYNC_TEST_PYTHON") {
        candidates.push(p);
    }
    candidates.extend(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    for c in &candidates {
        let ok = Command::new(c)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c.clone();
        }
    }
    panic!(
        "no Python with aiosmtpd (tried {candidates:?}): run scripts/test.sh, which installs \
         it (apt-get install -y python3-aiosmtpd), or set AUTOSYNC_TEST_PYTHON"
    );
}

/// A running aiosmtpd; killed on drop.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// One message the sink accepted.
#[derive(Debug, serde::Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub login: Option<Vec<String>>,
    pub tls: bool,
    pub data: String,
}

impl Mail {
    /// A header's value (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The body, decoded from quoted-printable when it is.
    pub fn body(&self) -> String {
        let (head, body) = self.data.split_once("\r\n\r\n").unwrap_or(("", ""));
        let head = head.to_ascii_lowercase();
        if head.contains("quoted-printable") {
            decode_qp(body)
        } else if head.contains("content-transfer-encoding: base64") {
            use base64::Engine as _;
            let joined: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap();
            String::from_utf8(bytes).unwrap().replace("\r\n", "\n")
        } else {
            body.replace("\r\n", "\n")
        }
    }
}

fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// How the SMTP sink secures connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkTls {
    Plain,
    /// STARTTLS offered and required before AUTH and MAIL.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// A test CA and a server certificate for `localhost` and 127.0.0.1 that
/// it signed, written as PEM files `ca.pem`, `server.pem`, `server.key`.
pub fn write_certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "autosync test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

impl SmtpSink {
    /// Starts a plain-text server.
    pub fn start() -> SmtpSink {
        Self::start_with(SinkTls::Plain)
    }

    /// The test CA's certificate file (TLS modes).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Starts the server and waits until it listens (it prints its port).
    pub fn start_with(tls: SinkTls) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("sink.py");
        std::fs::write(&script, SMTP_SINK).unwrap();
        let mails = dir.path().join("mails");
        std::fs::create_dir(&mails).unwrap();
        let mode = match tls {
            SinkTls::Plain => "plain",
            SinkTls::Starttls => "starttls",
            SinkTls::Tls => "tls",
        };
        if tls != SinkTls::Plain {
            write_certificates(dir.path());
        }
        let mut child = Command::new(python())
            .arg(&script)
            .arg(&mails)
            .arg(mode)
            .arg(dir.path().join("server.pem"))
            .arg(dir.path().join("server.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the SMTP sink did not start (printed {line:?})"));
        SmtpSink { child, port, dir }
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mails")
    }

    /// The messages accepted so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        read_mails(&self.mail_dir())
    }
}

fn read_mails(dir: &Path) -> Vec<Mail> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
