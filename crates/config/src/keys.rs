//! Every key the configuration file accepts, read from the code: the
//! file's own tables from [`crate::schema`]'s `ROOT` (the same tree that
//! rejects unknown keys), each connector type's `connector` table from its
//! factory ([`ConnectorFactory::settings_shape`]), and the controller's
//! tables from whoever reads them (the service, which passes their shapes
//! in). The configuration reference must document each of these keys; the
//! docs test checks it against [`key_paths`].
//!
//! A key path reads `ma.connector(csv).path`: the tables from the top of
//! the file, a user-chosen name written `<type>`, and the `type` (or other
//! tag) of a table whose keys depend on it in parentheses.
//!
//! [`ConnectorFactory::settings_shape`]: autosync_connector::ConnectorFactory::settings_shape

use crate::schema::{Node, ROOT};
use autosync_connector::Registry;
pub use autosync_connector::Shape;
use std::fmt;

/// One table on the way to a key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableSeg {
    /// The key that holds the table (`connector`), or a user-chosen name's
    /// placeholder (`<type>`).
    pub name: String,
    /// An array of tables (`[[ma]]`).
    pub array: bool,
    /// For a table whose keys depend on its tag: the tag and its value
    /// (`type`, `csv`).
    pub variant: Option<(String, String)>,
}

/// A key the configuration accepts: the tables that lead to it and its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPath {
    pub tables: Vec<TableSeg>,
    /// The key (`path`), or a placeholder (`<attribute>`) for the names of
    /// a table of user-chosen names.
    pub key: String,
}

impl KeyPath {
    /// The dotted path of the key's table: `ma.connector`.
    pub fn table(&self) -> String {
        let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
        names.join(".")
    }

    /// The key's table as a TOML header: `[ma.connector]`,
    /// `[[ma.object_types]]`.
    pub fn header(&self) -> String {
        match self.tables.last() {
            Some(t) if t.array => format!("[[{}]]", self.table()),
            _ => format!("[{}]", self.table()),
        }
    }

    /// The tag and its value that select the key's table's keys, if any.
    pub fn variant(&self) -> Option<(&str, &str)> {
        self.tables
            .last()
            .and_then(|t| t.variant.as_ref())
            .map(|(tag, value)| (tag.as_str(), value.as_str()))
    }

    /// The heading of the reference under which the key is documented:
    /// `` `[ma.connector]` with `type = "csv"` ``.
    pub fn heading(&self) -> String {
        match self.variant() {
            Some((tag, value)) => format!("`{}` with `{tag} = \"{value}\"`", self.header()),
            None => format!("`{}`", self.header()),
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            f.write_str(&t.name)?;
            if let Some((_, value)) = &t.variant {
                write!(f, "({value})")?;
            }
            f.write_str(".")?;
        }
        f.write_str(&self.key)
    }
}

/// The shape of the whole file: [`ROOT`], with each `connector` table the
/// shape its connector type declares (`type` picks the type), and the
/// `[controller]` and `[ma.controller]` tables as given.
pub fn shape(registry: &Registry, controller: &Shape, ma_controller: &Shape) -> Shape {
    let connector = Shape::Tagged {
        tag: "type".to_owned(),
        variants: registry
            .kinds()
            .into_iter()
            .filter_map(|kind| {
                let factory = registry.get(kind)?;
                Some((kind.to_owned(), factory.settings_shape()))
            })
            .collect(),
    };
    let free = Free {
        connector: &connector,
        controller,
        ma_controller,
    };
    from_node(&ROOT, &mut Vec::new(), &free)
}

/// Every key path of `shape` (a table), in the order the code declares
/// them.
pub fn key_paths(shape: &Shape) -> Vec<KeyPath> {
    let mut out = Vec::new();
    walk(shape, &mut Vec::new(), &mut out);
    out
}

/// Every key the file accepts (see [`shape`]).
pub fn accepted(registry: &Registry, controller: &Shape, ma_controller: &Shape) -> Vec<KeyPath> {
    key_paths(&shape(registry, controller, ma_controller))
}

/// The shapes of the tables [`ROOT`] leaves to others (`Node::Free`).
struct Free<'a> {
    connector: &'a Shape,
    controller: &'a Shape,
    ma_controller: &'a Shape,
}

