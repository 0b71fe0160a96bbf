//! The CSV connector against real files.

use crate::common::{build, ctx, drain, import_all, person, settings};
use autosync_connector::compliance::ComplianceTarget;
use autosync_connector::{
    ConnectorErrorKind, ConnectorFactory, ExportChange, ExportOutcome, ImportItem,
};
use autosync_connectors::csv::CsvFactory;
use autosync_model::{Attributes, ExportKind, ObjectTypeDef, Value};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn target() -> (TempDir, ComplianceTarget) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_owned();
    let path = base.join("users.csv");
    let object_type = ObjectTypeDef {
        dn: Some("dn".into()),
        ..person()
    };
    let ot = object_type.clone();
    let p1 = path.clone();
    let p2 = path.clone();
    let (typed_base, typed_type) = (base.clone(), ot.clone());
    let t = ComplianceTarget {
        name: "csv".into(),
        object_type,
        attributes: vec!["name".into(), "mail".into(), "title".into()],
        batch_size: 100,
        large_count: 1000,
        delta_sees_deletes: false,
        detects_unchanged: true,
        reset: Box::new(move || std::fs::write(&p1, b"").unwrap()),
        make: Box::new(move || {
            build(
                &CsvFactory,
                &base,
                vec![ot.clone()],
                json!({"path": "users.csv", "batch_size": 100}),
            )
        }),
        read_back: Box::new(move || read_back(&p2)),
        make_typed: Box::new(move || {
            build(
                &CsvFactory,
                &typed_base,
                vec![typed_type.clone()],
                json!({
                    "path": "typed.csv",
                    "multi_value_separator": ";",
                    "multi_valued": ["multi_text", "multi_integer", "empty_multi"],
                }),
            )
        }),
    };
    (dir, t)
}

/// The file's rows keyed by `id`, read with the csv crate directly.
fn read_back(path: &Path) -> BTreeMap<String, Attributes> {
    let mut out = BTreeMap::new();
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return out;
    }
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let header = rdr.headers().unwrap().clone();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let attrs: Attributes = header
            .iter()
            .zip(rec.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        out.insert(attrs["id"].to_text(), attrs);
    }
    out
}

crate::common::compliance_suite!(suite, target);

fn connector(dir: &Path, extra: serde_json::Value) -> Box<dyn autosync_connector::Connector> {
    let mut s = settings(json!({"path": "users.csv"}));
    s.extend(settings(extra));
    CsvFactory.build(&s, &ctx(dir, vec![person()])).unwrap()
}

fn errors(items: &[ImportItem]) -> Vec<(String, String)> {
    items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| {
            (
                e.error_type.clone(),
                format!("{}: {}", e.location, e.detail),
            )
        })
        .collect()
}

fn anchors(items: &[ImportItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|o| o.anchor.clone())
        .collect()
}

/// Every kind of bad record in one file: each is an error of its kind, the
/// rest is imported. Two rows with one anchor are both errors naming both
/// lines, and neither is read (which row came first decides nothing).
#[test]
fn each_bad_record_should_be_an_error_and_the_rest_of_the_file_imported() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"id,name,mail\n1,Ann,ann@x\n2,Bob,bob@x,extra\n3,Cy\xff,cy@x\n,NoId,no@x\n1,Again,again@x\n".to_vec();
    data.extend_from_slice(b"4,Dee,dee@x\n");
    std::fs::write(dir.path().join("users.csv"), data).unwrap();
    let items = import_all(&mut *connector(dir.path(), json!({})));
    assert_eq!(anchors(&items), vec!["4"]);
    let twice = "anchor \"1\" is on lines 2 and 6 of users.csv: neither is read; the object is \
                 kept as it was until one is removed";
    assert_eq!(
        errors(&items),
        vec![
            (
                "duplicate-anchor".into(),
                format!("users.csv line 2: {twice}")
            ),
            (
                "malformed-record".into(),
                "users.csv line 3: expected 3 fields, found 4".into()
            ),
            (
                "invalid-utf8".into(),
                "users.csv line 4: column `name` is not valid UTF-8".into()
            ),
            (
                "missing-anchor".into(),
                "users.csv line 5: no anchor: column `id` is empty".into()
            ),
            (
                "duplicate-anchor".into(),
                format!("users.csv line 6: {twice}")
            ),
        ]
    );
    let dup = items[4].as_ref().unwrap_err();
    assert_eq!(
        (dup.anchor.as_deref(), dup.location.as_str()),
        (Some("1"), "users.csv line 6")
    );
}

