//! Which attributes keep the order of their values: metaverse attributes
//! declared `ordered` (`[metaverse.T] ordered = [...]`), and, worked out
//! once when the rules compile, the flows and connector-space attributes
//! that carry them. Every other multi-valued attribute compares as a set
//! (see `autosync_model::compare`).

use crate::compute::Compute;
use crate::rules::{InboundFlow, MaRules, OutboundFlow, Rules};
use autosync_model::{SystemDef, ValueOrder};
use rustc_hash::FxHashSet;

/// How attribute `attr` of metaverse type `mv_type` (`None`: of any type)
/// compares: ordered when declared so.
pub(crate) fn declared(system: &SystemDef, mv_type: Option<&str>, attr: &str) -> ValueOrder {
    let ordered = system
        .metaverse
        .iter()
        .filter(|(t, _)| mv_type.is_none_or(|m| m == t.as_str()))
        .any(|(_, d)| d.ordered.iter().any(|a| a == attr));
    if ordered {
        ValueOrder::Ordered
    } else {
        ValueOrder::Unordered
    }
}

/// An outbound flow's order: ordered when its source reads an ordered
/// metaverse attribute (a script, whose reads are unknown, is unordered).
pub(crate) fn of_outbound(
    system: &SystemDef,
    mv_type: Option<&str>,
    source: &Compute,
) -> ValueOrder {
    let reads_ordered = source.reads().is_some_and(|names| {
        names
            .iter()
            .any(|n| declared(system, mv_type, n) == ValueOrder::Ordered)
    });
    if reads_ordered {
        ValueOrder::Ordered
    } else {
        ValueOrder::Unordered
    }
}

/// The CS attributes of one MA whose values compare in order: those an
/// ordered outbound flow fills, and those an ordered inbound flow reads.
pub(crate) fn ordered_cs(inbound: &[InboundFlow], outbound: &[OutboundFlow]) -> FxHashSet<String> {
    let filled = outbound
        .iter()
        .filter(|f| f.order == ValueOrder::Ordered)
        .map(|f| f.cs_attr.clone());
    let read = inbound
        .iter()
        .filter(|f| f.order == ValueOrder::Ordered)
        .flat_map(|f| f.source.reads().unwrap_or_default());
    filled.chain(read).collect()
}

impl MaRules {
    /// How the values of CS attribute `attr` compare (for the confirming
    /// import and change detection).
    pub fn cs_order(&self, attr: &str) -> ValueOrder {
        if !self.ordered_cs.is_empty() && self.ordered_cs.contains(attr) {
            ValueOrder::Ordered
        } else {
            ValueOrder::Unordered
        }
    }
}

impl Rules {
    /// How the values of metaverse attribute `attr` of `mv_type` compare.
    pub fn mv_order(&self, mv_type: &str, attr: &str) -> ValueOrder {
        if !self.any_ordered {
            return ValueOrder::Unordered;
        }
        match self.mv_types.get(mv_type) {
            Some(t) if !t.ordered.is_empty() && t.ordered.contains(attr) => ValueOrder::Ordered,
            _ => ValueOrder::Unordered,
        }
    }
}
