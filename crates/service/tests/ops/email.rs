//! Email end to end: a failed run of the service becomes a message in a
//! real SMTP server (the test kit's: Python's aiosmtpd) on loopback.

use crate::support::*;
use autosync_testkit::SmtpSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_emailed_through_a_real_smtp_server() {
    let smtp = SmtpSink::start().unwrap();
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
                smtp.port()
            ),
        )
    });
    std::fs::remove_file(dir.path().join("data/hr.csv")).unwrap();
    let svc = Running::start(dir.path());
    svc.queue("hr", "delta-import").await.unwrap();
    wait_for("an email", || !smtp.mails().unwrap().is_empty()).await;
    let mail = &smtp.mails().unwrap()[0];
    assert_eq!(mail.rcpt_tos, ["ops@example.org"]);
    let data = &mail.data;
    assert!(data.contains("hr/delta-import"), "{data}");
    assert!(data.contains("stopped-server-down"), "{data}");
    svc.shutdown().await;
}