/// Items of a full import of `data` as `users.csv`.
fn import_data(data: &str) -> Vec<ImportItem> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), data).unwrap();
    import_all(&mut *connector(dir.path(), json!({})))
}

/// (location, anchor) of each `duplicate-anchor` error, and the detail of
/// the first.
fn duplicates(items: &[ImportItem]) -> (Vec<(String, Option<String>)>, String) {
    let dups: Vec<_> = items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .filter(|e| e.error_type == "duplicate-anchor")
        .collect();
    let detail = dups.first().map(|e| e.detail.clone()).unwrap_or_default();
    let at = dups
        .iter()
        .map(|e| (e.location.clone(), e.anchor.clone()))
        .collect();
    (at, detail)
}

/// A black-box review (HIGH): the first of two rows with one employee id
/// was kept, so an old terminated record of a rehired person put first
/// staged `active -> terminated` and the account was deleted. Now no row
/// with a repeated anchor is read, whichever comes first, each is an error
/// naming every line (after a byte order mark and a record spanning lines,
/// counted as the file has them), and the other rows import.
#[test]
fn a_repeated_anchor_should_be_read_from_no_row_whichever_comes_first() {
    let old_first = "\u{feff}id,name,status\nE1,Old Ann,terminated\nE2,\"Bob\nSmith\",active\n\
                     E1,Ann,active\nE3,Cy,active\nE1,Ann Again,active\n";
    let items = import_data(old_first);
    assert_eq!(anchors(&items), ["E2", "E3"]);
    assert_eq!(
        items[1].as_ref().unwrap().attributes["name"],
        Value::from("Bob\nSmith")
    );
    let line = |n: u32| (format!("users.csv line {n}"), Some("E1".to_owned()));
    assert_eq!(
        duplicates(&items),
        (
            vec![line(2), line(5), line(7)],
            "anchor \"E1\" is on lines 2, 5 and 7 of users.csv: none is read; the object is kept \
             as it was until all but one are removed"
                .to_owned()
        )
    );
    let old_last = "id,name,status\nE1,Ann,active\nE2,Bob,active\nE1,Old Ann,terminated\n";
    let items = import_data(old_last);
    assert_eq!(anchors(&items), ["E2"]);
    let (at, detail) = duplicates(&items);
    assert_eq!(at, [line(2), line(4)]);
    assert!(
        detail.contains("lines 2 and 4 of users.csv: neither is read"),
        "{detail}"
    );
}

/// A row in error that names the anchor counts as one of its rows (the
/// object is not read from the other); it keeps its own error. Rows that
/// an unclosed quote ends are read apart in both passes, so a repeat
/// after one is found.
#[test]
fn a_row_in_error_or_after_an_unclosed_quote_should_count_as_a_row_of_its_anchor() {
    let items = import_data(
        "id,name,mail\n1,Ann,a@x\n2,Bob,b@x,extra\n3,\"Smith, John,smith@x\n4,Dee,d@x\n\
         2,Bob,b@x\n1,Ann,a@x\n",
    );
    assert_eq!(anchors(&items), ["4"]);
    let kinds: Vec<(&str, &str, Option<&str>)> = items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| {
            (
                e.error_type.as_str(),
                e.location.as_str(),
                e.anchor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("duplicate-anchor", "users.csv line 2", Some("1")),
            ("malformed-record", "users.csv line 3", Some("2")),
            ("malformed-record", "users.csv line 4", Some("3")),
            ("duplicate-anchor", "users.csv line 6", Some("2")),
            ("duplicate-anchor", "users.csv line 7", Some("1")),
        ]
    );
    let detail = &items[4].as_ref().unwrap_err().detail;
    assert!(detail.contains("lines 3 and 6 of users.csv"), "{detail}");
}

