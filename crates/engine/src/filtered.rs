//! Whether an MA's connector filters hold an unjoined object out, as
//! `autosync cs` shows it: a filtered disconnector is not stored as such
//! (the sync works it out each time it meets the object), so a listing
//! evaluates the filters as the sync would, on a read view.
//!
//! The evaluation is the sync's (`MaRules::filter_matching`, in
//! `sync/inbound.rs`): the MA's filters compiled as the engine compiles
//! them, the first that applies to the object's type and is true, over the
//! object as the sync sees it (its pending import accepted: the new
//! attributes and object type). The sync's filter needs a write
//! transaction for the metaverse lookups a filter script may make; here
//! they are answered from the read view.

use crate::compute::{AttrView, CsView};
use crate::rules::{MaRules, Rules};
use autosync_expr::{Context, Lookup};
use autosync_model::{Connection, CsObject, ImportKind, SystemDef};
use autosync_store::{StoreRead, StoreResult};

/// What an MA's connector filters say of one object now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterState {
    /// Not an unjoined object (a connector, an explicit disconnector), or
    /// no filter of its MA matches it.
    NotFiltered,
    /// Filter `filter` (from 1, as the configuration lists them) matches
    /// it: a filtered disconnector, never joined nor projected.
    Filtered { filter: usize },
    /// A filter could not be evaluated (the sync records the object's
    /// `expression-failed` error, with `error` as its detail): `filter`
    /// (none when the rules do not compile) and why.
    Failed {
        filter: Option<usize>,
        error: String,
    },
}

/// An MA's connector filters, compiled once for a listing.
pub struct ConnectorFilters {
    /// `Err`: the rules do not compile (said on every unjoined object).
    ma: Result<Option<MaRules>, String>,
}

impl ConnectorFilters {
    /// The filters of `ma` in `system` (none when the MA has none or is
    /// not configured).
    pub fn of(system: &SystemDef, ma: &str) -> ConnectorFilters {
        let has = system.ma(ma).is_some_and(|m| !m.filters.is_empty());
        if !has {
            return ConnectorFilters { ma: Ok(None) };
        }
        let ma = Rules::compile(system)
            .map(|rules| rules.mas.into_iter().find(|m| m.name == ma))
            .map_err(|e| format!("the rules do not compile: {e}"));
        ConnectorFilters { ma }
    }

    /// Whether the MA has filters to evaluate.
    pub fn any(&self) -> bool {
        !matches!(self.ma, Ok(None))
    }

    /// What the filters say of `cs` (an object of this MA, read whole):
    /// only an unjoined object that is no explicit disconnector can be a
    /// filtered disconnector. An object with a pending import is seen as
    /// the sync sees it, that import accepted; one with a pending delete
    /// (which the sync removes without asking the filters) as its
    /// hologram holds it. A store failure of a filter script's lookup is
    /// the error returned.
    pub fn state(&self, read: &mut dyn StoreRead, cs: &CsObject) -> StoreResult<FilterState> {
        if cs.connection != Connection::Disconnector {
            return Ok(FilterState::NotFiltered);
        }
        let rules = match &self.ma {
            Ok(None) => return Ok(FilterState::NotFiltered),
            Ok(Some(rules)) => rules,
            Err(e) => {
                return Ok(FilterState::Failed {
                    filter: None,
                    error: e.clone(),
                });
            }
        };
        let hologram = AttrView(&cs.hologram);
        let current = CsView(cs);
        let (object_type, view): (&str, &dyn Lookup) = match &cs.pending_import {
            Some(p) if p.kind == ImportKind::Delete => (&cs.object_type, &hologram),
            Some(p) => (
                p.object_type.as_deref().unwrap_or(&cs.object_type),
                &current,
            ),
            None => (&cs.object_type, &current),
        };
        for (i, f) in rules.filters.iter().enumerate() {
            if !f.applies(object_type) {
                continue;
            }
            let matched = if f.condition.needs_context() {
                let mut metaverse = crate::extensions::StoreMetaverse { read, failed: None };
                let r = f.condition.eval_bool_in(
                    view,
                    &mut Context {
                        mv: None,
                        metaverse: Some(&mut metaverse),
                    },
                );
                if let Some(e) = metaverse.failed {
                    return Err(e);
                }
                r
            } else {
                f.condition.eval_bool(view)
            };
            match matched {
                Ok(true) => return Ok(FilterState::Filtered { filter: i + 1 }),
                Ok(false) => {}
                Err(e) => {
                    return Ok(FilterState::Failed {
                        filter: Some(i + 1),
                        error: format!("filter #{} of `{}`: {e}", i + 1, rules.name),
                    });
                }
            }
        }
        Ok(FilterState::NotFiltered)
    }
}
