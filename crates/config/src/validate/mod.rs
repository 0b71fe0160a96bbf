//! Semantic validation of a decoded configuration: names, references between
//! MAs, metaverse types and attributes, reference attributes and the flows
//! that carry them, connector settings, expressions,
//! precedence and flow loops. Every problem is located at the key or value
//! it is about, and all of them are reported together.

mod exprs;
mod metaverse;
mod mv_reads;
mod ref_targets;
mod references;
mod rules;
mod write_only;

use crate::decode::Decoded;
use crate::diagnostic::PathSegment;
use crate::document::{Problem, lookup};
use autosync_connector::{BuildContext, Registry};
use autosync_model::suggest;
use autosync_model::{MaDef, SystemDef};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::DeTable;

/// Store kinds this version knows.
pub const STORE_KINDS: &[&str] = &["sqlite"];

/// Builds a key path from keys (`&str`) and indexes (`usize`).
macro_rules! key_path {
    ($($segment:expr),* $(,)?) => {
        vec![$($crate::diagnostic::PathSegment::from($segment)),*]
    };
}
pub(crate) use key_path;

/// What every check needs: the document (for spans), the file's text (for
/// carets inside strings) and the problems found so far.
pub struct Checker<'a, 'i> {
    pub root: &'a Spanned<DeTable<'i>>,
    pub text: &'a str,
    pub decoded: &'a Decoded,
    pub problems: Vec<Problem>,
}

impl Checker<'_, '_> {
    pub fn system(&self) -> &SystemDef {
        &self.decoded.system
    }

    /// The span of the value at `path`, or of the closest enclosing value
    /// that exists (a missing key is reported at its table).
    pub fn span(&self, path: &[PathSegment]) -> Range<usize> {
        for len in (0..=path.len()).rev() {
            if let Some(found) = lookup(self.root, &path[..len]) {
                return found.value;
            }
        }
        0..0
    }

    /// The span of the key at `path` (an unknown or duplicate key), else of
    /// its value.
    pub fn key_span(&self, path: &[PathSegment]) -> Range<usize> {
        match lookup(self.root, path).and_then(|f| f.key) {
            Some(k) => k,
            None => self.span(path),
        }
    }

    pub fn error(
        &mut self,
        path: Vec<PathSegment>,
        message: impl Into<String>,
        help: impl Into<Option<String>>,
    ) {
        let span = self.span(&path);
        self.push(path, span, message.into(), help.into(), false);
    }

    pub fn warning(
        &mut self,
        path: Vec<PathSegment>,
        message: impl Into<String>,
        help: impl Into<Option<String>>,
    ) {
        let span = self.span(&path);
        self.push(path, span, message.into(), help.into(), true);
    }

    pub fn push(
        &mut self,
        path: Vec<PathSegment>,
        span: Range<usize>,
        message: String,
        help: Option<String>,
        warning: bool,
    ) {
        self.problems.push(Problem {
            path,
            span,
            message,
            help,
            warning,
        });
    }

    /// Whether an MA of this name exists (or exists but could not be read).
    pub fn ma_exists(&self, name: &str) -> bool {
        self.system().ma(name).is_some() || self.decoded.failed_mas.contains(name)
    }
}

/// Every semantic problem of the decoded configuration.
pub fn validate(
    decoded: &Decoded,
    root: &Spanned<DeTable<'_>>,
    text: &str,
    registry: &Registry,
    base_dir: &Path,
) -> Vec<Problem> {
    let mut checker = Checker {
        root,
        text,
        decoded,
        problems: Vec::new(),
    };
    check_store(&mut checker);
    check_ma_names(&mut checker);
    for (k, ma) in decoded.system.mas.iter().enumerate() {
        let i = decoded.ma_index.get(k).copied().unwrap_or(k);
        check_connector(&mut checker, ma, i, registry, base_dir);
        check_ma_basics(&mut checker, ma, i);
        rules::check_rules(&mut checker, ma, i);
        rules::check_deprovisioning(&mut checker, ma, i);
        rules::check_dn_flows(&mut checker, ma, i);
        rules::check_anchor_flows(&mut checker, ma, i);
        references::check_object_type_references(&mut checker, ma, i);
        references::check_reference_flows(&mut checker, ma, i);
        write_only::check_write_only(&mut checker, ma, i);
    }
    metaverse::check_metaverse(&mut checker);
    references::check_metaverse_references(&mut checker);
    checker.problems
}

fn check_store(c: &mut Checker<'_, '_>) {
    let kind = c.system().store.kind.clone();
    if !STORE_KINDS.contains(&kind.as_str()) {
        c.error(
            key_path!["store", "kind"],
            format!("unknown store kind `{kind}`"),
            suggest::hint(&kind, STORE_KINDS),
        );
    }
    if c.system().store.path.as_os_str().is_empty() {
        c.error(
            key_path!["store", "path"],
            "the store path is empty",
            "name the database file, e.g. `path = \"state/autosync.db\"`".to_owned(),
        );
    }
}

