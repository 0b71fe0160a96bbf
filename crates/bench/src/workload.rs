//! The quickstart workload: changes to the HR file (`data/hr.csv`), each
//! written the way an HR export or an editor writes it, and a tracker that
//! sees when a change shows in both targets (`data/app.db` table `users`,
//! `data/directory.jsonl`).
//!
//! Changes cycle through add (a new active person), change (a new title for
//! an active person) and terminate (status `terminated`: the accounts go).
//! A person is touched by at most one change in flight, so every change has
//! one final state to wait for.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a change is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Add,
    Change,
    Terminate,
}

impl WriteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Rename => "rename",
            WriteMode::InPlace => "in-place",
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Change => "change",
            Kind::Terminate => "terminate",
        }
    }
}

/// How a change was written to the HR file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Write a temporary file in the same folder, rename it over.
    Rename,
    /// Truncate and rewrite the file in place.
    InPlace,
}

/// The state a change must reach in both targets: the person's account with
/// this title, or (`None`) no account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub id: String,
    pub title: Option<String>,
}

/// The HR file, kept in memory and rewritten whole for each change.
pub struct HrFile {
    path: PathBuf,
    header: String,
    rows: Vec<Vec<String>>,
    /// Rotates over the rows to pick the next person to change.
    cursor: usize,
    n: usize,
}

const COL_ID: usize = 0;
const COL_TITLE: usize = 5;
const COL_STATUS: usize = 7;

impl HrFile {
    pub fn open(path: &Path) -> anyhow::Result<HrFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text.lines();
        let header = lines
            .next()
            .with_context(|| format!("{} is empty", path.display()))?
            .to_owned();
        let rows: Vec<Vec<String>> = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect();
        if let Some((i, _)) = rows.iter().enumerate().find(|(_, r)| r.len() != 8) {
            bail!(
                "{} line {}: expected 8 plain fields (no quotes)",
                path.display(),
                i + 2
            );
        }
        Ok(HrFile {
            path: path.to_path_buf(),
            header,
            rows,
            cursor: 0,
            n: 0,
        })
    }

    /// The next active person not in `busy`.
    fn pick(&mut self, busy: &[String]) -> anyhow::Result<usize> {
        for _ in 0..self.rows.len() {
            let i = self.cursor % self.rows.len();
            self.cursor = self.cursor.wrapping_add(1);
            let r = &self.rows[i];
            if r[COL_STATUS] == "active" && !busy.contains(&r[COL_ID]) {
                return Ok(i);
            }
        }
        bail!("no active person left to change in {}", self.path.display())
    }

    /// Applies the next change (`index` chooses its kind) in memory and
    /// returns what both targets must show.
    pub fn next_change(&mut self, index: usize, busy: &[String]) -> anyhow::Result<(Kind, Expect)> {
        self.n += 1;
        let n = self.n;
        let kind = match index % 3 {
            0 => Kind::Add,
            1 => Kind::Change,
            _ => Kind::Terminate,
        };
        let expect = match kind {
            Kind::Add => {
                let id = format!("B{n:06}");
                let title = format!("Bench Hire {n}");
                self.rows.push(vec![
                    id.clone(),
                    "Bench".into(),
                    format!("Person{n}"),
                    format!("bench.person{n}@example.com"),
                    "Sales".into(),
                    title.clone(),
                    String::new(),
                    "active".into(),
                ]);
                Expect {
                    id,
                    title: Some(title),
                }
            }
            Kind::Change => {
                let i = self.pick(busy)?;
                let title = format!("Bench Title {n}");
                self.rows[i][COL_TITLE] = title.clone();
                Expect {
                    id: self.rows[i][COL_ID].clone(),
                    title: Some(title),
                }
            }
            Kind::Terminate => {
                let i = self.pick(busy)?;
                self.rows[i][COL_STATUS] = "terminated".into();
                Expect {
                    id: self.rows[i][COL_ID].clone(),
                    title: None,
                }
            }
        };
        Ok((kind, expect))
    }

    fn text(&self) -> String {
        let mut s = String::with_capacity(100 * (self.rows.len() + 1));
        s.push_str(&self.header);
        s.push('\n');
        for r in &self.rows {
            s.push_str(&r.join(","));
            s.push('\n');
        }
        s
    }

    /// Writes the file; returns the instant just before the change became
    /// visible on disk (the rename, or the truncating open).
    pub fn write(&self, mode: WriteMode) -> anyhow::Result<Instant> {
        let text = self.text();
        match mode {
            WriteMode::Rename => {
                let tmp = self.path.with_file_name(".hr.csv.bench-tmp");
                std::fs::write(&tmp, text.as_bytes())
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                let at = Instant::now();
                std::fs::rename(&tmp, &self.path).with_context(|| {
                    format!("cannot rename {} to {}", tmp.display(), self.path.display())
                })?;
                Ok(at)
            }
            WriteMode::InPlace => {
                let at = Instant::now();
                let mut f = std::fs::File::create(&self.path)
                    .with_context(|| format!("cannot rewrite {}", self.path.display()))?;
                f.write_all(text.as_bytes())
                    .with_context(|| format!("cannot rewrite {}", self.path.display()))?;
                Ok(at)
            }
        }
    }
}

/// Reads both targets, read-only.
pub struct Tracker {
    jsonl: PathBuf,
    db_path: PathBuf,
    db: Option<Connection>,
}

impl Tracker {
    /// `root` is the quickstart folder.
    pub fn new(root: &Path) -> Tracker {
        Tracker {
            jsonl: root.join("data/directory.jsonl"),
            db_path: root.join("data/app.db"),
            db: None,
        }
    }

