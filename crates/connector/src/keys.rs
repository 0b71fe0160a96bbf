//! The shape of a configuration table: which keys it accepts and which of
//! them hold tables, so that the list of every key the configuration file
//! accepts (`autosync_config::keys`) is read from the code, never copied.
//!
//! A connector type declares the shape of its `connector` table with
//! [`ConnectorFactory::settings_shape`](crate::ConnectorFactory::settings_shape);
//! the other crates describe theirs with the same type. Where a table is a
//! serde struct with `deny_unknown_fields`, [`Shape::of`] and
//! [`Shape::tagged_of`] read its keys from serde itself, so a field added to
//! the struct is in the shape without anyone writing it twice.

use serde::de::DeserializeOwned;

/// What a value of a configuration table may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A plain value: a string, a number, a list of values, or an inline
    /// table whose content its reader checks (not described further).
    Leaf,
    /// A table with these keys, in the order the code declares them.
    Table(Vec<(String, Shape)>),
    /// An array of tables of this shape (`[[ma]]`).
    Array(Box<Shape>),
    /// A table of names the user chooses (`[metaverse.<type>]`): the
    /// placeholder (`type`, written `<type>`) and the shape of each value.
    Map(String, Box<Shape>),
    /// A table whose keys depend on the value of its `tag` key (`type` of
    /// a trigger): per value of the tag, the keys (besides the tag).
    Tagged {
        tag: String,
        variants: Vec<(String, Vec<(String, Shape)>)>,
    },
}

impl Shape {
    /// A table of plain values.
    pub fn leaves<S: AsRef<str>>(keys: &[S]) -> Shape {
        Shape::Table(
            keys.iter()
                .map(|k| (k.as_ref().to_owned(), Shape::Leaf))
                .collect(),
        )
    }

    /// The table of plain values a `deny_unknown_fields` serde struct reads
    /// (its field names, as serde names them); an empty table when serde
    /// does not list them (the type accepts any key).
    pub fn of<T: DeserializeOwned>() -> Shape {
        Shape::leaves(&serde_fields::<T>().unwrap_or_default())
    }

    /// The table an internally tagged serde enum (`#[serde(tag = "...",
    /// deny_unknown_fields)]`) reads: per variant, its fields as plain
    /// values. Empty when serde does not list the variants.
    pub fn tagged_of<T: DeserializeOwned>(tag: &str) -> Shape {
        let variants = serde_variants::<T>(tag)
            .unwrap_or_default()
            .into_iter()
            .map(|v| {
                let fields = tagged_fields::<T>(tag, &v).unwrap_or_default();
                let keys = fields.into_iter().map(|f| (f, Shape::Leaf)).collect();
                (v, keys)
            })
            .collect();
        Shape::Tagged {
            tag: tag.to_owned(),
            variants,
        }
    }

    /// This table with the value of `key` replaced by `shape` (a field
    /// that holds a table, or a map); unchanged when it has no such key.
    pub fn with(mut self, key: &str, shape: Shape) -> Shape {
        match &mut self {
            Shape::Table(keys) => {
                for (k, v) in keys.iter_mut() {
                    if k == key {
                        *v = shape.clone();
                    }
                }
            }
            Shape::Tagged { variants, .. } => {
                for (_, keys) in variants.iter_mut() {
                    for (k, v) in keys.iter_mut() {
                        if k == key {
                            *v = shape.clone();
                        }
                    }
                }
            }
            Shape::Leaf | Shape::Array(_) | Shape::Map(..) => {}
        }
        self
    }

    /// An array of tables of this shape.
    pub fn array(self) -> Shape {
        Shape::Array(Box::new(self))
    }

    /// A table of user-chosen names (`<placeholder>`) whose values have
    /// this shape.
    pub fn map(self, placeholder: &str) -> Shape {
        Shape::Map(placeholder.to_owned(), Box::new(self))
    }

