//! The shape of the configuration file (which keys each table may hold), so
//! that every unknown key in the file is reported at once, each with the
//! closest valid key. Mirrors the serde form of `autosync_model::def`; a test
//! checks that it accepts everything those types serialize.

use crate::diagnostic::PathSegment;
use crate::document::Problem;
use autosync_model::suggest;
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
    /// A table of user-chosen names whose values have this shape; the
    /// placeholder the reference writes for a name (`type`: `<type>`).
    Map(&'static str, &'static Node),
}

const LEAF: Node = Node::Leaf;

pub const ROOT: Node = Node::Table(&[
    ("store", Node::Table(&[("kind", LEAF), ("path", LEAF)])),
    ("metaverse", Node::Map("type", &MV_TYPE)),
    ("ma", Node::Array(&MA)),
    ("controller", Node::Free),
]);

const MV_TYPE: Node = Node::Table(&[
    ("attributes", LEAF),
    ("precedence", Node::Map("attribute", &LEAF)),
    (
        "deletion",
        Node::Table(&[("rule", LEAF), ("mas", LEAF), ("script", LEAF)]),
    ),
    ("ordered", LEAF),
    ("references", Node::Map("attribute", &LEAF)),
]);

/// A reference of an object type: `"anchor"` or `"dn"` (a string, which
/// the tree leaves to deserialization), or this table.
const CS_REFERENCE: Node = Node::Table(&[("by", LEAF), ("object_type", LEAF), ("ma", LEAF)]);

const MA: Node = Node::Table(&[
    ("name", LEAF),
    ("connector", Node::Free),
    (
        "object_types",
        Node::Array(&Node::Table(&[
            ("name", LEAF),
            ("anchor", LEAF),
            ("dn", LEAF),
            ("references", Node::Map("attribute", &CS_REFERENCE)),
        ])),
    ),
    (
        "filters",
        Node::Array(&Node::Table(&[
            ("object_type", LEAF),
            ("condition", LEAF),
            ("script", LEAF),
        ])),
    ),
    (
        "join",
        Node::Array(&Node::Table(&[
            ("object_type", LEAF),
            ("mv_type", LEAF),
            (
                "on",
                Node::Array(&Node::Table(&[
                    ("cs", LEAF),
                    ("expr", LEAF),
                    ("script", LEAF),
                    ("mv", LEAF),
                    ("mv_expr", LEAF),
                ])),
            ),
            ("case_sensitive", LEAF),
            ("resolve", LEAF),
        ])),
    ),
    (
        "projection",
        Node::Array(&Node::Table(&[
            ("object_type", LEAF),
            ("mv_type", LEAF),
            ("condition", LEAF),
            ("script", LEAF),
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
            ("when_absent", LEAF),
            ("adopt", LEAF),
            ("script", LEAF),
        ])),
    ),
    ("deprovisioning", LEAF),
    ("deprovisioning_script", LEAF),
    ("deprovision_joined", LEAF),
    ("run_profiles", Node::Map("profile", &LEAF)),
    ("export_deletion_threshold", LEAF),
    ("reject_deletions", LEAF),
    ("staging_thresholds", STAGING),
    ("max_value_size", LEAF),
    ("write_only", Node::Map("attribute", &WRITE_ONLY)),
    ("sealed", LEAF),
    ("controller", Node::Free),
]);

const WRITE_ONLY: Node = Node::Table(&[
    (
        "generate",
        Node::Table(&[
            ("length", LEAF),
            ("lower", LEAF),
            ("upper", LEAF),
            ("digits", LEAF),
            ("symbols", LEAF),
        ]),
    ),
    ("object_types", LEAF),
    ("on_change", LEAF),
]);

