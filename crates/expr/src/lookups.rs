//! Read-only metaverse lookups for scripts: `mv_find(type, attribute,
//! value)` (MIM's `Utils.FindMVEntries`) and `mv_connectors(id)` (an MV
//! object's connectors), and the [`Context`] a script is evaluated in.
//!
//! This crate never touches the store, and a Rhai function cannot hold the
//! caller's store transaction (it must be `'static`). So a lookup is
//! answered by *replay*: a script asking a question not answered yet stops;
//! the caller's [`Metaverse`] answers it; the script runs again from the
//! start with every answer so far, and this time the call returns its
//! answer. Scripts are deterministic (no clock, nothing random, read-only
//! lookups), so each run takes the same path up to the new question. A
//! script making `k` lookups runs `k + 1` times; the time budget counts the
//! script's own running time over all runs, not the lookups' (a store read
//! waiting for a bulk transaction's queue is no fault of the script).

use crate::error::EvalError;
use crate::program::Lookup;
use crate::script::{from_dynamic, to_dynamic};
use autosync_model::Value;
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, ImmutableString, Map};
use std::cell::RefCell;

/// The most lookups one evaluation of a script may make.
pub const MAX_LOOKUPS: usize = 100;

/// A metaverse object a lookup found.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundMv {
    pub id: i64,
    pub object_type: String,
    /// Every attribute of the object.
    pub attributes: Vec<(String, Value)>,
}

/// One connector of a metaverse object, as `mv_connectors` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MvConnector {
    pub ma: String,
    pub anchor: String,
    pub dn: String,
    pub object_type: String,
}

/// Answers a script's metaverse lookups. The engine answers them from the
/// sync's own store transaction, so that a lookup sees the objects written
/// earlier in the same sync. An error is a per-object error of the script's
/// object (an implementation keeps a store failure aside for itself).
pub trait Metaverse {
    /// Metaverse objects of `object_type` whose `attr` holds `value` (any
    /// value of a multi-valued attribute).
    fn find(
        &mut self,
        object_type: &str,
        attr: &str,
        value: &Value,
    ) -> Result<Vec<FoundMv>, EvalError>;

    /// The connectors of metaverse object `id` (none when it does not exist).
    fn connectors(&mut self, id: i64) -> Result<Vec<MvConnector>, EvalError>;
}

/// What a script may see besides the object it runs on. The default sees
/// nothing more: no `mv` and no lookups (a script that makes one fails).
#[derive(Default)]
pub struct Context<'a> {
    /// The metaverse object an import flow writes to (`mv` in the script).
    pub mv: Option<&'a dyn Lookup>,
    /// Answers `mv_find` and `mv_connectors`.
    pub metaverse: Option<&'a mut dyn Metaverse>,
}

/// A question a script asked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Question {
    Find {
        object_type: String,
        attr: String,
        value: Value,
    },
    Connectors(i64),
}

/// The lookups of the evaluation running on this thread.
#[derive(Default)]
pub(crate) struct Answers {
    /// Whether lookups can be answered at all.
    pub enabled: bool,
    pub known: Vec<(Question, Dynamic)>,
    /// The first question this run asked that has no answer yet.
    pub asked: Option<Question>,
}

thread_local! {
    pub(crate) static ANSWERS: RefCell<Option<Answers>> = const { RefCell::new(None) };
}

const PENDING: &str = "a metaverse lookup is being answered";

fn ask(question: Question) -> Result<Dynamic, Box<EvalAltResult>> {
    let name = match question {
        Question::Find { .. } => "mv_find",
        Question::Connectors(_) => "mv_connectors",
    };
    ANSWERS.with(|a| {
        let mut a = a.borrow_mut();
        let Some(a) = a.as_mut().filter(|a| a.enabled) else {
            return Err(format!(
                "{name}: metaverse lookups are made only while a sync runs the rules"
            )
            .into());
        };
        if let Some((_, answer)) = a.known.iter().find(|(q, _)| *q == question) {
            return Ok(answer.clone());
        }
        a.asked.get_or_insert(question);
        Err(PENDING.into())
    })
}

/// Register `mv_find` and `mv_connectors` on a script engine.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_fn(
        "mv_find",
        |object_type: ImmutableString, attr: ImmutableString, value: Dynamic| {
            let value = from_dynamic(value, "the value to find")
                .map_err(|e| format!("mv_find: {}", e.message))?;
            match value {
                // Nothing holds an absent value.
                None => Ok(Dynamic::from_array(Array::new())),
                Some(value) => ask(Question::Find {
                    object_type: object_type.to_string(),
                    attr: attr.to_string(),
                    value,
                }),
            }
        },
    );
    engine.register_fn("mv_connectors", |id: INT| ask(Question::Connectors(id)));
    engine.register_fn("mv_connectors", |r: crate::script::MvRef| {
        ask(Question::Connectors(r.0))
    });
}

/// Answer `question` with `metaverse`, as the script will see it.
pub(crate) fn answer(
    metaverse: &mut dyn Metaverse,
    question: &Question,
) -> Result<Dynamic, EvalError> {
    let items: Array = match question {
        Question::Find {
            object_type,
            attr,
            value,
        } => metaverse
            .find(object_type, attr, value)?
            .into_iter()
            .map(|found| {
                let attrs: Map = found
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.as_str().into(), to_dynamic(v)))
                    .collect();
                let mut m = Map::new();
                m.insert("id".into(), Dynamic::from_int(found.id));
                m.insert("object_type".into(), found.object_type.into());
                m.insert("attrs".into(), Dynamic::from_map(attrs));
                Dynamic::from_map(m)
            })
            .collect(),
        Question::Connectors(id) => metaverse
            .connectors(*id)?
            .into_iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert("ma".into(), c.ma.into());
                m.insert("anchor".into(), c.anchor.into());
                m.insert("dn".into(), c.dn.into());
                m.insert("object_type".into(), c.object_type.into());
                Dynamic::from_map(m)
            })
            .collect(),
    };
    Ok(Dynamic::from_array(items))
}

/// Every attribute of `view` as a Rhai map.
pub(crate) fn attrs_map(view: &dyn Lookup) -> Map {
    let mut map = Map::new();
    view.for_each_attr(&mut |name, value| {
        map.insert(name.into(), to_dynamic(value));
    });
    map
}
