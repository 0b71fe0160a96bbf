//! What value rows cost against the same values in the body: a group of
//! 500,000 members written, read, changed by one member. A measurement,
//! not a test of speed (no timing is asserted); ignored by default:
//! `cargo nextest run -p autosync-store --run-ignored only -E 'binary(rows_cost)' --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // test code (a measurement prints)

mod common;

use autosync_model::{CsObject, MvObject, MvValue, Value, ValueDelta};
use autosync_store::{CsFilter, Store, ValueRows};
use std::time::Instant;

const N: i64 = 500_000;

fn members(from: i64) -> Value {
    Value::Multi((from..from + N).map(Value::Reference).collect())
}

fn time<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!(
        "{what:<58} {:>9.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    out
}

fn run(store: &dyn Store, ma: &str, label: &str) {
    let mut o = CsObject::new(ma, "g", "cn=g", "group");
    o.hologram.insert("members".into(), members(0));
    let mut m = MvObject::new(if label == "rows" { "group" } else { "team" });
    m.attributes.insert(
        "members".into(),
        MvValue {
            value: members(0),
            contributor: ma.into(),
        },
    );
    time(&format!("[{label}] cs insert"), || {
        let mut t = store.begin().unwrap();
        t.cs_insert(&mut o).unwrap();
        t.commit().unwrap();
    });
    time(&format!("[{label}] mv insert"), || {
        let mut t = store.begin().unwrap();
        t.mv_insert(&mut m).unwrap();
        t.commit().unwrap();
    });
    let whole = time(&format!("[{label}] cs_get (whole)"), || {
        store.read().unwrap().cs_get(o.id).unwrap().unwrap()
    });
    assert_eq!(
        whole.hologram.get("members").map(|v| match v {
            Value::Multi(vs) => vs.len(),
            _ => 0,
        }),
        Some(N as usize)
    );
    time(&format!("[{label}] cs_get_light"), || {
        store.read().unwrap().cs_get_light(o.id).unwrap().unwrap()
    });
    time(
        &format!("[{label}] cs_page of 1,000 other objects and the group"),
        || {
            store
                .read()
                .unwrap()
                .cs_page(ma, CsFilter::All, 0, 1001)
                .unwrap()
        },
    );
    time(&format!("[{label}] mv_get (whole)"), || {
        store.read().unwrap().mv_get(m.id).unwrap().unwrap()
    });
    // One member changed, the whole value written.
    let mut changed = whole.clone();
    if let Some(Value::Multi(vs)) = changed.hologram.get_mut("members") {
        vs[0] = Value::Reference(-1);
    }
    time(
        &format!("[{label}] cs_update whole, one member changed"),
        || {
            let mut t = store.begin().unwrap();
            t.cs_update(&changed).unwrap();
            t.commit().unwrap();
        },
    );
    time(
        &format!("[{label}] cs_update whole, same members (a replay)"),
        || {
            let mut t = store.begin().unwrap();
            t.cs_update(&changed).unwrap();
            t.commit().unwrap();
        },
    );
    let mut replaced = changed.clone();
    replaced.hologram.insert("members".into(), members(N));
    time(
        &format!("[{label}] cs_update whole, every member replaced"),
        || {
            let mut t = store.begin().unwrap();
            t.cs_update(&replaced).unwrap();
            t.commit().unwrap();
        },
    );
    if label != "rows" {
        return;
    }
    let delta = ValueDelta {
        add: vec![Value::Reference(-2)],
        remove: vec![Value::Reference(N + 5)],
    };
    let mut light = store.read().unwrap().cs_get_light(o.id).unwrap().unwrap();
    light.hologram.insert("name".into(), Value::from("x"));
    time(
        &format!("[{label}] cs_values_change of one member + light write-back"),
        || {
            let mut t = store.begin().unwrap();
            t.cs_values_change(o.id, "members", &delta).unwrap();
            t.cs_update(&light).unwrap();
            t.commit().unwrap();
        },
    );
    time(&format!("[{label}] mv_values_change of one member"), || {
        let mut t = store.begin().unwrap();
        t.mv_values_change(m.id, "members", &delta).unwrap();
        t.commit().unwrap();
    });
    time(
        &format!("[{label}] cs_values_present of one member, count"),
        || {
            let mut r = store.read().unwrap();
            let p = r
                .cs_values_present(o.id, "members", &[Value::Reference(-2)])
                .unwrap();
            assert_eq!(p, [true]);
            assert_eq!(r.cs_values_count(o.id, "members").unwrap(), N as u64);
        },
    );
    time(&format!("[{label}] mv_find by one member"), || {
        let found = store
            .read()
            .unwrap()
            .mv_find("group", "members", &Value::Reference(7))
            .unwrap();
        assert_eq!(found, [m.id]);
    });
}

#[test]
#[ignore = "a measurement: run it on its own with --nocapture"]
fn value_rows_cost_against_values_in_the_body() {
    let t = common::store();
    let mut rows = ValueRows::default();
    rows.cs
        .entry("ad".into())
        .or_default()
        .insert("members".into());
    rows.mv
        .entry("group".into())
        .or_default()
        .insert("members".into());
    t.store.set_value_rows(&rows).unwrap();
    // 1,000 small objects beside the group in each MA.
    let mut txn = t.store.begin().unwrap();
    for ma in ["ad", "app"] {
        for i in 0..1000 {
            let mut o = common::cs(ma, &format!("u{i}"));
            txn.cs_insert(&mut o).unwrap();
        }
    }
    txn.commit().unwrap();
    println!("{N} members, one group object:");
    run(&t.store, "app", "body");
    run(&t.store, "ad", "rows");
}
