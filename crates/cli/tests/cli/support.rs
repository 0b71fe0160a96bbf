//! Helpers: a private copy of a configuration folder and a way to run the
//! binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_autosync");

/// The repository's quickstart folder.
pub fn quickstart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart")
}

/// A temp folder holding a copy of a configuration folder.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    /// Copy the quickstart (config and data, not its state) into a temp
    /// dir, without its groups ([`crate::people::without_groups`]).
    pub fn quickstart() -> Workdir {
        let w = Self::quickstart_with_groups();
        let _ = std::fs::remove_file(w.path().join("data/groups.csv"));
        w.edit("autosync.toml", |text| crate::people::without_groups(&text));
        w
    }

    /// Copy the whole quickstart (config and data, not its state).
    pub fn quickstart_with_groups() -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&quickstart_dir(), dir.path());
        let _ = std::fs::remove_dir_all(dir.path().join("state"));
        let _ = std::fs::remove_file(dir.path().join("data/app.db"));
        let _ = std::fs::remove_file(dir.path().join("data/directory.jsonl"));
        Workdir { dir }
    }

    /// A folder with just this configuration text.
    pub fn with_config(text: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("autosync.toml"), text).unwrap();
        Workdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("autosync.toml")
    }

    /// Run `autosync -c <config> args...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("-c").arg(self.config()).args(args);
        cmd.env_remove("AUTOSYNC_CONFIG").env_remove("AUTOSYNC_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Run and expect exit code `code`; return stdout.
    pub fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "autosync {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Replace the text of a data file.
    pub fn edit(&self, rel: &str, f: impl FnOnce(String) -> String) {
        let p = self.dir.path().join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(text)).unwrap();
    }

    /// Run the quickstart cycle: import, sync, export both targets, confirm.
    pub fn cycle(&self) {
        for (ma, profile) in CYCLE {
            let out = self.run(&["run-profile", ma, profile, "--no-progress"]);
            assert!(
                matches!(out.status.code(), Some(0)),
                "{ma} {profile} failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The quickstart's full cycle, in order.
pub const CYCLE: [(&str, &str); 8] = [
    ("hr", "full-import"),
    ("hr", "full-sync"),
    ("app", "export"),
    ("directory", "export"),
    ("app", "full-import"),
    ("directory", "full-import"),
    ("app", "delta-sync"),
    ("directory", "delta-sync"),
];

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Rows of the quickstart's application table: (employee_id, username, title).
pub fn app_users(dir: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(dir.join("data/app.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT employee_id, username, title FROM users ORDER BY employee_id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The directory file's accounts, by line.
pub fn directory(dir: &Path) -> Vec<serde_json::Value> {
    directory_of_kind(dir, "account")
}

/// The directory file's groups, by line.
pub fn directory_groups(dir: &Path) -> Vec<serde_json::Value> {
    directory_of_kind(dir, "group")
}

fn directory_of_kind(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("data/directory.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|o| o["kind"] == kind)
        .collect()
}

/// People in the HR file with the given status: employee ids.
pub fn hr_with_status(dir: &Path, status: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(dir.join("data/hr.csv")).unwrap();
    let mut ids: Vec<String> = r
        .records()
        .map(Result::unwrap)
        .filter(|rec| rec.get(7).unwrap().trim().eq_ignore_ascii_case(status))
        .map(|rec| rec.get(0).unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}
