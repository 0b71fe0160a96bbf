//! The names each MA's rules read from its connector space, checked against
//! the schema its connector reads from the connected system before any run
//! (a CSV file's header, a SQLite table's columns: see
//! `ConnectorFactory::schema`). Unlike [`crate::load`], this reads the
//! systems (never changing them), so it is a step of its own: `autosync
//! check` runs it. A name a known schema lacks is an error (the flow would
//! blank its attribute everywhere, the filter or join would never match;
//! an export flow into a table's missing column would fail every export); a
//! schema that cannot be read now (a file that does not exist yet) is a
//! warning; a schema the system does not declare (JSON lines) is left to
//! the run, whose full import warns about names no object had.

use crate::Loaded;
use crate::cs_reads::{CsRead, cs_reads};
use crate::diagnostic::{Diagnostic, PathSegment, parse_key_path};
use crate::document::{self, lookup, name_span, render_key, to_span};
use crate::validate::key_path;
use autosync_connector::{BuildContext, Registry, SchemaLookup, SourceSchema};
use autosync_model::MaDef;
use autosync_model::suggest;
use std::ops::Range;

/// What the connectors said and what did not match.
#[derive(Clone, Debug)]
pub struct SchemaCheck {
    /// Per MA, in file order: its name and its connector's answer.
    pub schemas: Vec<(String, SchemaLookup)>,
    /// Errors (a name a known schema lacks) and warnings (a schema that
    /// cannot be read now, a name a script reads), located in the file.
    pub diagnostics: Vec<Diagnostic>,
}

impl SchemaCheck {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Asks each MA's connector for its schema and checks every name the MA's
/// rules read from the connector space against it.
pub fn check_schemas(loaded: &Loaded, registry: &Registry) -> SchemaCheck {
    let mut report = Report {
        loaded,
        root: document::parse(&loaded.source).ok(),
        diagnostics: Vec::new(),
    };
    let mut schemas = Vec::new();
    for (i, ma) in loaded.system.mas.iter().enumerate() {
        let Some(factory) = registry.get(&ma.connector.kind) else {
            continue;
        };
        let ctx = BuildContext {
            ma: ma.name.clone(),
            base_dir: loaded.system.base_dir.clone(),
            object_types: ma.object_types.clone(),
        };
        let answer = factory.schema(&ma.connector.settings, &ctx);
        match &answer {
            SchemaLookup::Known(schema) => check_ma(&mut report, ma, i, schema),
            SchemaLookup::Unavailable(why) => report.push(
                key_path!["ma", i, "connector"],
                None,
                Diagnostic::warning("", format!("the names MA `{}` reads from its connector space cannot be checked: {why}", ma.name)),
                Some("they are checked once it can be read; meanwhile a full import warns about an import flow whose attribute no object had".to_owned()),
            ),
            SchemaLookup::Undeclared => {}
        }
        schemas.push((ma.name.clone(), answer));
    }
    SchemaCheck {
        schemas,
        diagnostics: report.diagnostics,
    }
}

struct Report<'a> {
    loaded: &'a Loaded,
    root: Option<toml::Spanned<toml::de::DeTable<'a>>>,
    diagnostics: Vec<Diagnostic>,
}

impl Report<'_> {
    /// Adds `d` at the value at `at` (at the name inside `source`, when the
    /// value is an expression or script).
    fn push(
        &mut self,
        at: Vec<PathSegment>,
        name: Option<(&str, &str)>,
        d: Diagnostic,
        help: Option<String>,
    ) {
        let (key, span) = match &self.root {
            Some(root) => {
                let span = self.span(root, &at, name);
                (render_key(root, &at), span)
            }
            None => (String::new(), None),
        };
        let d = Diagnostic { key, help, ..d }
            .with_span(span.map(to_span))
            .locate(&self.loaded.path, &self.loaded.source);
        self.diagnostics.push(d);
    }

    fn span(
        &self,
        root: &toml::Spanned<toml::de::DeTable<'_>>,
        at: &[PathSegment],
        name: Option<(&str, &str)>,
    ) -> Option<Range<usize>> {
        let value = lookup(root, at)?.value;
        Some(match name {
            Some((source, name)) => name_span(&self.loaded.source, &value, source, name),
            None => value,
        })
    }
}

