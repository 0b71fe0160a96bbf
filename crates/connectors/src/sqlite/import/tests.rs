//! The read by anchor uses the index on the anchor column (query plans).

use super::*;
use autosync_connector::BuildContext;
use autosync_model::ObjectTypeDef;

/// A read by anchor looks for both of an anchor's forms and still
/// goes through an index on the anchor column, whatever its type.
#[test]
fn a_read_by_anchor_should_use_the_index_on_the_anchor_column() {
    let dir = tempfile::tempdir().unwrap();
    let tables = [
        (
            "untyped",
            "CREATE TABLE untyped (id, name TEXT); CREATE INDEX u_id ON untyped (id);",
        ),
        (
            "texts",
            "CREATE TABLE texts (id TEXT COLLATE NOCASE, name TEXT); CREATE INDEX t_id ON texts (id);",
        ),
        (
            "numbers",
            "CREATE TABLE numbers (id INTEGER, name TEXT); CREATE INDEX n_id ON numbers (id);",
        ),
        (
            "keyed",
            "CREATE TABLE keyed (id TEXT PRIMARY KEY, name TEXT) WITHOUT ROWID;",
        ),
    ];
    let path = dir.path().join("plan.db");
    let mut conn = Connection::open(&path).unwrap();
    for (table, sql) in tables {
        conn.execute_batch(sql).unwrap();
        let settings = serde_json::json!({"path": "plan.db", "table": table});
        let serde_json::Value::Object(settings) = settings else {
            unreachable!()
        };
        let ctx = BuildContext {
            ma: "test".into(),
            base_dir: dir.path().to_owned(),
            object_types: vec![ObjectTypeDef {
                name: "person".into(),
                anchor: "id".into(),
                dn: None,
                references: Default::default(),
            }],
        };
        let s = SqliteSettings::from_settings(&settings, &ctx).unwrap();
        let schema = Schema::read(&conn, &s).unwrap();
        let sql = SqliteImport::look_up(&mut conn, &s, &schema, Vec::new())
            .unwrap()
            .anchor_sql();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(crate::sqlite::db::anchor_forms("7"), |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|p| p.contains("INDEX") || p.contains("PRIMARY KEY")),
            "{table}: {sql}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|p| p.starts_with("SCAN")),
            "{table}: {plan:?}"
        );
    }
}
