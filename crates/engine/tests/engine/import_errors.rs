//! Every row is imported or counted as an error: an unclosed quote costs
//! one error, a value over `max_value_size` is an error for every
//! connector, the errors of rows that never became connector-space objects
//! stay listed, and a full import reads an unchanged source again.

use crate::fixture::*;
use autosync_engine::{RecordError, record_errors};
use autosync_model::{ImportKind, RunStatus};
use autosync_store::Store as _;

fn listed(w: &World) -> Vec<RecordError> {
    record_errors(w.store.read().unwrap().as_mut(), "hr").unwrap()
}

/// (location, error type, anchor) of each listed record error.
fn listed_briefly(w: &World) -> Vec<(String, String, Option<String>)> {
    listed(w)
        .into_iter()
        .map(|e| (e.location, e.error.error_type, e.anchor))
        .collect()
}

/// HR imported and synchronised: every object has a hologram.
fn synced_hr() -> World {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    w
}

#[test]
fn an_unclosed_quote_on_a_known_row_should_keep_its_object_and_import_every_row_after_it() {
    let w = synced_hr();
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,R&D\n2,\"Alan,Turing,R&D\n3,Grace,Hopper,Navy\n\
         4,Linus,Torvalds,Kernel\n",
    );
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!(
        (
            c.stage_failure,
            c.stage_delete,
            c.stage_add,
            c.stage_no_change
        ),
        (1, 0, 1, 2),
        "{r:#?}"
    );
    let alan = w.cs("hr", "2").unwrap();
    assert!(alan.pending_import.is_none(), "{alan:#?}");
    let error = alan.error.unwrap();
    assert_eq!(error.error_type, "malformed-record");
    assert!(error.detail.starts_with("hr.csv line 3: "), "{error:?}");
    assert!(w.cs("hr", "4").is_some());
}

/// HR with `first` a value over 2 MB for a known person (2) and a new one
/// (4), through `config` (HR in a CSV file, a JSON-lines file or a SQLite
/// table, written by `write`).
fn oversized_values_through(config: &str, write: impl Fn(&World, &[(&str, String)])) {
    let w = World::new(config, &[]);
    write(
        &w,
        &[
            ("1", "Ada".into()),
            ("2", "Alan".into()),
            ("3", "Grace".into()),
        ],
    );
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let huge = "x".repeat(2_000_000);
    write(
        &w,
        &[
            ("1", "Ada".into()),
            ("2", huge.clone()),
            ("3", "Grace".into()),
            ("4", huge),
        ],
    );
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!(
        (
            c.stage_failure,
            c.stage_delete,
            c.stage_add,
            c.stage_no_change
        ),
        (2, 0, 0, 2),
        "{config}: {r:#?}"
    );
    // The known person keeps their object, with the error.
    let alan = w.cs("hr", "2").unwrap();
    assert!(alan.pending_import.is_none(), "{alan:#?}");
    let error = alan.error.unwrap();
    assert_eq!(error.error_type, "value-too-large");
    assert!(
        error
            .detail
            .contains("attribute `first` holds a value of 2000000 bytes, more than the MA's max_value_size of 1048576 bytes"),
        "{error:?}"
    );
    // The new one is listed.
    let new = listed(&w);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].anchor.as_deref(), Some("4"));
    assert_eq!(new[0].error.error_type, "value-too-large");
    assert!(w.cs("hr", "4").is_none());
}

#[test]
fn a_value_over_max_value_size_should_be_an_error_naming_the_attribute_and_its_size_in_a_csv_file()
{
    oversized_values_through(HR_DIR, |w, people| {
        let mut text = String::from("id,first,last,dept\n");
        for (id, first) in people {
            text.push_str(&format!("{id},{first},Last,Dept\n"));
        }
        w.write("hr.csv", &text);
    });
}

#[test]
fn a_value_over_max_value_size_should_be_an_error_naming_the_attribute_and_its_size_in_json_lines()
{
    let config = HR_DIR.replace(
        r#"connector = { type = "csv", path = "hr.csv" }"#,
        r#"connector = { type = "jsonl", path = "hr.jsonl" }"#,
    );
    oversized_values_through(&config, |w, people| {
        let mut text = String::new();
        for (id, first) in people {
            text.push_str(
                &serde_json::json!({"id": id, "first": first, "last": "L", "dept": "D"})
                    .to_string(),
            );
            text.push('\n');
        }
        w.write("hr.jsonl", &text);
    });
}

