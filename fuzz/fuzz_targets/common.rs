//! What the file-connector targets share: write the input as a file in a
//! temporary folder, run the connector's full import stream to its end as
//! the engine does, and check that every record error is located.

use autosync_connector::{BuildContext, ConnectorFactory, ImportItem};
use autosync_model::ObjectTypeDef;

pub fn import(factory: &dyn ConnectorFactory, file: &str, settings: serde_json::Value, data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), data).unwrap();
    let ctx = BuildContext {
        ma: "fuzz".into(),
        base_dir: dir.path().to_owned(),
        object_types: vec![ObjectTypeDef {
            name: "person".into(),
            anchor: "id".into(),
            dn: None,
        }],
    };
    let serde_json::Value::Object(settings) = settings else {
        unreachable!()
    };
    let mut conn = factory.build(&settings, &ctx).unwrap();
    let Ok(mut stream) = conn.full_import(None) else {
        return; // a header problem: a whole-step error
    };
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    let prefix = format!("{file} line ");
    let mut batches = 0;
    while let Some(batch) = stream.next_batch().unwrap() {
        batches += 1;
        assert!(batches <= data.len() + 2, "the import does not end");
        for item in &batch {
            check(item, &prefix, lines);
        }
    }
    assert!(stream.watermark().is_some());
}

fn check(item: &ImportItem, prefix: &str, lines: usize) {
    if let Err(e) = item {
        let line: usize = e
            .location
            .strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unlocated error {e:?}"));
        assert!((1..=lines).contains(&line), "{e:?} outside {lines} lines");
    }
}
