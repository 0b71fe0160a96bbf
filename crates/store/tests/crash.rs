//! Crash safety: a child process (this test binary, re-run on an ignored
//! test) writes batches of objects plus a watermark in one transaction each;
//! the parent SIGKILLs it at a point chosen by a seed (inside a batch, or
//! during its commit), reopens the store and checks that every committed
//! batch is complete and that no part of an uncommitted one is visible.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use autosync_model::CsObject;
use autosync_store::sqlite::SqliteStore;
use autosync_store::{CsFilter, Store};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const DB_ENV: &str = "AUTOSYNC_STORE_CRASH_DB";
const BATCH: usize = 1500;

/// The child: writes batches until killed. Ignored so that it only runs
/// when the parent asks for it.
#[test]
#[ignore = "run by killed_writers_should_leave_whole_batches_only"]
fn crash_child_writes_batches_until_killed() {
    let Ok(path) = std::env::var(DB_ENV) else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&path)).unwrap();
    let mut out = std::io::stdout().lock();
    for batch in 0..100_000u64 {
        let mut txn = store.begin().unwrap();
        for i in 0..BATCH {
            let mut o = CsObject::new("hr", &format!("b{batch}-{i}"), &format!("cn={i}"), "person");
            o.dn = format!("cn={i},ou=batch{batch},{}", "o=example".repeat(8));
            txn.cs_insert(&mut o).unwrap();
        }
        txn.set_watermark("hr", Some(&batch.to_string())).unwrap();
        txn.set_meta("last-batch", Some(&batch.to_string()))
            .unwrap();
        writeln!(out, "committing {batch}").unwrap();
        out.flush().unwrap();
        txn.commit().unwrap();
        writeln!(out, "committed {batch}").unwrap();
        out.flush().unwrap();
    }
}

/// A small reproducible generator (xorshift).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn killed_writers_should_leave_whole_batches_only() {
    let exe = std::env::current_exe().unwrap();
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let target = 2 + next(&mut rng) % 8;
        // Even seeds kill while the next batch is being written, odd seeds
        // once its commit has started.
        let stop_line = if seed % 2 == 0 {
            format!("committed {target}")
        } else {
            format!("committing {}", target + 1)
        };
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writes_batches_until_killed",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(DB_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut last_committed: Option<u64> = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                last_committed = Some(n.parse().unwrap());
            }
            if line == stop_line {
                break;
            }
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "seed {seed}: the child ended on its own");
        let last_committed =
            last_committed.unwrap_or_else(|| panic!("seed {seed}: child committed nothing"));

        let store = SqliteStore::open(&path).unwrap();
        let mut r = store.read().unwrap();
        let watermark: u64 = r.watermark("hr").unwrap().unwrap().parse().unwrap();
        assert!(
            watermark >= last_committed,
            "seed {seed}: watermark {watermark} behind the last reported commit {last_committed}"
        );
        assert_eq!(
            r.meta("last-batch").unwrap(),
            Some(watermark.to_string()),
            "seed {seed}"
        );
        let total = r.cs_counts("hr").unwrap().total;
        assert_eq!(
            total,
            (watermark + 1) * BATCH as u64,
            "seed {seed}: {total} objects for {} whole batches",
            watermark + 1
        );
        for batch in 0..=watermark {
            let anchors: Vec<String> = (0..BATCH).map(|i| format!("b{batch}-{i}")).collect();
            let refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
            assert_eq!(
                r.cs_by_anchors("hr", &refs).unwrap().len(),
                BATCH,
                "seed {seed}: batch {batch}"
            );
        }
        let next_batch = format!("b{}-0", watermark + 1);
        assert_eq!(
            r.cs_by_anchor("hr", &next_batch).unwrap(),
            None,
            "seed {seed}"
        );
        // The store still takes writes after the crash.
        drop(r);
        let mut txn = store.begin().unwrap();
        let mut o = CsObject::new("hr", "after-crash", "cn=after", "person");
        txn.cs_insert(&mut o).unwrap();
        txn.commit().unwrap();
        assert_eq!(
            store
                .read()
                .unwrap()
                .cs_page("hr", CsFilter::All, 0, usize::MAX)
                .unwrap()
                .len() as u64,
            total + 1
        );
    }
}
