//! The shape of the configuration file (which keys each table may hold), so
//! that every unknown key in the file is reported at once, each with the
//! closest valid key. Mirrors the serde form of `autosync_model::def`; a test
//! checks that it accepts everything those types serialize.

use crate::diagnostic::PathSegment;
use crate::document::Problem;
use crate::suggest;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// What a value in the file may be.
#[derive(Debug)]
pub enum Node {
    /// A plain value (or one whose content serde checks: `constant`, `precedence` values).
    Leaf,
    /// A table whose keys are not ours to check (connector settings, controller).
    Free,
    /// A table with these keys.
    Table(&'static [(&'static str, Node)]),
    /// An array whose items have this shape.
    Array(&'static Node),
    /// A table of user-chosen names whose values have this shape.
    Map(&'static Node),
}

const LEAF: Node = Node::Leaf;

pub const ROOT: Node = Node::Table(&[
    ("store", Node::Table(&[("kind", LEAF), ("path", LEAF)])),
    ("metaverse", Node::Map(&MV_TYPE)),
    ("ma", Node::Array(&MA)),
    ("controller", Node::Free),
]);

const MV_TYPE: Node = Node::Table(&[
    ("attributes", LEAF),
    ("precedence", Node::Map(&LEAF)),
    ("deletion", Node::Table(&[("rule", LEAF), ("mas", LEAF)])),
]);

const MA: Node = Node::Table(&[
    ("name", LEAF),
    ("connector", Node::Free),
    (
        "object_types",
        Node::Array(&Node::Table(&[
            ("name", LEAF),
            ("anchor", LEAF),
            ("dn", LEAF),
        ])),
    ),
    (
        "filters",
        Node::Array(&Node::Table(&[("object_type", LEAF), ("condition", LEAF)])),
    ),
    (
        "join",
        Node::Array(&Node::Table(&[
            ("object_type", LEAF),
            ("mv_type", LEAF),
            (
                "on",
                Node::Array(&Node::Table(&[("cs", LEAF), ("expr", LEAF), ("mv", LEAF)])),
            ),
        ])),
    ),
    (
        "projection",
        Node::Array(&Node::Table(&[
            ("object_type", LEAF),
            ("mv_type", LEAF),
            ("condition", LEAF),
        ])),
    ),
    (
        "import_flows",
        Node::Array(&Node::Table(&[
            ("object_type", LEAF),
            ("mv_type", LEAF),
            ("mv", LEAF),
            ("from", LEAF),
            ("constant", LEAF),
            ("expr", LEAF),
            ("script", LEAF),
        ])),
    ),
    (
        "export_flows",
        Node::Array(&Node::Table(&[
            ("object_type", LEAF),
            ("mv_type", LEAF),
            ("cs", LEAF),
            ("from", LEAF),
            ("constant", LEAF),
            ("expr", LEAF),
            ("script", LEAF),
            ("initial_only", LEAF),
        ])),
    ),
    (
        "provisioning",
        Node::Array(&Node::Table(&[
            ("mv_type", LEAF),
            ("object_type", LEAF),
            ("condition", LEAF),
            ("anchor", LEAF),
            ("dn", LEAF),
        ])),
    ),
    ("deprovisioning", LEAF),
    ("run_profiles", Node::Map(&LEAF)),
    ("export_deletion_threshold", LEAF),
    ("controller", Node::Free),
]);

/// Every key of the document that its table does not allow.
pub fn unknown_keys(root: &Spanned<DeTable<'_>>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut path = Vec::new();
    check_table(root.get_ref(), &ROOT, &mut path, &mut problems);
    problems
}

fn check_table(
    table: &DeTable<'_>,
    node: &Node,
    path: &mut Vec<PathSegment>,
    problems: &mut Vec<Problem>,
) {
    match node {
        Node::Table(keys) => {
            for (key, value) in table.iter() {
                let name: &str = key.get_ref();
                path.push(PathSegment::key(name));
                match keys.iter().find(|(k, _)| *k == name) {
                    Some((_, child)) => check_value(value, child, path, problems),
                    None => {
                        let valid: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
                        problems.push(
                            Problem::error(
                                path.clone(),
                                key.span(),
                                format!("unknown key `{name}`"),
                            )
                            .help(suggest::hint(name, &valid)),
                        );
                    }
                }
                path.pop();
            }
        }
        Node::Map(child) => {
            for (key, value) in table.iter() {
                path.push(PathSegment::key(key.get_ref().as_ref()));
                check_value(value, child, path, problems);
                path.pop();
            }
        }
        Node::Leaf | Node::Free | Node::Array(_) => {}
    }
}

fn check_value(
    value: &Spanned<DeValue<'_>>,
    node: &Node,
    path: &mut Vec<PathSegment>,
    problems: &mut Vec<Problem>,
) {
    match (value.get_ref(), node) {
        (DeValue::Table(t), Node::Table(_) | Node::Map(_)) => check_table(t, node, path, problems),
        (DeValue::Array(items), Node::Array(child)) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathSegment::Index(i));
                check_value(item, child, path, problems);
                path.pop();
            }
        }
        // Wrong kinds of value are reported by deserialization.
        _ => {}
    }
}