const STAGING: Node = Node::Table(&[
    ("adds", LEAF),
    ("updates", LEAF),
    ("renames", LEAF),
    ("deletes", LEAF),
    ("delete_adds", LEAF),
    ("changes", LEAF),
    ("values_removed", LEAF),
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
        Node::Map(_, child) => {
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
        (DeValue::Table(t), Node::Table(_) | Node::Map(..)) => check_table(t, node, path, problems),
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

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_model::*;
    use std::collections::BTreeMap;

    /// A definition with every optional part present, so that its serde
    /// form shows every key the file may hold.
    fn everything() -> SystemDef {
        let some = || Some("x".to_owned());
        let mut precedence = BTreeMap::new();
        precedence.insert("a".to_owned(), PrecedenceDef::Ranked(vec!["m".into()]));
        let mut metaverse = BTreeMap::new();
        metaverse.insert(
            "person".to_owned(),
            MvTypeDef {
                attributes: vec!["a".into()],
                precedence,
                deletion: DeletionRule::LastAuthoritativeConnector {
                    mas: vec!["m".into()],
                },
                ordered: vec!["a".into()],
                references: [("m".to_owned(), "person".to_owned())].into(),
            },
        );
        metaverse.insert(
            "group".to_owned(),
            MvTypeDef {
                attributes: vec!["a".into()],
                precedence: BTreeMap::new(),
                deletion: DeletionRule::Script {
                    script: "true".into(),
                },
                ordered: vec!["a".into()],
                references: BTreeMap::new(),
            },
        );
        let mut run_profiles = BTreeMap::new();
        run_profiles.insert("p".to_owned(), vec![StepType::FullImport]);
        let ma = MaDef {
            name: "m".into(),
            connector: ConnectorDef {
                kind: "csv".into(),
                settings: serde_json::Map::new(),
            },
            object_types: vec![ObjectTypeDef {
                name: "t".into(),
                anchor: "id".into(),
                dn: some(),
                references: [(
                    "r".to_owned(),
                    CsReferenceDef::Full(CsReferenceSpec {
                        by: RefBy::Dn,
                        object_type: some(),
                        ma: some(),
                    }),
                )]
                .into(),
            }],
            filters: vec![FilterDef {
                object_type: some(),
                condition: some(),
                script: some(),
            }],
            join: vec![JoinRuleDef {
                object_type: some(),
                mv_type: some(),
                on: vec![JoinCondition {
                    cs: some(),
                    expr: some(),
                    script: some(),
                    mv: some(),
                    mv_expr: some(),
                }],
                case_sensitive: true,
                resolve: some(),
            }],
            projection: vec![ProjectionDef {
                object_type: some(),
                mv_type: some(),
                condition: some(),
                script: some(),
            }],
            import_flows: vec![ImportFlowDef {
                object_type: some(),
                mv_type: some(),
                mv: "a".into(),
                from: some(),
                constant: Some(Value::from("c")),
                expr: some(),
                script: some(),
            }],
            export_flows: vec![ExportFlowDef {
                object_type: some(),
                mv_type: some(),
                cs: "a".into(),
                from: some(),
                constant: Some(Value::from("c")),
                expr: some(),
                script: some(),
                initial_only: true,
            }],
            provisioning: vec![ProvisioningDef {
                mv_type: some(),
                object_type: some(),
                condition: some(),
                anchor: some(),
                dn: some(),
                when_absent: WhenAbsent::Evaluate,
                adopt: true,
                script: some(),
            }],
            deprovisioning: DeprovisionAction::Delete,
            deprovisioning_script: some(),
            deprovision_joined: true,
            run_profiles,
            export_deletion_threshold: DeletionThreshold {
                count: Limit::Count(1),
                share: Limit::Percent(2.0),
            },
            reject_deletions: RejectDeletions::ExplicitDisconnector,
            staging_thresholds: StagingThresholds {
                adds: Limit::Count(1),
                updates: Limit::Percent(3.0),
                renames: Limit::Count(4),
                deletes: Limit::Off,
                delete_adds: Limit::Count(5),
                changes: Limit::Count(6),
                values_removed: Limit::Count(7),
            },
            max_value_size: 2,
            write_only: [(
                "userPassword".to_owned(),
                WriteOnlyDef {
                    generate: Some(PasswordPolicy {
                        length: 12,
                        lower: false,
                        upper: true,
                        digits: false,
                        symbols: true,
                    }),
                    object_types: vec!["t".into()],
                    on_change: true,
                },
            )]
            .into(),
            sealed: vec!["password".into()],
            controller: Some(serde_json::json!({ "any": { "thing": 1 } })),
        };
        SystemDef {
            store: StoreDef::default(),
            metaverse,
            mas: vec![ma],
            controller: Some(serde_json::json!({ "mode": "supported" })),
            base_dir: Default::default(),
        }
    }

    #[test]
    fn the_schema_should_accept_every_key_the_definitions_serialize() {
        let text = toml::to_string(&everything()).unwrap();
        let root = crate::document::parse(&text).unwrap();
        let unknown: Vec<String> = unknown_keys(&root).into_iter().map(|p| p.message).collect();
        assert!(unknown.is_empty(), "{unknown:?}\n{text}");
        // And the text reads back into the same definitions.
        let back: SystemDef = toml::from_str(&text).unwrap();
        assert_eq!(back, everything());
    }

    #[test]
    fn the_schema_should_reject_a_key_the_definitions_do_not_have() {
        let root = crate::document::parse("[[ma]]\nname = \"m\"\nprojections = []\n").unwrap();
        let problems = unknown_keys(&root);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].help.as_deref(),
            Some("did you mean `projection`?")
        );
    }
}