fn check_ma(report: &mut Report<'_>, ma: &MaDef, i: usize, schema: &SourceSchema) {
    let source = &schema.source;
    for problem in &schema.problems {
        // At the setting (`filter`), or an item of it (`attributes[3]`),
        // when the file has it.
        let mut at = key_path!["ma", i, "connector"];
        let setting = parse_key_path(&problem.key);
        if let Some(PathSegment::Key(key)) = setting.first()
            && ma.connector.settings.contains_key(key)
        {
            let whole = at.len() + 1;
            at.extend(setting);
            if report
                .root
                .as_ref()
                .is_some_and(|r| lookup(r, &at).is_none())
            {
                at.truncate(whole);
            }
        }
        let message = problem.message.clone();
        report.push(
            at,
            None,
            Diagnostic::error("", message),
            problem.help.clone(),
        );
    }
    for (k, t) in ma.object_types.iter().enumerate() {
        let Some(ts) = schema.object_types.get(&t.name) else {
            continue;
        };
        if schema.has(ma, &t.name, &ts.anchor) {
            continue;
        }
        // Read from the object type's `anchor`, or from a connector setting
        // naming another attribute (found by its value).
        let at = if ts.anchor == t.anchor {
            key_path!["ma", i, "object_types", k, "anchor"]
        } else {
            let setting = ma
                .connector
                .settings
                .iter()
                .find(|(_, v)| v.as_str() == Some(ts.anchor.as_str()))
                .map(|(key, _)| key.clone());
            let mut at = key_path!["ma", i, "connector"];
            at.extend(setting.map(PathSegment::Key));
            at
        };
        let message = format!(
            "anchors of object type `{}` are read from `{}`, which {source} does not have",
            t.name, ts.anchor
        );
        let help = match aliased(schema, &ts.anchor) {
            Some((why, help)) => format!("`{}` {why}; {help}", ts.anchor),
            None => fix(&ts.anchor, &ts.attributes, source),
        };
        report.push(at, None, Diagnostic::error("", message), Some(help));
    }
    for read in cs_reads(ma, i) {
        if let Some(lack) = lacking(schema, ma, read.object_type, &read.name) {
            report_read(report, &read, schema, &lack);
        }
    }
    // A system whose columns are fixed (a table) refuses an export of an
    // attribute it lacks, on every object.
    if !schema.export_adds_attributes {
        for (r, f) in ma.export_flows.iter().enumerate() {
            if let Some(lack) = lacking(schema, ma, f.object_type.as_deref(), &f.cs) {
                let at = key_path!["ma", i, "export_flows", r, "cs"];
                let (message, help) = match restricted(schema, &lack, &f.cs) {
                    Some((why, help)) => (
                        format!("export flow to `{}` writes `{}`, which {why}", f.cs, f.cs),
                        help,
                    ),
                    None => match aliased(schema, &f.cs)
                        .or_else(|| written(schema, &f.cs, &lack.attributes))
                    {
                        Some((why, help)) => (
                            format!("export flow to `{}` writes `{}`, which {why}", f.cs, f.cs),
                            help,
                        ),
                        None => (
                            format!(
                                "export flow to `{}` writes an attribute {source} does not have",
                                f.cs
                            ),
                            fix(&f.cs, &lack.attributes, source),
                        ),
                    },
                };
                report.push(at, None, Diagnostic::error("", message), Some(help));
            }
        }
    }
}

/// What a rule lacks: the object types it applies to that the schema
/// knows, and the attributes they have (for the suggestion).
struct Lack<'a> {
    types: Vec<&'a str>,
    attributes: Vec<String>,
}

/// When `name` is a name the system defines but the object types of
/// `lack` may not have: the end of the message after ``, which `` (why
/// they may not) and the help (how one could).
fn restricted(schema: &SourceSchema, lack: &Lack<'_>, name: &str) -> Option<(String, String)> {
    let r = &schema.restrictions;
    let why = r.why_not(&lack.types, name)?;
    let source = &schema.source;
    let message = match why.as_slice() {
        [(t, what)] => {
            format!("{source} defines, but object type `{t}` cannot have: {what} do not allow it")
        }
        several => {
            let each: Vec<String> = several
                .iter()
                .map(|(t, what)| format!("`{t}`: {what} do not allow it"))
                .collect();
            format!(
                "{source} defines, but none of the object types it applies to can have ({})",
                each.join("; ")
            )
        }
    };
    let help = match r.names.get(name).cloned().flatten() {
        Some(how) => how,
        None => format!(
            "nothing in {source} allows it; {}",
            fix(name, &lack.attributes, source)
        ),
    };
    Some((message, help))
}