/// Anchors repeat across object types too (one anchor, one object), and a
/// detail lists at most ten lines.
#[test]
fn a_repeat_should_be_found_across_object_types_and_a_long_list_of_lines_cut() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "kind,id,gid\nperson,x1,\ngroup,,x1\ngroup,,g2\n",
    )
    .unwrap();
    let group = ObjectTypeDef {
        name: "group".into(),
        anchor: "gid".into(),
        dn: None,
        references: Default::default(),
    };
    let mut conn = build(
        &CsvFactory,
        dir.path(),
        vec![person(), group],
        json!({"path": "users.csv", "object_type_column": "kind"}),
    );
    let items = import_all(&mut *conn);
    assert_eq!(anchors(&items), ["g2"]);
    let (at, _) = duplicates(&items);
    assert_eq!(at.len(), 2);

    let rows: String = (0..12).map(|i| format!("7,Row {i}\n")).collect();
    let items = import_data(&format!("id,name\n{rows}8,Other\n"));
    assert_eq!(anchors(&items), ["8"]);
    let (at, detail) = duplicates(&items);
    assert_eq!(at.len(), 12);
    assert_eq!(
        detail,
        "anchor \"7\" is on lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... and 2 more of users.csv: \
         none is read; the object is kept as it was until all but one are removed"
    );
}

/// The lines a repeat names are counted as the file has them: after CRLF
/// line ends, blank lines and a record spanning lines.
#[test]
fn repeats_after_crlf_and_blank_lines_should_name_their_own_lines() {
    for (data, lines) in [
        ("id,name\r\n1,a\r\n\r\n\r\n1,b\r\nbad\r\n", (2, 5)),
        ("id,name\n\n1,a\n\n1,b\nbad", (3, 5)),
        ("id,name\r\n\"1\",\"a\r\nb\"\r\n1,b\r\n\r\nbad\r\n", (2, 4)),
    ] {
        let items = import_data(data);
        let located: Vec<&str> = items
            .iter()
            .filter_map(|i| i.as_ref().err())
            .map(|e| e.location.as_str())
            .collect();
        let (first, second) = lines;
        let at = |n: u32| format!("users.csv line {n}");
        assert_eq!(located, [at(first), at(second), at(6)], "{data:?}");
        let (_, detail) = duplicates(&items);
        let named = format!("lines {first} and {second} of users.csv");
        assert!(detail.contains(&named), "{data:?}: {detail}");
    }
}

/// The first pass reads the file the import opened: one renamed over it
/// before the first batch (a writer that writes aside) changes neither
/// pass, so the repeats found are those of the rows read.
#[test]
fn the_first_pass_should_read_the_file_opened_even_when_another_is_renamed_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "id,name\n1,Ann\n2,Bob\n1,Old Ann\n").unwrap();
    let mut conn = connector(dir.path(), json!({}));
    let stream = conn.full_import(None).unwrap();
    let aside = dir.path().join("users.csv.tmp");
    std::fs::write(&aside, "id,name\n3,Cy\n").unwrap();
    std::fs::rename(&aside, &path).unwrap();
    let (batches, watermark) = drain(stream);
    let items = batches.concat();
    assert_eq!(anchors(&items), ["2"]);
    assert_eq!(duplicates(&items).0.len(), 2);
    assert!(watermark.is_some());
}

#[test]
fn a_missing_file_should_stop_the_import_as_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = connector(dir.path(), json!({}));
    let err = conn.full_import(None).err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::ServerDown);
    assert!(err.message.contains("users.csv"), "{}", err.message);
}