#[test]
fn a_value_over_max_value_size_should_be_an_error_naming_the_attribute_and_its_size_in_sqlite() {
    let config = HR_DIR.replace(
        r#"connector = { type = "csv", path = "hr.csv" }"#,
        r#"connector = { type = "sqlite", path = "hr.db", table = "people" }"#,
    );
    oversized_values_through(&config, |w, people| {
        let db = rusqlite::Connection::open(w.path("hr.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS people (id TEXT PRIMARY KEY, first TEXT, last TEXT, dept TEXT);
             DELETE FROM people;",
        )
        .unwrap();
        for (id, first) in people {
            db.execute(
                "INSERT INTO people VALUES (?1, ?2, 'Last', 'Dept')",
                [*id, first.as_str()],
            )
            .unwrap();
        }
    });
}

#[test]
fn max_value_size_should_be_the_largest_value_accepted() {
    let config = HR_DIR.replace(
        "projection = [{ mv_type = \"person\" }]",
        "projection = [{ mv_type = \"person\" }]\nmax_value_size = 8",
    );
    let w = World::new(
        &config,
        &[(
            "hr.csv",
            "id,first,last,dept\n1,Ada,Lovelace,R&D\n2,Alan,Turing!!!,R&D\n",
        )],
    );
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    assert_eq!(import_counters(&r).stage_add, 1);
    assert_eq!(
        listed_briefly(&w),
        [(
            "hr object \"2\"".to_owned(),
            "value-too-large".to_owned(),
            Some("2".to_owned())
        )]
    );
    let detail = &listed(&w)[0].error.detail;
    assert_eq!(
        detail,
        "attribute `last` holds a value of 9 bytes, more than the MA's max_value_size of 8 bytes"
    );
}

const BAD_NEW_ROWS: &[u8] =
    b"id,first,last,dept\n1,Ada,Lovelace,R&D\n,No,Anchor,Ops\n5,Gr\xffce,Hopper,Navy\n";

#[test]
fn errors_of_rows_that_never_became_objects_should_stay_listed_until_the_rows_are_read() {
    let w = World::new(HR_DIR, &[]);
    std::fs::write(w.path("hr.csv"), BAD_NEW_ROWS).unwrap();
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let expected = vec![
        (
            "hr.csv line 3".to_owned(),
            "missing-anchor".to_owned(),
            None,
        ),
        (
            "hr.csv line 4".to_owned(),
            "invalid-utf8".to_owned(),
            Some("5".to_owned()),
        ),
    ];
    assert_eq!(listed_briefly(&w), expected);
    let first = &listed(&w)[0];
    assert_eq!(first.error.run_id, Some(r.id));
    assert_eq!(first.error.detail, "no anchor: column `id` is empty");
    // A delta import reads it again (its records failed, so the watermark
    // stayed): the same errors, listed once.
    w.run_ok("hr", "delta-import", RunStatus::CompletedImportErrors);
    assert_eq!(listed_briefly(&w), expected);
    // A full import reads it again: the same errors, listed once.
    w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    assert_eq!(listed_briefly(&w), expected);
    // Row 5 fixed, the row without anchor gone: nothing is listed.
    w.write(
        "hr.csv",
        "id,first,last,dept\n1,Ada,Lovelace,R&D\n5,Grace,Hopper,Navy\n",
    );
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    assert_eq!(import_counters(&r).stage_add, 1);
    assert_eq!(listed_briefly(&w), []);
}

/// HR in a SQLite table with a changelog filled by triggers: Ada imported.
fn sqlite_changelog() -> (World, rusqlite::Connection) {
    let config = HR_DIR.replace(
        r#"connector = { type = "csv", path = "hr.csv" }"#,
        r#"connector = { type = "sqlite", path = "hr.db", table = "people", delta = { kind = "changelog", table = "people_changelog", sequence_column = "seq", anchor_column = "id", operation_column = "op" } }"#,
    );
    let w = World::new(&config, &[]);
    let db = rusqlite::Connection::open(w.path("hr.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE people (id TEXT PRIMARY KEY, first TEXT, last TEXT, dept TEXT);
         CREATE TABLE people_changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, op TEXT NOT NULL);
         CREATE TRIGGER people_ai AFTER INSERT ON people BEGIN INSERT INTO people_changelog(id, op) VALUES (NEW.id, 'I'); END;
         CREATE TRIGGER people_au AFTER UPDATE ON people BEGIN INSERT INTO people_changelog(id, op) VALUES (NEW.id, 'U'); END;
         INSERT INTO people VALUES ('1', 'Ada', 'Lovelace', 'R&D');",
    )
    .unwrap();
    w.run_ok("hr", "full-import", RunStatus::Success);
    (w, db)
}

/// A delta import adds its record errors to the list and drops those of
/// the rows it reads; a full import replaces the list.
#[test]
fn a_delta_import_should_keep_earlier_record_errors_until_their_rows_are_read() {
    let (w, db) = sqlite_changelog();
    db.execute_batch(
        "INSERT INTO people VALUES ('2', CAST(X'41FF' AS TEXT), 'Turing', 'R&D');
         INSERT INTO people VALUES ('3', CAST(X'47FF' AS TEXT), 'Hopper', 'Navy');",
    )
    .unwrap();
    w.run_ok("hr", "delta-import", RunStatus::CompletedImportErrors);
    let anchors =
        |w: &World| -> Vec<Option<String>> { listed(w).into_iter().map(|e| e.anchor).collect() };
    assert_eq!(anchors(&w), [Some("2".into()), Some("3".into())]);
    // Only row 2 changes: it is read and imported; row 3 is read again
    // too (the watermark did not move past it) and stays listed.
    db.execute_batch("UPDATE people SET first = 'Alan' WHERE id = '2';")
        .unwrap();
    w.run_ok("hr", "delta-import", RunStatus::CompletedImportErrors);
    assert_eq!(anchors(&w), [Some("3".into())]);
    assert_eq!(
        w.cs("hr", "2").unwrap().pending_import.unwrap().kind,
        ImportKind::Add
    );
    // A full import that meets row 3 as it is lists it alone again.
    w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    assert_eq!(anchors(&w), [Some("3".into())]);
}

/// A full import reads the source even when its watermark says it is
/// unchanged, so its bad rows are reported by every full import; a delta
/// import skips an unchanged source only once its records all imported.
#[test]
fn a_full_import_of_an_unchanged_file_should_read_it_and_report_its_errors_again() {
    let w = World::new(HR_DIR, &[]);
    std::fs::write(w.path("hr.csv"), BAD_NEW_ROWS).unwrap();
    w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let r = w.run_ok("hr", "full-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert_eq!((c.stage_failure, c.stage_no_change), (2, 1), "{r:#?}");
    assert_eq!(r.steps[0].errors, 2);
    // A delta import reads it again too: the failed records kept the
    // watermark from moving past them.
    let r = w.run_ok("hr", "delta-import", RunStatus::CompletedImportErrors);
    assert_eq!(import_counters(&r).stage_failure, 2);
    // Fixed: imported, and then an unchanged file is skipped by a delta.
    std::fs::write(w.path("hr.csv"), HR_CSV).unwrap();
    w.run("hr", "full-import");
    let r = w.run_ok("hr", "delta-import", RunStatus::CompletedNoObjects);
    assert_eq!(import_counters(&r), Default::default());
}

/// A file read half-written (its last row cut, the rows after it missing:
/// an error, and deletes staged for the missing), then put back whole:
/// the next delta import reads it, not skipped as the file the watermark
/// knew, and the deletes go (found by a black-box review: the people after
/// the cut stayed deleted for good).
#[test]
fn the_whole_file_put_back_after_a_cut_one_should_be_read_and_cancel_its_deletes() {
    let w = synced_hr();
    let whole = w.read("hr.csv");
    let cut: String = {
        let lines: Vec<&str> = whole.lines().collect();
        let mut text = lines[..2].join("\n");
        text.push('\n');
        text.push_str(&lines[2][..3]);
        text
    };
    w.write("hr.csv", &cut);
    let r = w.run_ok("hr", "delta-import", RunStatus::CompletedImportErrors);
    let c = import_counters(&r);
    assert!(c.stage_delete > 0, "{c:?}");
    w.write("hr.csv", &whole);
    w.run("hr", "delta-import");
    let pending: Vec<String> = w
        .cs_all("hr", autosync_store::CsFilter::PendingImport)
        .into_iter()
        .filter(|x| x.pending_import.as_ref().map(|p| p.kind) == Some(ImportKind::Delete))
        .map(|x| x.anchor)
        .collect();
    assert!(pending.is_empty(), "deletes still staged: {pending:?}");
}