/// When no object type a rule of `object_type` (`None`: every type)
/// applies to has `name`, the attributes they have (for the suggestion);
/// `None` when one has it or the schema knows none of them.
fn lacking<'a>(
    schema: &SourceSchema,
    ma: &'a MaDef,
    object_type: Option<&'a str>,
    name: &str,
) -> Option<Lack<'a>> {
    let types: Vec<&str> = match object_type {
        Some(t) => vec![t],
        None => ma.object_types.iter().map(|t| t.name.as_str()).collect(),
    };
    let known: Vec<&str> = types
        .into_iter()
        .filter(|t| schema.object_types.contains_key(*t))
        .collect();
    if known.is_empty() || known.iter().any(|t| schema.has(ma, t, name)) {
        return None;
    }
    let attributes = known
        .iter()
        .filter_map(|t| schema.object_types.get(*t))
        .flat_map(|ts| ts.attributes.iter().cloned())
        .collect();
    Some(Lack {
        types: known,
        attributes,
    })
}

fn report_read(report: &mut Report<'_>, read: &CsRead<'_>, schema: &SourceSchema, lack: &Lack<'_>) {
    let CsRead { rule, name, .. } = read;
    let source = &schema.source;
    let (why, help) = match restricted(schema, lack, name) {
        Some((why, help)) => (why, help),
        None => aliased(schema, name)
            .or_else(|| written(schema, name, &lack.attributes))
            .unwrap_or_else(|| {
                (
                    format!("{source} does not have"),
                    fix(name, &lack.attributes, source),
                )
            }),
    };
    let d = if read.by_script {
        Diagnostic::warning(
            "",
            format!("{rule}: the script reads `{name}`, which {why}: it will always be empty"),
        )
    } else {
        Diagnostic::error("", format!("{rule} reads `{name}`, which {why}"))
    };
    let at_name = read.source.map(|src| (src, name.as_str()));
    report.push(read.at.clone(), at_name, d, Some(help));
}

/// When `name` is another name of one the source defines (an LDAP
/// attribute type's alias or OID, `rfc822Mailbox` for `mail`): the end of
/// the message after ``, which `` and the help. The system answers with
/// its own name, and rules read names as the connector space holds them.
fn aliased(schema: &SourceSchema, name: &str) -> Option<(String, String)> {
    let source = &schema.source;
    let to = schema.alias_of(name)?;
    Some((
        format!(
            "is another name of `{to}` in {source}: the connector space holds its values under `{to}`"
        ),
        format!(
            "write `{to}`, the schema's name: the system answers with it, and rules read and compare names as the connector space holds them"
        ),
    ))
}

/// When the source has `name` in another case (`UIDNumber`, `uidNumber`;
/// also a name only some object types may have):
/// the end of the message after ``, which `` and the help. Names are
/// read as the source spells them.
fn written(schema: &SourceSchema, name: &str, attributes: &[String]) -> Option<(String, String)> {
    let source = &schema.source;
    let spelt = attributes
        .iter()
        .chain(schema.restrictions.names.keys())
        .find(|a| a.as_str() != name && a.eq_ignore_ascii_case(name))?;
    Some((
        format!("is written `{spelt}` in {source}"),
        format!("write `{spelt}`: names are read as {source} spells them"),
    ))
}

/// "did you mean `title`?" or the names the source has.
fn fix(name: &str, attributes: &[String], source: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for a in attributes {
        if !names.contains(&a.as_str()) {
            names.push(a);
        }
    }
    match suggest::did_you_mean(name, names.iter().copied()) {
        Some(did_you_mean) => did_you_mean,
        None if names.is_empty() => format!("{source} has no attributes"),
        None => format!("{source} has: {}", suggest::list(&names)),
    }
}
