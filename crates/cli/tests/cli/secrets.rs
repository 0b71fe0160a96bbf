//! Secrets never printed, and files that may hold secrets or identities
//! readable by their owner only: `autosync discover` (TOML, `--json`,
//! `--write`) shows secret-bearing settings as the configuration writes
//! them (`${ENV}`, `X_file`), never their values; the `--write` file, the
//! store (with its `-wal` and `-shm`), the service lock and the API file
//! are created 0600, even under a umask of 000.

use super::support::*;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A secret read from a file (`password_file`).
const FILE_SECRET: &str = "file-secret-7f3a";
/// Secrets from the environment (`${HOOK_TOKEN}`, `${HOOK_PATH}`).
const ENV_SECRET: &str = "env-secret-91c2";
const ENV_SECRET_PATH: &str = "env-secret-path-55d1";

/// The environment of every command.
const ENV: [(&str, &str); 3] = [
    ("HOOK_TOKEN", ENV_SECRET),
    ("HOOK_PATH", ENV_SECRET_PATH),
    ("HR_DIR", "data"),
];

/// The quickstart with notifications holding secrets (an SMTP password from
/// a file, a webhook's header and URL from the environment) and the HR
/// file's folder from the environment.
fn quickstart_with_secrets() -> Workdir {
    let w = Workdir::quickstart();
    std::fs::write(w.path().join("smtp.secret"), format!("{FILE_SECRET}\n")).unwrap();
    w.edit("autosync.toml", |text| {
        let text = text.replace(
            r#"connector = { type = "csv", path = "data/hr.csv" }"#,
            r#"connector = { type = "csv", path = "${HR_DIR}/hr.csv" }"#,
        );
        assert!(text.contains("${HR_DIR}"));
        // The quickstart ends with its [controller] table.
        text + r#"
[controller.notifications]
reminder_after = "4h"

[controller.notifications.smtp]
host = "smtp.example.org"
username = "autosync"
password_file = "smtp.secret"
from = "Autosync <autosync@example.org>"
to = ["ops@example.org"]

[[controller.notifications.webhooks]]
url = "https://hooks.example.org/services/${HOOK_PATH}"
headers = { Authorization = "Bearer ${HOOK_TOKEN}" }
"#
    });
    w
}

/// Runs `autosync ARGS` with [`ENV`] under a umask of 000 (every file that
/// is not created with a mode of its own is then world-writable).
fn run_permissive(w: &Workdir, args: &[&str]) -> Output {
    permissive_command(w, args).output().unwrap()
}

fn permissive_command(w: &Workdir, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .arg("-c")
        .arg(w.config())
        .args(args)
        .env_remove("AUTOSYNC_CONFIG")
        .env_remove("AUTOSYNC_LOG");
    for (k, v) in ENV {
        cmd.env(k, v);
    }
    cmd
}

