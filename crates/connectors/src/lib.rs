//! The connectors that ship with autosync, one folder each: CSV files
//! ([`csv`]), JSON Lines files ([`jsonl`]), SQLite tables ([`sqlite`]) and
//! LDAP directories ([`ldap`]).
//! Each has a [`ConnectorFactory`](autosync_connector::ConnectorFactory)
//! whose settings are the MA's `connector` table, validated in full (one
//! error per problem) before anything is built; [`register_all`] adds them
//! all to a registry.

mod change;
pub mod csv;
pub mod file;
pub mod jsonl;
pub mod ldap;
mod repeated;
pub mod settings;
pub mod sqlite;
mod unique_dn;
mod watch;

use autosync_connector::Registry;

/// Register every connector type of this crate (`csv`, `jsonl`, `sqlite`,
/// `ldap`).
pub fn register_all(registry: &mut Registry) {
    registry.register(Box::new(csv::CsvFactory));
    registry.register(Box::new(jsonl::JsonlFactory));
    registry.register(Box::new(sqlite::SqliteFactory));
    registry.register(Box::new(ldap::LdapFactory));
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_connector::keys::serde_fields;
    use autosync_connector::{ConnectorFactory, Shape};

    fn shape_keys(registry: &Registry, kind: &str) -> Vec<String> {
        let factory = registry.get(kind).unwrap();
        factory
            .settings_shape()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// The keys a connector declares are the keys `settings::parse`
    /// accepts (its `KEYS`); these must be the fields of the serde struct
    /// the settings are read into, or a key is either refused although the
    /// struct has it, or declared although serde refuses it.
    #[test]
    fn every_connector_should_declare_exactly_the_fields_of_its_settings_struct() {
        let mut registry = Registry::new();
        register_all(&mut registry);
        let cases = [
            ("csv", serde_fields::<csv::CsvConfig>()),
            ("jsonl", serde_fields::<jsonl::JsonlConfig>()),
            ("sqlite", serde_fields::<sqlite::SqliteConfig>()),
            ("ldap", serde_fields::<ldap::LdapConfig>()),
        ];
        for (kind, fields) in cases {
            let fields = fields.unwrap();
            assert!(!fields.is_empty(), "{kind}");
            let mut declared = shape_keys(&registry, kind);
            let mut fields = fields;
            declared.sort();
            fields.sort();
            assert_eq!(
                declared, fields,
                "connector `{kind}`: its KEYS (left) differ from its settings struct's fields (right)"
            );
        }
    }

    #[test]
    fn the_sqlite_connector_should_declare_its_nested_tables() {
        let shape = sqlite::SqliteFactory.settings_shape();
        let get = |k: &str| shape.iter().find(|(n, _)| n == k).unwrap().1.clone();
        let Shape::Tagged { tag, variants } = get("delta") else {
            panic!("delta is not tagged: {:?}", get("delta"));
        };
        assert_eq!(tag, "kind");
        let names: Vec<&str> = variants.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(names, ["column", "changelog"]);
        assert_eq!(
            variants[1]
                .1
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            [
                "table",
                "sequence_column",
                "anchor_column",
                "operation_column",
                "attribute_column",
                "value_column"
            ]
        );
        assert_eq!(get("column_types"), Shape::Leaf.map("column"));
    }
}