fn valid_ma_name(name: &str) -> bool {
    name.chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
}

fn check_ma_names(c: &mut Checker<'_, '_>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mas: Vec<(usize, String)> = c
        .decoded
        .system
        .mas
        .iter()
        .enumerate()
        .map(|(k, m)| {
            (
                c.decoded.ma_index.get(k).copied().unwrap_or(k),
                m.name.clone(),
            )
        })
        .collect();
    for (i, name) in mas {
        let path = key_path!["ma", i, "name"];
        if name.is_empty() {
            c.error(
                path,
                "the MA name is empty",
                "name it, e.g. `name = \"hr\"`".to_owned(),
            );
            continue;
        }
        if !valid_ma_name(&name) {
            c.error(
                path.clone(),
                format!("the MA name `{name}` has characters other than letters, digits, `_`, `.` and `-`"),
                "MA names appear in commands and URLs: use e.g. `hr-directory`".to_owned(),
            );
        }
        if let Some(first) = seen.get(&name) {
            let line = crate::diagnostic::Location::of(
                c.text,
                c.span(&[
                    PathSegment::key("ma"),
                    PathSegment::Index(*first),
                    PathSegment::key("name"),
                ])
                .start,
            )
            .line;
            c.error(
                path,
                format!("MA name `{name}` is used twice"),
                format!("the first MA with this name is at line {line}; MA names must be unique"),
            );
        } else {
            seen.insert(name, i);
        }
    }
}

fn check_connector(
    c: &mut Checker<'_, '_>,
    ma: &MaDef,
    i: usize,
    registry: &Registry,
    base_dir: &Path,
) {
    let kind = ma.connector.kind.as_str();
    let Some(factory) = registry.get(kind) else {
        let kinds = registry.kinds();
        c.error(
            key_path!["ma", i, "connector", "type"],
            format!("unknown connector type `{kind}`"),
            suggest::hint(kind, &kinds),
        );
        return;
    };
    let ctx = BuildContext {
        ma: ma.name.clone(),
        base_dir: base_dir.to_path_buf(),
        object_types: ma.object_types.clone(),
    };
    if let Err(errors) = factory.validate(&ma.connector.settings, &ctx) {
        for e in errors {
            // A setting that is there is reported at its value; a missing
            // one at the connector table.
            let mut path = key_path!["ma", i, "connector", e.key.as_str()];
            if e.key.is_empty() || lookup(c.root, &path).is_none() {
                path.pop();
            }
            c.error(path, e.message, e.help);
        }
    }
}

fn check_ma_basics(c: &mut Checker<'_, '_>, ma: &MaDef, i: usize) {
    if ma.object_types.is_empty() {
        c.error(
            key_path!["ma", i, "object_types"],
            "an MA needs at least one object type",
            "e.g. `object_types = [{ name = \"person\", anchor = \"id\" }]`".to_owned(),
        );
    }
    let mut seen = Vec::new();
    for (t, ot) in ma.object_types.iter().enumerate() {
        if ot.name.is_empty() {
            c.error(
                key_path!["ma", i, "object_types", t, "name"],
                "the object type name is empty",
                None,
            );
        } else if seen.contains(&ot.name.as_str()) {
            c.error(
                key_path!["ma", i, "object_types", t, "name"],
                format!("object type `{}` is listed twice", ot.name),
                "each object type appears once in `object_types`".to_owned(),
            );
        }
        seen.push(ot.name.as_str());
        if ot.anchor.is_empty() {
            c.error(
                key_path!["ma", i, "object_types", t, "anchor"],
                "the anchor attribute is empty",
                "name the attribute that holds the object's immutable unique id".to_owned(),
            );
        }
    }
    if ma.export_deletion_threshold.count == autosync_model::Limit::Count(0) {
        c.error(
            key_path!["ma", i, "export_deletion_threshold"],
            "an export deletion threshold of 0 would stop every export that deletes anything",
            "write `\"off\"` to disable the threshold, or a count of the deletes one export may make"
                .to_owned(),
        );
    }
    if ma.max_value_size == 0 {
        c.error(
            key_path!["ma", i, "max_value_size"],
            "a max_value_size of 0 would make every imported value an error",
            "give the largest value, in bytes, an import accepts (default 1048576, 1 MiB)"
                .to_owned(),
        );
    }
    for (name, steps) in &ma.run_profiles {
        let path = key_path!["ma", i, "run_profiles", name.as_str()];
        if name.trim().is_empty() {
            let span = c.key_span(&path);
            c.push(
                path,
                span,
                "a run profile name is empty".into(),
                None,
                false,
            );
        } else if steps.is_empty() {
            c.error(
                path,
                format!("run profile `{name}` has no steps"),
                format!("e.g. `{name} = [\"delta-import\", \"delta-sync\"]`"),
            );
        }
    }
}