fn from_node(node: &Node, path: &mut Vec<&'static str>, free: &Free<'_>) -> Shape {
    match node {
        Node::Leaf => Shape::Leaf,
        Node::Free => match path.as_slice() {
            ["controller"] => free.controller.clone(),
            ["ma", "controller"] => free.ma_controller.clone(),
            ["ma", "connector"] => free.connector.clone(),
            // A table nobody describes: its keys cannot be listed.
            _ => Shape::Table(Vec::new()),
        },
        Node::Table(keys) => Shape::Table(
            keys.iter()
                .map(|(k, child)| {
                    path.push(k);
                    let shape = from_node(child, path, free);
                    path.pop();
                    ((*k).to_owned(), shape)
                })
                .collect(),
        ),
        Node::Array(child) => Shape::Array(Box::new(from_node(child, path, free))),
        Node::Map(placeholder, child) => Shape::Map(
            (*placeholder).to_owned(),
            Box::new(from_node(child, path, free)),
        ),
    }
}

/// Adds the keys of the table `shape` reached through `tables`.
fn walk(shape: &Shape, tables: &mut Vec<TableSeg>, out: &mut Vec<KeyPath>) {
    match shape {
        Shape::Table(keys) => {
            for (key, child) in keys {
                value(key, child, tables, out);
            }
        }
        Shape::Tagged { tag, variants } => {
            out.push(KeyPath {
                tables: tables.clone(),
                key: tag.clone(),
            });
            for (variant, keys) in variants {
                if let Some(last) = tables.last_mut() {
                    last.variant = Some((tag.clone(), variant.clone()));
                }
                for (key, child) in keys {
                    value(key, child, tables, out);
                }
                if let Some(last) = tables.last_mut() {
                    last.variant = None;
                }
            }
        }
        Shape::Map(placeholder, child) => value(&format!("<{placeholder}>"), child, tables, out),
        // Not a table: the caller made it a key.
        Shape::Leaf | Shape::Array(_) => {}
    }
}