/// Asserts that no secret's value is in `text` (`what` names it).
fn assert_no_secret(what: &str, text: &str) {
    for secret in [FILE_SECRET, ENV_SECRET, ENV_SECRET_PATH] {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

/// stdout after asserting exit code 0 and that neither stream shows a
/// secret.
fn secret_free(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_no_secret(&format!("{what} (stdout)"), &stdout);
    assert_no_secret(&format!("{what} (stderr)"), &stderr);
    stdout
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn discover_should_print_secret_bearing_settings_as_written_never_their_values() {
    let w = quickstart_with_secrets();
    let toml = secret_free("discover", &w.run_env(&["discover"], &ENV));
    assert!(
        toml.contains(r#"password_file = "smtp.secret""#),
        "the file key, as written:\n{toml}"
    );
    assert!(
        toml.contains(r#"Authorization = "Bearer ${HOOK_TOKEN}""#),
        "{toml}"
    );
    assert!(
        toml.contains(r#"url = "https://hooks.example.org/services/${HOOK_PATH}""#),
        "{toml}"
    );
    assert!(
        toml.contains(r#"path = "${HR_DIR}/hr.csv""#),
        "the proposed file watch names the connector's path as written:\n{toml}"
    );
}

#[test]
fn discover_json_should_give_secret_bearing_settings_as_written_never_their_values() {
    let w = quickstart_with_secrets();
    let json = secret_free("discover --json", &w.run_env(&["discover", "--json"], &ENV));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let kept = v["controller"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "notifications")
        .unwrap_or_else(|| panic!("no kept `notifications`: {json}"));
    let smtp = &kept["value"]["smtp"];
    assert_eq!(smtp["password_file"], "smtp.secret", "{json}");
    assert!(smtp.get("password").is_none(), "{json}");
    assert_eq!(
        kept["value"]["webhooks"][0]["headers"]["Authorization"],
        "Bearer ${HOOK_TOKEN}"
    );
    assert_eq!(
        v["mas"][0]["triggers"][0]["path"], "${HR_DIR}/hr.csv",
        "{json}"
    );
}

#[test]
fn discover_write_should_write_settings_as_written_to_a_file_only_its_owner_reads() {
    let w = quickstart_with_secrets();
    let target = w.path().join("proposal.toml");
    let target_arg = target.to_str().unwrap();
    secret_free(
        "discover --write",
        &run_permissive(&w, &["discover", "--write", target_arg]),
    );
    let written = std::fs::read_to_string(&target).unwrap();
    assert_no_secret("the --write file", &written);
    assert!(
        written.contains(r#"password_file = "smtp.secret""#),
        "{written}"
    );
    assert_eq!(mode(&target), 0o600, "under umask 000");

    // Overwriting a wider file gives a new file, 0600 too.
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    secret_free(
        "discover --write --force",
        &run_permissive(&w, &["discover", "--write", target_arg, "--force"]),
    );
    assert_no_secret(
        "the --write file",
        &std::fs::read_to_string(&target).unwrap(),
    );
    assert_eq!(mode(&target), 0o600);
}

#[test]
fn check_status_and_the_service_log_should_not_show_secrets() {
    let w = quickstart_with_secrets();
    secret_free("check", &w.run_env(&["check"], &ENV));
    secret_free("check --json", &w.run_env(&["check", "--json"], &ENV));
    secret_free(
        "run --once -vv",
        &w.run_env(&["run", "--once", "-vv"], &ENV),
    );
    secret_free("status --json", &w.run_env(&["status", "--json"], &ENV));
    secret_free("history --json", &w.run_env(&["history", "--json"], &ENV));
}

/// A secret of the wrong type (a password written as a number), or a
/// setting from the environment that does not decode (a timeout that is a
/// token): `check`'s error names the key, never the value, which the
/// parser's own message quoted (a black-box review: in `check`, the log,
/// the reload refusal, mail and webhooks).
#[test]
fn a_secret_that_does_not_decode_should_not_be_shown_in_the_error() {
    let w = quickstart_with_secrets();
    w.edit("autosync.toml", |text| {
        text.replace(
            r#"password_file = "smtp.secret""#,
            r#"password = 987654321"#,
        )
        .replace(
            r#"headers = { Authorization = "Bearer ${HOOK_TOKEN}" }"#,
            r#"headers = { Authorization = "Bearer ${HOOK_TOKEN}" }
timeout = "${HOOK_TOKEN}""#,
        )
    });
    let out = w.run_env(&["check"], &ENV);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains("987654321"), "{text}");
        assert_no_secret("check", text);
    }
    assert!(stderr.contains("(hidden)"), "{stdout}{stderr}");
}

/// `autosync run` under umask 000; SIGTERMed and waited for when dropped.
struct PermissiveService(Child);

impl Drop for PermissiveService {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn the_store_its_wal_and_shm_and_the_api_file_should_be_readable_by_their_owner_only() {
    let w = quickstart_with_secrets();
    let service = PermissiveService(
        permissive_command(&w, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let state = w.path().join("state");
    let api_file = state.join("api.json");
    // The API file is written once the store is open and the API listens.
    let start = Instant::now();
    while !api_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the service never wrote {}",
            api_file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for name in [
        "autosync.db",
        "autosync.db-wal",
        "autosync.db-shm",
        "api.json",
    ] {
        assert_eq!(mode(&state.join(name)), 0o600, "{name}, under umask 000");
    }
    drop(service);
}
