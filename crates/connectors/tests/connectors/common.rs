//! Helpers shared by the connector tests.

use autosync_connector::{BuildContext, Connector, ConnectorFactory, ImportItem, ImportStream};
use autosync_model::ObjectTypeDef;
use std::path::Path;

pub fn person() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "person".into(),
        anchor: "id".into(),
        dn: None,
    }
}

pub fn ctx(dir: &Path, types: Vec<ObjectTypeDef>) -> BuildContext {
    BuildContext {
        ma: "test".into(),
        base_dir: dir.to_owned(),
        object_types: types,
    }
}

pub fn settings(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        other => panic!("settings must be an object, got {other}"),
    }
}

pub fn build(
    factory: &dyn ConnectorFactory,
    dir: &Path,
    types: Vec<ObjectTypeDef>,
    v: serde_json::Value,
) -> Box<dyn Connector> {
    factory
        .build(&settings(v), &ctx(dir, types))
        .unwrap_or_else(|e| panic!("build failed: {e}"))
}

/// Drain a stream: its batches and final watermark.
pub fn drain(mut stream: Box<dyn ImportStream + '_>) -> (Vec<Vec<ImportItem>>, Option<String>) {
    let mut batches = Vec::new();
    while let Some(b) = stream.next_batch().unwrap() {
        batches.push(b);
    }
    (batches, stream.watermark())
}

/// Every item of a full import of `conn`.
pub fn import_all(conn: &mut dyn Connector) -> Vec<ImportItem> {
    drain(conn.full_import(None).unwrap())
        .0
        .into_iter()
        .flatten()
        .collect()
}