    /// The keys of a table (of every variant, for a tagged table).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Shape::Table(keys) => keys.iter().map(|(k, _)| k.as_str()).collect(),
            Shape::Tagged { tag, variants } => {
                let mut out = vec![tag.as_str()];
                for (_, keys) in variants {
                    for (k, _) in keys {
                        if !out.contains(&k.as_str()) {
                            out.push(k);
                        }
                    }
                }
                out
            }
            Shape::Leaf | Shape::Array(_) | Shape::Map(..) => Vec::new(),
        }
    }
}

/// A key no configuration table has (serde names it in its error).
const BOGUS: &str = "\u{1}not-a-key";

/// The field names a `deny_unknown_fields` serde struct accepts, read from
/// serde's "unknown field `x`, expected one of `a`, `b`" message; `None`
/// when the type accepts the bogus key or fails otherwise.
pub fn serde_fields<T: DeserializeOwned>() -> Option<Vec<String>> {
    let value = serde_json::json!({ BOGUS: 0 });
    expected_names(
        serde_json::from_value::<T>(value).err()?.to_string(),
        "field",
    )
}

/// The values of the tag of an internally tagged serde enum.
pub fn serde_variants<T: DeserializeOwned>(tag: &str) -> Option<Vec<String>> {
    let value = serde_json::json!({ tag: BOGUS });
    expected_names(
        serde_json::from_value::<T>(value).err()?.to_string(),
        "variant",
    )
}

/// The fields of one variant of an internally tagged serde enum (`None`
/// for a unit variant: serde lets it take any key).
pub fn tagged_fields<T: DeserializeOwned>(tag: &str, variant: &str) -> Option<Vec<String>> {
    let value = serde_json::json!({ tag: variant, BOGUS: 0 });
    expected_names(
        serde_json::from_value::<T>(value).err()?.to_string(),
        "field",
    )
}

/// The names in "unknown {what} `x`, expected one of `a`, `b`" (also
/// "expected `a`", "expected `a` or `b`", "there are no fields").
fn expected_names(message: String, what: &str) -> Option<Vec<String>> {
    let rest = message.strip_prefix(&format!("unknown {what} `{BOGUS}`, "))?;
    if rest.starts_with("there are no") {
        return Some(Vec::new());
    }
    let rest = rest.strip_prefix("expected ")?;
    // Drop serde_json's " at line 1 column 2" tail.
    let rest = rest.split(" at line ").next().unwrap_or(rest);
    Some(
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Three {
        a: u8,
        #[serde(default)]
        b_c: Option<String>,
        #[serde(rename = "type")]
        kind: String,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct One {
        only: u8,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Two {
        x: u8,
        y: u8,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Open {
        x: u8,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
    enum Tagged {
        First { p: u8, q: u8 },
        SecondOne,
    }

    #[test]
    fn the_fields_of_a_struct_should_be_read_from_serde() {
        assert_eq!(
            serde_fields::<Three>().unwrap(),
            ["a", "b_c", "type"].map(String::from)
        );
        assert_eq!(serde_fields::<One>().unwrap(), ["only"].map(String::from));
        assert_eq!(serde_fields::<Two>().unwrap(), ["x", "y"].map(String::from));
    }

    #[test]
    fn a_struct_that_accepts_any_key_should_have_no_field_list() {
        assert_eq!(serde_fields::<Open>(), None);
        assert_eq!(Shape::of::<Open>(), Shape::Table(Vec::new()));
    }

    #[test]
    fn the_variants_of_a_tagged_enum_should_be_read_with_their_fields() {
        assert_eq!(
            Shape::tagged_of::<Tagged>("kind"),
            Shape::Tagged {
                tag: "kind".into(),
                variants: vec![
                    (
                        "first".into(),
                        vec![("p".into(), Shape::Leaf), ("q".into(), Shape::Leaf)]
                    ),
                    ("second-one".into(), vec![]),
                ],
            }
        );
    }

    #[test]
    fn with_should_replace_the_shape_of_a_key() {
        let shape = Shape::leaves(&["a", "b"]).with("b", Shape::Leaf.map("name"));
        assert_eq!(
            shape,
            Shape::Table(vec![
                ("a".into(), Shape::Leaf),
                ("b".into(), Shape::Map("name".into(), Box::new(Shape::Leaf))),
            ])
        );
        assert_eq!(shape.keys(), ["a", "b"]);
    }
}
