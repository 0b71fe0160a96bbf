//! Benchmark of the SQLite store's operations: times each operation over N
//! rows (default 200,000) in 5,000-row transactions and prints ops/s, plus a
//! mix that does what a sync does per object. Run with
//! `cargo run --release -p autosync-store --example store_ops -- 200000`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use autosync_model::{
    Attributes, Connection, CsObject, ExportKind, ImportKind, MvObject, MvValue, PendingExport,
    PendingImport, Value,
};
use autosync_store::sqlite::{SqliteOptions, SqliteStore};
use autosync_store::{CsFilter, Store};
use std::time::Instant;

const BATCH: usize = 5_000;

fn person(i: usize) -> Attributes {
    let mut a = Attributes::new();
    a.insert("employeeId".into(), Value::from(format!("E{i:07}")));
    a.insert("givenName".into(), Value::from(format!("Given{i}")));
    a.insert("sn".into(), Value::from(format!("Surname{}", i % 5000)));
    a.insert(
        "displayName".into(),
        Value::from(format!("Given{i} Surname{}", i % 5000)),
    );
    a.insert(
        "mail".into(),
        Value::from(format!("given{i}.surname@example.com")),
    );
    a.insert("department".into(), Value::from(format!("Dept {}", i % 40)));
    a.insert("title".into(), Value::from("Engineer"));
    a.insert("manager".into(), Value::from(format!("E{:07}", i / 10)));
    a.insert(
        "telephoneNumber".into(),
        Value::from(format!(
            "+33 1 23 {:02} {:02} {:02}",
            i % 97,
            i % 89,
            i % 83
        )),
    );
    a.insert("location".into(), Value::from("Paris"));
    a
}

/// CPU time of this thread in seconds (the machine is shared: ops per CPU
/// second is the figure that does not depend on other processes' load).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |ns| ns / 1e9)
}

struct Timer {
    wall: Instant,
    cpu: f64,
}

fn timer() -> Timer {
    Timer {
        wall: Instant::now(),
        cpu: cpu_secs(),
    }
}

fn report(name: &str, n: usize, t: Timer) {
    let secs = t.wall.elapsed().as_secs_f64();
    let cpu = cpu_secs() - t.cpu;
    println!(
        "{name:<44} {n:>8} ops {secs:>7.3} s {:>9.0} ops/s wall {:>9.0} ops/s cpu",
        n as f64 / secs,
        n as f64 / cpu
    );
}