fn add(id: &str, attrs: &[(&str, Value)]) -> ExportChange {
    ExportChange {
        values: Default::default(),
        object_type: "person".into(),
        anchor: id.into(),
        dn: id.into(),
        kind: ExportKind::Add,
        changes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(v.clone())))
            .collect(),
        new_dn: None,
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn an_export_that_never_commits_should_leave_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let original = b"id,name\n1,Ann\n2,Bob\n";
    std::fs::write(&path, original).unwrap();
    let mut conn = connector(dir.path(), json!({}));
    {
        let mut session = conn.begin_export().unwrap();
        let outcomes = session
            .apply(&[add("3", &[("name", "Cy".into())])])
            .unwrap();
        assert_eq!(outcomes, vec![ExportOutcome::Applied { anchor: None }]);
        // The step fails here (crash, error): the session is dropped, never committed.
    }
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert_eq!(files_in(dir.path()), vec![path]);
}

/// A second row with an anchor another has (the import lists it as
/// `duplicate-anchor` and reads the first) is kept as it is; the export
/// goes on, changing the first (found by a black-box review: one such row
/// stopped every export of the file).
#[test]
fn a_row_whose_anchor_another_has_should_be_kept_and_not_stop_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(
        &path,
        "id,name
1,Ann
2,Bob
1,Ann Again
",
    )
    .unwrap();
    let mut conn = connector(dir.path(), json!({}));
    let mut session = conn.begin_export().unwrap();
    let update = ExportChange {
        kind: ExportKind::Update,
        ..add("1", &[("name", "Anna".into())])
    };
    let outcomes = session
        .apply(&[add("3", &[("name", "Cy".into())]), update])
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ExportOutcome::Applied { .. })),
        "{outcomes:?}"
    );
    session.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id,name\n1,Anna\n2,Bob\n1,Ann Again\n3,Cy\n"
    );
}

#[test]
fn a_committed_export_should_leave_no_temporary_file_and_keep_the_header_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "name,id\nAnn,1\nBob,2\n").unwrap();
    let mut conn = connector(dir.path(), json!({}));
    let mut session = conn.begin_export().unwrap();
    session
        .apply(&[add("3", &[("mail", "cy@x".into()), ("name", "Cy".into())])])
        .unwrap();
    session.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "name,id,mail\nAnn,1,\nBob,2,\nCy,3,cy@x\n"
    );
    assert_eq!(files_in(dir.path()), vec![path]);
}

#[test]
fn the_columns_setting_should_fix_the_exported_column_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let mut conn = connector(dir.path(), json!({"columns": ["id", "name", "mail"]}));
    let mut session = conn.begin_export().unwrap();
    session
        .apply(&[add(
            "1",
            &[
                ("title", "Boss".into()),
                ("mail", "a@x".into()),
                ("name", "Ann".into()),
            ],
        )])
        .unwrap();
    session.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id,name,mail,title\n1,Ann,a@x,Boss\n"
    );
}

#[test]
fn multi_valued_columns_should_split_on_import_and_join_on_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "id;groups\n1;\"a,b\"\n").unwrap();
    let extra = json!({"delimiter": ";", "multi_value_separator": ",", "multi_valued": ["groups"]});
    let mut conn = connector(dir.path(), extra);
    let items = import_all(&mut *conn);
    let obj = items[0].as_ref().unwrap();
    assert_eq!(
        obj.attributes["groups"],
        Value::Multi(vec!["a".into(), "b".into()])
    );
    let mut session = conn.begin_export().unwrap();
    let groups = Value::Multi(vec!["x".into(), "y".into()]);
    let with_separator = Value::Multi(vec!["p,q".into(), r"C:\dir".into()]);
    let outcomes = session
        .apply(&[
            add("2", &[("groups", groups)]),
            add("3", &[("groups", with_separator.clone())]),
        ])
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ExportOutcome::Applied { .. }))
    );
    session.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id;groups\n1;a,b\n2;x,y\n3;p\\,q,C:\\\\dir\n"
    );
    let items = import_all(&mut *conn);
    assert_eq!(
        items[2].as_ref().unwrap().attributes["groups"],
        with_separator
    );
}

