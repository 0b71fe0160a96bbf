//! An SMTP server for tests: Python's aiosmtpd on a free loopback port,
//! plain, with STARTTLS (required before AUTH and MAIL) or TLS from the
//! first byte, with a CA and certificate the kit makes ([`crate::tls`]).
//! It accepts any login and writes each message it accepts to a JSON file
//! before it answers 250, so a test reads exactly what was delivered.
//!
//! Install: `apt-get install python3-aiosmtpd` (`scripts/test.sh` does it
//! when missing), or point `AUTOSYNC_TEST_PYTHON` at a Python that has it.

use crate::KitError;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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
fn python() -> Result<String, KitError> {
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
            return Ok(c.clone());
        }
    }
    Err(KitError::new(format!(
        "no Python with aiosmtpd (tried {candidates:?}): run scripts/test.sh, which installs \
         it (apt-get install -y python3-aiosmtpd), or set AUTOSYNC_TEST_PYTHON"
    )))
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

/// A running aiosmtpd; killed (and its folder removed) on drop.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// One message the sink accepted.
#[derive(Debug, serde::Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The login and password of AUTH, when the client logged in.
    pub login: Option<Vec<String>>,
    /// Whether the message came over TLS.
    pub tls: bool,
    /// The message as sent (headers and body, CRLF line ends).
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

    /// The body, decoded from quoted-printable or base64 when it is.
    pub fn body(&self) -> String {
        let (head, body) = self.data.split_once("\r\n\r\n").unwrap_or(("", ""));
        let head = head.to_ascii_lowercase();
        if head.contains("quoted-printable") {
            decode_qp(body)
        } else if head.contains("content-transfer-encoding: base64") {
            use base64::Engine as _;
            let joined: String = body.split_whitespace().collect();
            match base64::engine::general_purpose::STANDARD.decode(joined) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).replace("\r\n", "\n"),
                Err(e) => format!("(a base64 body that does not decode: {e})"),
            }
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
            && let Some(hex) = joined.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
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

/// A test CA and a server certificate for `localhost` and 127.0.0.1 that
/// it signed, written to `dir` as `ca.pem`, `server.pem`, `server.key`.
pub fn write_certificates(dir: &Path) -> Result<(), KitError> {
    let c = crate::tls::server_certificates()?;
    std::fs::write(dir.join("ca.pem"), c.ca_pem)?;
    std::fs::write(dir.join("server.pem"), c.cert_pem)?;
    std::fs::write(dir.join("server.key"), c.key_pem)?;
    Ok(())
}

impl SmtpSink {
    /// Starts a plain-text server.
    pub fn start() -> Result<SmtpSink, KitError> {
        Self::start_with(SinkTls::Plain)
    }

    /// Starts the server and waits until it listens (it prints its port).
    pub fn start_with(tls: SinkTls) -> Result<SmtpSink, KitError> {
        let dir = tempfile::Builder::new()
            .prefix("autosync-smtp-")
            .tempdir()?;
        let script = dir.path().join("sink.py");
        std::fs::write(&script, SMTP_SINK)?;
        let mails = dir.path().join("mails");
        std::fs::create_dir(&mails)?;
        let mode = match tls {
            SinkTls::Plain => "plain",
            SinkTls::Starttls => "starttls",
            SinkTls::Tls => "tls",
        };
        if tls != SinkTls::Plain {
            write_certificates(dir.path())?;
        }
        let mut child = Command::new(python()?)
            .arg(&script)
            .arg(&mails)
            .arg(mode)
            .arg(dir.path().join("server.pem"))
            .arg(dir.path().join("server.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        match line.trim().parse() {
            Ok(port) => Ok(SmtpSink { child, port, dir }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(KitError::new(format!(
                    "the SMTP sink did not start (it printed {line:?})"
                )))
            }
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA's certificate file (TLS modes).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The messages accepted so far, in order.
    pub fn mails(&self) -> Result<Vec<Mail>, KitError> {
        let dir = self.dir.path().join("mails");
        let mut names: Vec<PathBuf> = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|e| e == "json") {
                names.push(p);
            }
        }
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p)?;
                serde_json::from_str(&text)
                    .map_err(|e| KitError::new(format!("the sink's record {}: {e}", p.display())))
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
