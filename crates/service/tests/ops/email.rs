//! Email end to end: a failed run of the service becomes a message in a
//! real SMTP server (Python's aiosmtpd) on loopback.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const SMTP_SINK: &str = r#"
import asyncio, json, os, sys
from aiosmtpd.smtp import SMTP
out = sys.argv[1]
count = 0
class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        path = os.path.join(out, "%04d.json" % count)
        with open(path + ".tmp", "w") as f:
            json.dump({"rcpt_tos": envelope.rcpt_tos,
                       "data": envelope.content.decode("utf8", "replace")}, f)
        os.rename(path + ".tmp", path)
        return "250 OK"
async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
asyncio.run(main())
"#;

/// A Python with aiosmtpd (as the notify crate's tests find it).
fn python() -> String {
    let mut candidates: Vec<String> = std::env::var("AUTOSYNC_TEST_PYTHON").into_iter().collect();
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
        "no Python with aiosmtpd (tried {candidates:?}): run scripts/test.sh, which installs it, or set AUTOSYNC_TEST_PYTHON"
    );
}

struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("sink.py");
        std::fs::write(&script, SMTP_SINK).unwrap();
        std::fs::create_dir(dir.path().join("mails")).unwrap();
        let mut child = Command::new(python())
            .arg(&script)
            .arg(dir.path().join("mails"))
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

    fn mails(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mails"))
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
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_emailed_through_a_real_smtp_server() {
    let smtp = SmtpSink::start();
    let dir = converged_quickstart().await;
    edit_config(dir.path(), |t| {
        let t = hr_controller(
            &t,
            r#"triggers = []
retry = { max_attempts = 0, backoff = "1h", max_backoff = "1h" }"#,
        );
        global_controller(
            &t,
            &format!(
                r#"[controller.notifications.smtp]
host = "127.0.0.1"
port = {}
security = "none"
from = "autosync@example.org"
to = ["ops@example.org"]"#,
                smtp.port
            ),
        )
    });
    std::fs::remove_file(dir.path().join("data/hr.csv")).unwrap();
    let svc = Running::start(dir.path());
    svc.queue("hr", "delta-import").await.unwrap();
    wait_for("an email", || !smtp.mails().is_empty()).await;
    let mail = &smtp.mails()[0];
    assert_eq!(mail["rcpt_tos"][0], "ops@example.org");
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("hr/delta-import"), "{data}");
    assert!(data.contains("stopped-server-down"), "{data}");
    svc.shutdown().await;
}