/// Adds key `key` of shape `shape` in the table reached through `tables`.
fn value(key: &str, shape: &Shape, tables: &mut Vec<TableSeg>, out: &mut Vec<KeyPath>) {
    let (array, inner) = match shape {
        Shape::Array(inner) => (true, inner.as_ref()),
        other => (false, other),
    };
    match inner {
        Shape::Leaf | Shape::Array(_) => out.push(KeyPath {
            tables: tables.clone(),
            key: key.to_owned(),
        }),
        Shape::Table(_) | Shape::Tagged { .. } | Shape::Map(..) => {
            tables.push(TableSeg {
                name: key.to_owned(),
                array,
                variant: None,
            });
            walk(inner, tables, out);
            tables.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_connector::keys::{serde_fields, serde_variants, tagged_fields};
    use autosync_model::*;
    use serde::de::DeserializeOwned;

    fn registry() -> Registry {
        let mut registry = Registry::new();
        autosync_connectors::register_all(&mut registry);
        registry
    }

    fn paths() -> Vec<String> {
        let controller = Shape::leaves(&["run_mode"]);
        let triggers = Shape::Tagged {
            tag: "type".into(),
            variants: vec![("interval".into(), vec![("every".into(), Shape::Leaf)])],
        };
        let ma_controller = Shape::Table(vec![
            ("enabled".into(), Shape::Leaf),
            ("triggers".into(), triggers.array()),
        ]);
        accepted(&registry(), &controller, &ma_controller)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_key_paths_should_name_tables_placeholders_and_variants() {
        let paths = paths();
        for expected in [
            "store.kind",
            "store.path",
            "metaverse.<type>.attributes",
            "metaverse.<type>.precedence.<attribute>",
            "metaverse.<type>.deletion.rule",
            "ma.name",
            "ma.object_types.anchor",
            "ma.join.on.mv_expr",
            "ma.run_profiles.<profile>",
            "ma.staging_thresholds.delete_adds",
            "ma.connector.type",
            "ma.connector(csv).path",
            "ma.connector(csv).max_record_lines",
            "ma.connector(jsonl).path",
            "ma.connector(sqlite).delta.kind",
            "ma.connector(sqlite).delta(changelog).sequence_column",
            "ma.connector(sqlite).column_types.<column>",
            "controller.run_mode",
            "ma.controller.enabled",
            "ma.controller.triggers.type",
            "ma.controller.triggers(interval).every",
        ] {
            assert!(
                paths.contains(&expected.to_owned()),
                "{expected} in {paths:#?}"
            );
        }
        // Tables are not keys of their own.
        for table in [
            "store",
            "ma",
            "ma.connector",
            "ma.object_types",
            "metaverse.<type>",
        ] {
            assert!(!paths.contains(&table.to_owned()), "{table}");
        }
        let mut unique = paths.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), paths.len(), "a key listed twice");
    }

    #[test]
    fn a_key_path_should_give_the_heading_it_is_documented_under() {
        let all = accepted(&registry(), &Shape::Table(vec![]), &Shape::Table(vec![]));
        let find = |p: &str| all.iter().find(|k| k.to_string() == p).unwrap().clone();
        let k = find("ma.connector(csv).path");
        assert_eq!(k.header(), "[ma.connector]");
        assert_eq!(k.heading(), "`[ma.connector]` with `type = \"csv\"`");
        assert_eq!(k.key, "path");
        assert_eq!(
            find("ma.object_types.dn").heading(),
            "`[[ma.object_types]]`"
        );
        assert_eq!(find("ma.name").heading(), "`[[ma]]`");
        assert_eq!(
            find("metaverse.<type>.precedence.<attribute>").heading(),
            "`[metaverse.<type>.precedence]`"
        );
        assert_eq!(
            find("ma.connector(sqlite).delta(column).column").heading(),
            "`[ma.connector.delta]` with `kind = \"column\"`"
        );
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// The keys of the table of `ROOT` at `path` (`[]` the root; a map's
    /// names are skipped with `*`).
    fn root_keys(path: &[&str]) -> Vec<String> {
        let mut node = &ROOT;
        for step in path {
            if let Node::Array(child) = node {
                node = child;
            }
            node = match (node, *step) {
                (Node::Map(_, child), "*") => child,
                (Node::Table(keys), name) => &keys.iter().find(|(k, _)| *k == name).unwrap().1,
                (other, _) => panic!("{path:?}: {other:?}"),
            };
        }
        if let Node::Array(child) = node {
            node = child;
        }
        match node {
            Node::Table(keys) => sorted(keys.iter().map(|(k, _)| (*k).to_owned()).collect()),
            other => panic!("{path:?} is not a table: {other:?}"),
        }
    }

    fn fields<T: DeserializeOwned>() -> Vec<String> {
        sorted(serde_fields::<T>().unwrap())
    }

    /// `ROOT` is written by hand: each of its tables must have exactly the
    /// fields of the model type serde reads it into, so a field added to a
    /// definition fails here until `ROOT` (and so the list of keys the docs
    /// must document) has it.
    #[test]
    fn every_table_of_the_schema_should_have_exactly_the_fields_of_its_definition() {
        let cases: Vec<(&[&str], Vec<String>)> = vec![
            (&[], fields::<SystemDef>()),
            (&["store"], fields::<StoreDef>()),
            (&["metaverse", "*"], fields::<MvTypeDef>()),
            (&["ma"], fields::<MaDef>()),
            (&["ma", "object_types"], fields::<ObjectTypeDef>()),
            (&["ma", "filters"], fields::<FilterDef>()),
            (&["ma", "join"], fields::<JoinRuleDef>()),
            (&["ma", "join", "on"], fields::<JoinCondition>()),
            (&["ma", "projection"], fields::<ProjectionDef>()),
            (&["ma", "import_flows"], fields::<ImportFlowDef>()),
            (&["ma", "export_flows"], fields::<ExportFlowDef>()),
            (&["ma", "provisioning"], fields::<ProvisioningDef>()),
            (&["ma", "staging_thresholds"], fields::<StagingThresholds>()),
        ];
        for (path, fields) in cases {
            assert_eq!(root_keys(path), fields, "table {path:?} of schema.rs ROOT");
        }
        // The deletion rule: its tag and every field of every variant.
        let mut deletion = vec!["rule".to_owned()];
        for v in serde_variants::<DeletionRule>("rule").unwrap() {
            // A unit variant (`never`) takes any key and lists none.
            deletion.extend(tagged_fields::<DeletionRule>("rule", &v).unwrap_or_default());
        }
        deletion.sort();
        deletion.dedup();
        assert_eq!(root_keys(&["metaverse", "*", "deletion"]), deletion);
    }
}
