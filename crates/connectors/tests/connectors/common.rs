//! Helpers shared by the connector tests.

use autosync_connector::{BuildContext, Connector, ConnectorFactory, ImportItem, ImportStream};
use autosync_model::ObjectTypeDef;
use std::path::Path;

pub fn person() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "person".into(),
        anchor: "id".into(),
        dn: None,
        references: Default::default(),
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

/// The compliance suite for one connector: in module `$module`, a test per
/// check of `autosync_connector::compliance` (each on a fresh target from
/// `$target`, a `fn() -> (TempDir, ComplianceTarget)`), and a test that
/// fails when the suite has a check this list lacks.
macro_rules! compliance_suite {
    ($module:ident, $target:expr) => {
        crate::common::compliance_suite!(@checks $module, $target, [
            export_adds_then_full_import_returns_exactly_them,
            export_update_remove_attribute_and_delete_round_trip,
            re_sending_an_add_updates_in_place,
            failed_changes_do_not_stop_the_batch,
            full_import_streams_in_bounded_batches,
            delta_import_returns_changes_and_a_watermark,
            unchanged_is_true_only_when_nothing_changed,
            every_value_type_reads_back_equal,
            value_changes_read_back_as_the_whole_value,
        ]);
    };
    (@checks $module:ident, $target:expr, [$($check:ident),* $(,)?]) => {
        mod $module {
            use super::*;

            $(
                #[test]
                fn $check() {
                    let (_dir, t) = $target();
                    autosync_connector::compliance::$check(&t);
                }
            )*

            #[test]
            fn every_check_of_the_suite_should_have_its_test() {
                let tested = [$(stringify!($check)),*];
                let suite: Vec<&str> = autosync_connector::compliance::CHECKS
                    .iter()
                    .map(|c| c.0)
                    .collect();
                assert_eq!(tested.to_vec(), suite);
            }
        }
    };
}
pub(crate) use compliance_suite;