fn rss_peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    // Tuning can be tried without rebuilding: STORE_MMAP (bytes),
    // STORE_CACHE_KIB, STORE_PAGE_SIZE.
    let mut options = SqliteOptions::default();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(v) = env("STORE_MMAP") {
        options.mmap_bytes = v;
    }
    if let Some(v) = env("STORE_CACHE_KIB") {
        options.cache_kib = v;
        options.reader_cache_kib = v;
    }
    if let Some(v) = env("STORE_PAGE_SIZE") {
        options.page_size = v as u32;
    }
    let store = SqliteStore::open_with(&path, options.clone()).unwrap();
    println!("{options:?}");
    store
        .set_mv_index(&[
            autosync_store::MvIndexDef::attribute("person", "employeeId"),
            autosync_store::MvIndexDef::attribute("person", "mail"),
        ])
        .unwrap();
    println!("store_ops: N = {n}, batches of {BATCH}, {}", path.display());

    // Calibration: what the JSON body alone costs, and a bare SQLite lookup.
    let mut sample = CsObject::new("hr", "E0000001", "cn=1", "person");
    sample.pending_import = Some(PendingImport {
        values: Default::default(),
        kind: ImportKind::Add,
        attributes: person(1),
        dn: None,
        object_type: None,
    });
    let json = serde_json::to_vec(&sample).unwrap();
    println!("one object is {} bytes of JSON", json.len());
    let start = timer();
    let mut buf = Vec::new();
    for _ in 0..n {
        buf.clear();
        serde_json::to_writer(&mut buf, &sample).unwrap();
    }
    report("json encode only", n, start);
    let start = timer();
    for _ in 0..n {
        let o: CsObject = serde_json::from_slice(&json).unwrap();
        std::hint::black_box(o);
    }
    report("json decode only", n, start);
    {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x');",
        )
        .unwrap();
        let start = timer();
        for _ in 0..n {
            let mut st = conn
                .prepare_cached("SELECT v FROM t WHERE id = ?1")
                .unwrap();
            let v: String = st.query_row([1], |r| r.get(0)).unwrap();
            std::hint::black_box(v);
        }
        report("bare sqlite point query (in memory)", n, start);
    }

    // Import: insert N objects with a pending add.
    let anchors: Vec<String> = (0..n).map(|i| format!("E{i:07}")).collect();
    let start = timer();
    for chunk in (0..n).collect::<Vec<_>>().chunks(BATCH) {
        let mut txn = store.begin().unwrap();
        for &i in chunk {
            let mut o = CsObject::new("hr", &anchors[i], &format!("cn={i}"), "person");
            o.present = true;
            o.pending_import = Some(PendingImport {
                values: Default::default(),
                kind: ImportKind::Add,
                attributes: person(i),
                dn: None,
                object_type: None,
            });
            txn.cs_insert(&mut o).unwrap();
        }
        txn.commit().unwrap();
    }
    report("cs_insert", n, start);

    // Import of a second pass: batch lookup by anchor.
    let start = timer();
    let mut found = 0;
    let mut all: Vec<CsObject> = Vec::with_capacity(n);
    for chunk in anchors.chunks(BATCH) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let got = store.read().unwrap().cs_by_anchors("hr", &refs).unwrap();
        found += got.len();
        all.extend(got);
    }
    assert_eq!(found, n);
    report("cs_by_anchors (5k per call)", n, start);

    // Update each (flags unchanged: data only).
    let start = timer();
    for chunk in all.chunks_mut(BATCH) {
        let mut txn = store.begin().unwrap();
        for o in chunk.iter_mut() {
            if let Some(p) = o.pending_import.as_mut() {
                p.attributes
                    .insert("title".into(), Value::from("Senior Engineer"));
            }
            txn.cs_update(o).unwrap();
        }
        txn.commit().unwrap();
    }
    report("cs_update (same flags)", n, start);

    // Point lookups by id and by anchor, in a pseudo-random order.
    let mut x: u64 = 88172645463325252;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ids: Vec<i64> = all.iter().map(|o| o.id).collect();
    let start = timer();
    {
        let mut r = store.read().unwrap();
        for _ in 0..n {
            let id = ids[(rnd() % n as u64) as usize];
            r.cs_get(id).unwrap().unwrap();
        }
    }
    report("cs_get (random id)", n, start);
    let start = timer();
    {
        let mut r = store.read().unwrap();
        for _ in 0..n {
            let a = &anchors[(rnd() % n as u64) as usize];
            r.cs_by_anchor("hr", a).unwrap().unwrap();
        }
    }
    report("cs_by_anchor (random)", n, start);
    let start = timer();
    {
        // Inside a write transaction (as a sync step reads): no per-call
        // read-lock round trip.
        let mut txn = store.begin().unwrap();
        for _ in 0..n {
            let id = ids[(rnd() % n as u64) as usize];
            txn.cs_get(id).unwrap().unwrap();
        }
    }
    report("cs_get (random id, inside a transaction)", n, start);

    // Scan with a filter.
    let start = timer();
    let mut after = 0;
    let mut scanned = 0;
    let mut r = store.read().unwrap();
    loop {
        let page = r
            .cs_page("hr", CsFilter::PendingImport, after, 1000)
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        scanned += page.len();
    }
    drop(r);
    assert_eq!(scanned, n);
    report("cs_page (pending import, 1k pages)", n, start);

    // Sync mix: per object, read (page), mv_find, mv_insert (projection),
    // cs_update (connector, pending import cleared), cs_by_mv, cs_insert
    // (provisioned target object with a pending export).
    let start = timer();
    let mut after = 0;
    let mut synced = 0;
    loop {
        let mut txn = store.begin().unwrap();
        let page = txn
            .cs_page("hr", CsFilter::PendingImport, after, BATCH)
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        for mut o in page {
            let p = o.pending_import.take().unwrap();
            let emp = p.attributes.get("employeeId").cloned().unwrap();
            let found = txn.mv_find("person", "employeeId", &emp).unwrap();
            assert!(found.is_empty());
            let mut mv = MvObject::new("person");
            for (k, v) in &p.attributes {
                mv.attributes.insert(
                    k.clone(),
                    MvValue {
                        value: v.clone(),
                        contributor: "hr".into(),
                    },
                );
            }
            txn.mv_insert(&mut mv).unwrap();
            o.hologram = p.attributes;
            o.connection = Connection::Connector { mv_id: mv.id };
            txn.cs_update(&o).unwrap();
            let connectors = txn.cs_by_mv(mv.id).unwrap();
            assert_eq!(connectors.len(), 1);
            let mut t = CsObject::new(
                "ad",
                &o.anchor,
                &format!("CN={},OU=People", o.anchor),
                "user",
            );
            t.connection = Connection::Connector { mv_id: mv.id };
            t.pending_export = Some(PendingExport {
                values: Default::default(),
                kind: ExportKind::Add,
                changes: o
                    .hologram
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
                new_dn: None,
            });
            txn.cs_insert(&mut t).unwrap();
            synced += 1;
        }
        txn.commit().unwrap();
    }
    assert_eq!(synced, n);
    report("sync mix (6 store ops per object)", n, start);

    // Metaverse point operations.
    let start = timer();
    {
        let mut r = store.read().unwrap();
        for _ in 0..n {
            let i = (rnd() % n as u64) as usize;
            let got = r
                .mv_find("person", "employeeId", &Value::from(format!("E{i:07}")))
                .unwrap();
            assert_eq!(got.len(), 1);
        }
    }
    report("mv_find (random, indexed)", n, start);
    let mv_ids: Vec<i64> = {
        let mut r = store.read().unwrap();
        let mut ids = Vec::with_capacity(n);
        let mut after = 0;
        loop {
            let page = r
                .mv_page(&autosync_store::MvQuery::default(), after, 10_000)
                .unwrap();
            let Some(last) = page.last() else { break };
            after = last.id;
            ids.extend(page.iter().map(|m| m.id));
        }
        ids
    };
    let start = timer();
    for chunk in mv_ids.chunks(BATCH) {
        let mut txn = store.begin().unwrap();
        let objs = txn.mv_get_many(chunk).unwrap();
        for mut m in objs {
            m.attributes.insert(
                "title".into(),
                MvValue {
                    value: Value::from("Staff Engineer"),
                    contributor: "hr".into(),
                },
            );
            txn.mv_update(&m).unwrap();
        }
        txn.commit().unwrap();
    }
    report("mv_get_many + mv_update (index same)", n, start);
    let start = timer();
    {
        let mut r = store.read().unwrap();
        for _ in 0..n {
            let id = mv_ids[(rnd() % n as u64) as usize];
            r.cs_by_mv(id).unwrap();
        }
    }
    report("cs_by_mv (random, 2 connectors)", n, start);

    // Export: scan pending exports, move them to unconfirmed.
    let start = timer();
    let mut after = 0;
    let mut exported = 0;
    loop {
        let page = store
            .read()
            .unwrap()
            .cs_page("ad", CsFilter::PendingExport, after, BATCH)
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut txn = store.begin().unwrap();
        for mut o in page {
            o.unconfirmed_export = o.pending_export.take();
            o.present = true;
            txn.cs_update(&o).unwrap();
            exported += 1;
        }
        txn.commit().unwrap();
    }
    assert_eq!(exported, n);
    report("export mix (page + cs_update, flags change)", n, start);

    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "store file {} MiB, peak RSS {} MiB",
        size / (1 << 20),
        rss_peak_mib()
    );
}