#[test]
fn an_unchanged_file_should_yield_no_batch_and_a_rewritten_one_should_be_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "id,name\n1,Ann\n").unwrap();
    let mut conn = connector(dir.path(), json!({}));
    let (_, wm) = drain(conn.full_import(None).unwrap());
    let wm = wm.unwrap();
    let stream = conn.full_import(Some(&wm)).unwrap();
    assert!(stream.unchanged());
    let (batches, wm2) = drain(stream);
    assert!(batches.is_empty());
    assert_eq!(wm2.as_deref(), Some(wm.as_str()));
    std::fs::write(&path, "id,name\n1,Bob\n").unwrap(); // same size, other bytes
    let stream = conn.full_import(Some(&wm)).unwrap();
    assert!(!stream.unchanged());
    let (batches, wm3) = drain(stream);
    assert_eq!(batches.concat().len(), 1);
    assert_ne!(wm3.unwrap(), wm);
}

#[test]
fn a_200k_row_file_should_import_in_batches_of_at_most_the_default_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let mut data = String::from("id,name,mail,title,department\n");
    for i in 0..200_000 {
        data.push_str(&format!("{i},User {i},user{i}@example.com,Engineer,R&D\n"));
    }
    std::fs::write(&path, data).unwrap();
    let mut conn = connector(dir.path(), json!({}));
    let (batches, wm) = drain(conn.full_import(None).unwrap());
    assert!(wm.is_some());
    assert!(
        batches.iter().all(|b| b.len() <= 5000),
        "a batch exceeds 5000 items"
    );
    assert_eq!(batches.len(), 40);
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 200_000);
    assert!(batches.iter().flatten().all(Result::is_ok));
}

#[test]
fn rows_should_take_their_object_type_from_the_type_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "kind,id,gid\nperson,1,\ngroup,,g1\nrobot,2,\n",
    )
    .unwrap();
    let group = ObjectTypeDef {
        name: "group".into(),
        anchor: "gid".into(),
        dn: None,
        references: Default::default(),
    };
    let mut conn = build(
        &CsvFactory,
        dir.path(),
        vec![person(), group],
        json!({"path": "users.csv", "object_type_column": "kind"}),
    );
    let items = import_all(&mut *conn);
    let ok: Vec<(String, String)> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|o| (o.object_type.clone(), o.anchor.clone()))
        .collect();
    assert_eq!(
        ok,
        vec![("person".into(), "1".into()), ("group".into(), "g1".into())]
    );
    assert_eq!(errors(&items)[0].0, "unknown-object-type");
    assert!(!items[0].as_ref().unwrap().attributes.contains_key("kind"));
}

#[test]
fn validation_should_report_every_bad_setting_with_help() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(
        json!({"delimeter": ";", "encoding": "latin1", "batch_size": 0, "multi_valued": ["g"]}),
    );
    let errs = CsvFactory
        .validate(&s, &ctx(dir.path(), vec![person()]))
        .unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["path", "delimeter"]);
    assert!(
        errs[1]
            .help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `delimiter`?")
    );
    let s = settings(
        json!({"path": "a.csv", "encoding": "latin1", "batch_size": 0, "multi_valued": ["g"]}),
    );
    let errs = CsvFactory
        .validate(&s, &ctx(dir.path(), vec![person()]))
        .unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["encoding", "multi_value_separator", "batch_size"]
    );
    let s = settings(json!({"path": 5}));
    let errs = CsvFactory
        .validate(&s, &ctx(dir.path(), vec![person()]))
        .unwrap_err();
    assert_eq!(errs[0].key, "path");
    assert!(
        errs[0].message.contains("invalid type"),
        "{}",
        errs[0].message
    );
}

/// What a read of `path` sees when `change` happens after its first batch:
/// every item read, or the error that stopped it.
fn read_while(
    dir: &Path,
    path: &Path,
    change: impl FnOnce(),
) -> Result<(usize, Option<String>), autosync_connector::ConnectorError> {
    let rows: String = (0..50).map(|i| format!("{i},Person {i}\n")).collect();
    std::fs::write(path, format!("id,name\n{rows}")).unwrap();
    let mut conn = build(
        &CsvFactory,
        dir,
        vec![person()],
        json!({"path": "p.csv", "batch_size": 10}),
    );
    let mut stream = conn.full_import(None).unwrap();
    let mut n = stream.next_batch()?.map_or(0, |b| b.len());
    change();
    while let Some(b) = stream.next_batch()? {
        n += b.len();
    }
    Ok((n, stream.watermark()))
}

