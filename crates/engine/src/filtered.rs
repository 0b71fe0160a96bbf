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
use autosync_expr::{Context, EvalError, FoundMv, Lookup, Metaverse, MvConnector};
use autosync_model::{Connection, CsObject, ImportKind, SystemDef, Value};
use autosync_store::{StoreError, StoreRead, StoreResult};

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
                let mut metaverse = ReadMetaverse { read, failed: None };
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

/// A filter script's metaverse lookups, answered from a read view (as the
/// sync's `TxnMetaverse` answers them from its transaction). A store
/// failure is kept aside and returned, not taken for the object's.
struct ReadMetaverse<'r> {
    read: &'r mut dyn StoreRead,
    failed: Option<StoreError>,
}

impl ReadMetaverse<'_> {
    fn store<T>(&mut self, r: Result<T, StoreError>) -> Result<T, EvalError> {
        r.map_err(|e| {
            let message = format!("the store failed: {e}");
            self.failed = Some(e);
            EvalError {
                message,
                script: true,
            }
        })
    }
}

impl Metaverse for ReadMetaverse<'_> {
    fn find(
        &mut self,
        object_type: &str,
        attr: &str,
        value: &Value,
    ) -> Result<Vec<FoundMv>, EvalError> {
        let r = self.read.mv_find(object_type, attr, value);
        let ids = self.store(r)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let r = self.read.mv_get_many(&ids);
        let mut found: Vec<FoundMv> = self
            .store(r)?
            .into_iter()
            .map(|mv| FoundMv {
                id: mv.id,
                object_type: mv.object_type,
                attributes: mv
                    .attributes
                    .into_iter()
                    .map(|(k, v)| (k, v.value))
                    .collect(),
            })
            .collect();
        found.sort_by_key(|f| f.id);
        Ok(found)
    }

    fn connectors(&mut self, id: i64) -> Result<Vec<MvConnector>, EvalError> {
        let r = self.read.cs_by_mv(id);
        let mut found: Vec<MvConnector> = self
            .store(r)?
            .into_iter()
            .map(|x| MvConnector {
                ma: x.ma,
                anchor: x.anchor,
                dn: x.dn,
                object_type: x.object_type,
            })
            .collect();
        found.sort_by(|a, b| (&a.ma, &a.anchor).cmp(&(&b.ma, &b.anchor)));
        Ok(found)
    }
}