    fn db(&mut self) -> anyhow::Result<&Connection> {
        if self.db.is_none() {
            let conn = Connection::open_with_flags(
                &self.db_path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("cannot open {}", self.db_path.display()))?;
            self.db = Some(conn);
        }
        self.db
            .as_ref()
            .with_context(|| format!("{} is not open", self.db_path.display()))
    }

    /// The person's row in `users`. A busy or locked database, or one not
    /// created yet, reads as unknown ("not yet").
    fn app_state(&mut self, id: &str) -> RowState {
        let Ok(db) = self.db() else {
            return RowState::Unknown;
        };
        let Ok(mut st) = db.prepare_cached("SELECT title FROM users WHERE employee_id = ?1") else {
            return RowState::Unknown;
        };
        match st
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()
        {
            Ok(Some(title)) => RowState::Title(title),
            Ok(None) => RowState::Absent,
            Err(_) => RowState::Unknown,
        }
    }

    /// Which of `expects` both targets show now.
    pub fn check(&mut self, expects: &[&Expect]) -> Vec<bool> {
        let text = std::fs::read_to_string(&self.jsonl).unwrap_or_default();
        expects
            .iter()
            .map(|e| {
                let dir = jsonl_title(&text, &e.id);
                let dir_ok = match (&e.title, dir) {
                    (None, JsonlState::Absent) => true,
                    (Some(t), JsonlState::Title(got)) => got.as_deref() == Some(t.as_str()),
                    _ => false,
                };
                dir_ok && self.app_ok(e)
            })
            .collect()
    }

    fn app_ok(&mut self, e: &Expect) -> bool {
        match (&e.title, self.app_state(&e.id)) {
            (None, RowState::Absent) => true,
            (Some(t), RowState::Title(got)) => got.as_deref() == Some(t.as_str()),
            _ => false,
        }
    }
}

enum RowState {
    Absent,
    Title(Option<String>),
    Unknown,
}

enum JsonlState {
    Absent,
    Title(Option<String>),
    /// A line that does not parse (should not happen: the file is replaced
    /// atomically).
    Unreadable,
}

fn jsonl_title(text: &str, id: &str) -> JsonlState {
    let needle = format!("\"id\":\"{id}\"");
    let Some(line) = text.lines().find(|l| l.contains(&needle)) else {
        return JsonlState::Absent;
    };
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(v) => JsonlState::Title(v["title"].as_str().map(str::to_owned)),
        Err(_) => JsonlState::Unreadable,
    }
}

/// One measured change.
#[derive(Clone, Debug)]
pub struct Measured {
    pub kind: Kind,
    pub mode: WriteMode,
    pub latency: Duration,
}

/// Workload settings.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub changes: usize,
    pub interval: Duration,
    /// A change not visible after this fails the benchmark.
    pub timeout: Duration,
    /// Time between two looks at the targets.
    pub poll: Duration,
    /// Every other change rewrites the file in place (else all are written
    /// to a temporary file renamed over the HR file).
    pub in_place: bool,
}

/// What the workload saw.
pub struct Driven {
    pub measured: Vec<Measured>,
}

struct InFlight {
    kind: Kind,
    mode: WriteMode,
    expect: Expect,
    at: Instant,
}

/// Writes `changes` changes at a steady rate (one every `interval`, on a
/// fixed schedule) and measures, for each, the time from its write to both
/// targets showing it. Changes alternate between a rename and an in-place
/// rewrite.
pub fn drive(hr: &mut HrFile, tracker: &mut Tracker, w: Workload) -> anyhow::Result<Driven> {
    let start = Instant::now();
    let mut written = 0usize;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut measured = Vec::with_capacity(w.changes);
    while written < w.changes || !in_flight.is_empty() {
        let now = Instant::now();
        if written < w.changes && now >= start + w.interval * u32::try_from(written)? {
            let busy: Vec<String> = in_flight.iter().map(|f| f.expect.id.clone()).collect();
            let (kind, expect) = hr.next_change(written, &busy)?;
            let mode = if !w.in_place || written.is_multiple_of(2) {
                WriteMode::Rename
            } else {
                WriteMode::InPlace
            };
            let at = hr.write(mode)?;
            in_flight.push(InFlight {
                kind,
                mode,
                expect,
                at,
            });
            written += 1;
        }
        if !in_flight.is_empty() {
            let expects: Vec<&Expect> = in_flight.iter().map(|f| &f.expect).collect();
            let seen = tracker.check(&expects);
            let now = Instant::now();
            let mut keep = Vec::with_capacity(in_flight.len());
            for (i, f) in in_flight.drain(..).enumerate() {
                if seen.get(i).copied().unwrap_or(false) {
                    measured.push(Measured {
                        kind: f.kind,
                        mode: f.mode,
                        latency: now - f.at,
                    });
                } else if now - f.at > w.timeout {
                    bail!(
                        "change {} of {} ({}, {:?}) not visible in both targets after {:?}",
                        measured.len() + keep.len() + 1,
                        f.expect.id,
                        f.kind.as_str(),
                        f.expect.title,
                        w.timeout
                    );
                } else {
                    keep.push(f);
                }
            }
            in_flight = keep;
        }
        std::thread::sleep(w.poll);
    }
    Ok(Driven { measured })
}

/// Copies the quickstart's configuration, HR and groups files (not what a run
/// generated) into `to`.
pub fn copy_quickstart(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.join("data"))
        .with_context(|| format!("cannot create {}", to.display()))?;
    for f in ["autosync.toml", "data/hr.csv", "data/groups.csv"] {
        std::fs::copy(from.join(f), to.join(f)).with_context(|| {
            format!(
                "cannot copy {} to {}",
                from.join(f).display(),
                to.join(f).display()
            )
        })?;
    }
    Ok(())
}