#[test]
fn a_file_rewritten_in_place_while_it_is_read_should_stop_the_import_not_end_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    // Another program truncates the file and writes a shorter one in place.
    let err = read_while(dir.path(), &path, || {
        std::fs::write(&path, "id,name\n0,Person 0\n").unwrap()
    })
    .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Connectivity, "{err}");
    assert!(
        err.message.contains("p.csv changed while it was read")
            && err.message.contains("nothing was staged for deletion"),
        "{err}"
    );
    // Appended to in place: the same.
    let err = read_while(dir.path(), &path, || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "99,Late Person").unwrap();
    })
    .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Connectivity, "{err}");
}

#[test]
fn a_file_replaced_by_rename_while_it_is_read_should_be_read_whole_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    let aside = dir.path().join("p.csv.tmp");
    let (n, wm) = read_while(dir.path(), &path, || {
        std::fs::write(&aside, "id,name\n0,Person 0\n").unwrap();
        std::fs::rename(&aside, &path).unwrap();
    })
    .unwrap();
    // The file opened was read whole; the next import reads the new one.
    assert_eq!(n, 50);
    assert!(wm.is_some());
}

/// A connector whose type takes its DN from column `username`.
fn by_username(dir: &Path) -> Box<dyn autosync_connector::Connector> {
    let by_username = ObjectTypeDef {
        dn: Some("username".into()),
        ..person()
    };
    build(
        &CsvFactory,
        dir,
        vec![by_username],
        json!({"path": "users.csv"}),
    )
}

/// A change of `kind` to user `id`, whose DN (user name) is `name`: an
/// add's, a delete-add's or a rename's new one.
fn user(id: &str, kind: ExportKind, name: &str, attrs: &[(&str, Value)]) -> ExportChange {
    let renamed = matches!(kind, ExportKind::Rename);
    ExportChange {
        kind,
        dn: if renamed { id.into() } else { name.into() },
        new_dn: renamed.then(|| name.into()),
        ..add(id, attrs)
    }
}

fn failed(outcomes: &[ExportOutcome]) -> Vec<Option<(&str, &str)>> {
    outcomes
        .iter()
        .map(|o| match o {
            ExportOutcome::Failed { error_type, detail } => {
                Some((error_type.as_str(), detail.as_str()))
            }
            ExportOutcome::Applied { .. } => None,
        })
        .collect()
}

/// A DN is one object's, as in a directory and the JSON Lines export:
/// an add of a user name another row has (ignoring case) fails with
/// `already-exists` and writes nothing of it (found by a black-box
/// review: `E1,ann` and `E3,ann` were both written, and a report's
/// manager `ann` named two rows); the other adds of the batch are written.
#[test]
fn an_add_of_a_dn_another_row_has_should_fail_with_already_exists_and_write_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "id,username\nE1,ann\n").unwrap();
    let mut conn = by_username(dir.path());
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[
            user("E2", ExportKind::Add, "bob", &[]),
            user("E3", ExportKind::Add, "Ann", &[("title", "Boss".into())]),
            user("E4", ExportKind::Add, "cy", &[]),
            // The DN an add of this batch wrote is taken too.
            user("E5", ExportKind::Add, "BOB", &[]),
        ])
        .unwrap();
    let failed = failed(&outcomes);
    assert_eq!(failed[0], None, "{outcomes:?}");
    let (kind, detail) = failed[1].unwrap();
    assert_eq!(kind, "already-exists");
    assert_eq!(
        detail,
        "the DN `Ann` is taken: object `E1` of users.csv has it; nothing of this change was written"
    );
    assert_eq!(failed[2], None, "{outcomes:?}");
    let (kind, detail) = failed[3].unwrap();
    assert_eq!(kind, "already-exists");
    assert!(detail.contains("object `E2`"), "{detail}");
    session.commit().unwrap();
    // One row has `ann`; the refused add's column was not added.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id,username\nE1,ann\nE2,bob\nE4,cy\n"
    );
}

