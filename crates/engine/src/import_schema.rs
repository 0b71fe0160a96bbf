//! An import flow reading an attribute the source does not have blanks that
//! metaverse attribute everywhere. `autosync check` (and the service's
//! start and reload) catches it where the source's schema is known before
//! the run; a full read of the source catches the rest: a source that
//! declares no schema (JSON lines), one that could not be read at check
//! time, and a file whose header changed since (a renamed column).
//!
//! At the start of a full read the connector is asked for its schema
//! again. Known: a flow reading a name it lacks stops the import before it
//! stages anything (`stopped-configuration`, naming the flow and the
//! attribute): a renamed CSV column once blanked `title` in every target
//! while the import only warned. Not known: a flow reading a name that no
//! object of the whole read had ends the step `completed-warnings` with a
//! message naming them, logged at WARN (a sparse attribute is no proof). Only plain reads are watched
//! (`from`, and what an `expr` reads; a script may read names it computes),
//! only for flows of an object type the read saw an object of, and only
//! when it read at least one object. Per object the cost is nothing once
//! every watched attribute has been seen (usually after the first object).

use crate::run::StepCtx;
use autosync_connector::{
    BuildContext, ImportChange, ImportItem, ImportedObject, SchemaLookup, SourceSchema,
};
use autosync_model::RunStatus;

/// The attributes the import flows of one MA read, and whether a full read
/// of the source has shown each of them yet.
pub(crate) struct FlowReads {
    watches: Vec<Watch>,
    /// Watches not yet seen.
    remaining: usize,
    /// Objects read.
    objects: u64,
    /// Where the names were read from, when the connector knows its schema.
    source: Option<String>,
}

struct Watch {
    /// The metaverse attribute the flow writes (it names the flow).
    flow: String,
    object_type: Option<String>,
    attribute: String,
    seen: bool,
    /// Whether an object of `object_type` was read (always, without one).
    type_read: bool,
}

impl FlowReads {
    /// The watches for the import flows of the step's MA, the connector's
    /// schema asked for once; `None` when no flow reads a name it can tell.
    pub fn for_step(ctx: &StepCtx<'_>) -> Option<FlowReads> {
        let rules = ctx.engine.rules.mas.get(ctx.ma_index)?;
        let mut watches: Vec<Watch> = Vec::new();
        for f in &rules.inbound {
            for attribute in f.source.reads().into_iter().flatten() {
                watches.push(Watch {
                    flow: f.mv_attr.clone(),
                    object_type: f.object_type.clone(),
                    attribute,
                    seen: false,
                    type_read: false,
                });
            }
        }
        if watches.is_empty() {
            return None;
        }
        let mut source = None;
        if let SchemaLookup::Known(schema) = schema_of(ctx) {
            // What the schema has needs no watching.
            for w in &mut watches {
                w.seen = has(&schema, ctx, w.object_type.as_deref(), &w.attribute);
            }
            source = Some(schema.source);
        }
        Some(FlowReads {
            remaining: watches.iter().filter(|w| !w.seen).count(),
            watches,
            objects: 0,
            source,
        })
    }

    /// Note what the objects of one batch read from the source have.
    pub fn observe(&mut self, items: &[ImportItem]) {
        for object in items.iter().filter_map(|i| i.as_ref().ok()) {
            self.observe_object(object);
        }
    }

    fn observe_object(&mut self, object: &ImportedObject) {
        if object.change != ImportChange::Full {
            return;
        }
        self.objects += 1;
        if self.remaining == 0 {
            return;
        }
        for w in self.watches.iter_mut().filter(|w| !w.seen) {
            if w.object_type
                .as_deref()
                .is_some_and(|t| t != object.object_type)
            {
                continue;
            }
            w.type_read = true;
            if object
                .attributes
                .get(&w.attribute)
                .is_some_and(|v| !v.is_empty())
            {
                w.seen = true;
                self.remaining -= 1;
            }
        }
    }

    /// Before anything is read: every flow reading a name the source's
    /// known schema lacks (a renamed column), as the step's stop message;
    /// `None` when the schema is not known or has them all.
    pub fn missing_from_schema(&self) -> Option<String> {
        let source = self.source.as_ref()?;
        let missing: Vec<String> = self
            .watches
            .iter()
            .filter(|w| !w.seen)
            .map(|w| {
                format!(
                    "import flow to `{}` reads `{}`, which {source} does not have",
                    w.flow, w.attribute
                )
            })
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "{}: nothing was imported (reading on would blank those attributes on every \
                 object); a renamed column, or a misspelt flow? `autosync check` lists what \
                 {source} has",
                missing.join("; ")
            )
        })
    }

    /// The warning once the whole source was read: every flow whose
    /// attribute no object had, or `None`.
    pub fn warning(&self) -> Option<String> {
        if self.remaining == 0 || self.objects == 0 {
            return None;
        }
        let objects = self.objects;
        let noun = if objects == 1 { "object" } else { "objects" };
        let missing: Vec<String> = self
            .watches
            .iter()
            .filter(|w| !w.seen && w.type_read)
            .map(|w| match &self.source {
                Some(source) => format!(
                    "import flow to `{}` reads `{}`, which {source} does not have",
                    w.flow, w.attribute
                ),
                None => format!(
                    "import flow to `{}` reads `{}`, which none of the {objects} {noun} read had",
                    w.flow, w.attribute
                ),
            })
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "{} (a renamed or empty column, or a misspelt flow?)",
                missing.join("; ")
            )
        })
    }
}

/// What the step's connector says of its schema now.
fn schema_of(ctx: &StepCtx<'_>) -> SchemaLookup {
    let ma = ctx.ma;
    let Some(factory) = ctx.engine.registry.get(&ma.connector.kind) else {
        return SchemaLookup::Undeclared;
    };
    let build = BuildContext {
        ma: ma.name.clone(),
        base_dir: ctx.engine.system.base_dir.clone(),
        object_types: ma.object_types.clone(),
    };
    factory.schema(&ma.connector.settings, &build)
}

/// Whether the schema has `attribute` for a flow of `object_type` (any of
/// the MA's types when the flow names none).
fn has(
    schema: &SourceSchema,
    ctx: &StepCtx<'_>,
    object_type: Option<&str>,
    attribute: &str,
) -> bool {
    let ma = ctx.ma;
    match object_type {
        Some(t) => schema.has(ma, t, attribute),
        None => ma
            .object_types
            .iter()
            .any(|t| schema.has(ma, &t.name, attribute)),
    }
}

/// The status and message of an import step that read its source to the
/// end: a warning turns `success` into `completed-warnings` (a worse status
/// stays, with the warning as its message) and is logged at WARN.
pub(crate) fn settle(
    reads: Option<&FlowReads>,
    ma: &str,
    status: RunStatus,
) -> (RunStatus, Option<String>) {
    let Some(warning) = reads.and_then(FlowReads::warning) else {
        return (status, None);
    };
    tracing::warn!(ma, "{warning}");
    let status = match status {
        RunStatus::Success => RunStatus::CompletedWarnings,
        other => other,
    };
    (status, Some(warning))
}