/// A rename, an update of the DN column and a delete-add onto a DN
/// another row has fail alike, and the file is left as it was.
#[test]
fn a_rename_onto_a_dn_another_row_has_should_fail_with_already_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let original = "id,username,title\nE1,ann,Boss\nE2,bob,Clerk\n";
    std::fs::write(&path, original).unwrap();
    let mut conn = by_username(dir.path());
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[
            user("E2", ExportKind::Rename, "ANN", &[("title", "Boss".into())]),
            user("E2", ExportKind::Update, "", &[("username", "Ann".into())]),
            user("E2", ExportKind::DeleteAdd, "ann", &[]),
        ])
        .unwrap();
    for (f, o) in failed(&outcomes).iter().zip(&outcomes) {
        let (kind, detail) = f.unwrap_or_else(|| panic!("applied: {o:?}"));
        assert_eq!(kind, "already-exists");
        assert!(detail.contains("object `E1`"), "{detail}");
    }
    session.commit().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
}

/// The file is written at once: a DN freed by a delete or a rename
/// earlier in the batch may be taken, as may one whose holder moves away
/// or goes later in the batch (two objects that swap their DNs); one still
/// taken at the batch's end fails, and its object keeps its own.
#[test]
fn dns_freed_earlier_or_later_in_the_batch_or_swapped_should_be_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(
        &path,
        "id,username\nE1,ann\nE2,bob\nE3,cy\nE4,dee\nE5,eve\n",
    )
    .unwrap();
    let mut conn = by_username(dir.path());
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[
            // 1 and 2 swap.
            user("E1", ExportKind::Rename, "bob", &[]),
            user("E2", ExportKind::Rename, "ann", &[]),
            // 3 goes, then 6 takes its DN.
            ExportChange {
                kind: ExportKind::Delete,
                ..add("E3", &[])
            },
            user("E6", ExportKind::Add, "CY", &[]),
            // 7 takes the DN of 4, which goes later in the batch.
            user("E7", ExportKind::Add, "dee", &[]),
            ExportChange {
                kind: ExportKind::Delete,
                ..add("E4", &[])
            },
            // 8 wants the DN of 5, which moves away and then takes it
            // back (a delete-add): 8 waits, and fails at the batch's end.
            user("E8", ExportKind::Add, "eve", &[]),
            user("E5", ExportKind::Rename, "eva", &[]),
            user("E5", ExportKind::DeleteAdd, "Eve", &[]),
        ])
        .unwrap();
    let failed = failed(&outcomes);
    assert!(
        failed
            .iter()
            .enumerate()
            .all(|(i, f)| (i == 6) == f.is_some()),
        "{outcomes:?}"
    );
    let (kind, detail) = failed[6].unwrap();
    assert_eq!(kind, "already-exists");
    assert!(detail.contains("object `E5`"), "{detail}");
    session.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id,username\nE1,bob\nE2,ann\nE5,Eve\nE6,CY\nE7,dee\n"
    );
}

/// DNs compare as references by DN do: ignoring case, and the spaces and
/// escapes a directory ignores in an LDAP DN.
#[test]
fn dns_should_compare_ignoring_case_as_references_by_dn_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "id,dn\n1,\"cn=Kim\\, Ann,ou=People\"\n").unwrap();
    let by_dn = ObjectTypeDef {
        dn: Some("dn".into()),
        ..person()
    };
    let mut conn = build(
        &CsvFactory,
        dir.path(),
        vec![by_dn],
        json!({"path": "users.csv"}),
    );
    let mut session = conn.begin_export().unwrap();
    let outcomes = session
        .apply(&[
            user("2", ExportKind::Add, r"CN=kim\2C ann, OU=people", &[]),
            user("3", ExportKind::Add, "cn=Kim Ann,ou=People", &[]),
        ])
        .unwrap();
    let failed = failed(&outcomes);
    assert!(
        matches!(failed[0], Some(("already-exists", d)) if d.contains("object `1`")),
        "{outcomes:?}"
    );
    assert_eq!(failed[1], None, "{outcomes:?}");
}
