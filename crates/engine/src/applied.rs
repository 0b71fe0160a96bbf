//! Which rules each MA's connector space was last synchronised under, so
//! that a configuration edited while nothing ran (the service stopped, a
//! reload) is noticed: a full sync re-applies all rules, and until one has
//! run under the current rules, the MA "needs a full sync".
//!
//! Two fingerprints per MA are kept in the store's meta
//! (`rules-applied:<ma>`), written when a sync step ends: its own rules
//! (filters, join, projection, flows, provisioning, deprovisioning) and the
//! rules every source's full sync re-applies to the metaverse objects it
//! touches (every MA's outbound flows and provisioning, the metaverse
//! schema with its precedence and deletion rules). A full sync records
//! both; a delta sync records them only when none were recorded yet (the
//! rules it ran under are the first the MA had).
//!
//! The fingerprints are SipHash-1-3 (128 bits, zero key) of the rules'
//! JSON form: stable across processes and versions of this program.

use crate::Engine;
use crate::error::EngineError;
use autosync_model::{MaDef, SystemDef};
use autosync_store::{Store, StoreResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::Hasher;

/// The meta key of what `ma` was last synchronised under.
pub fn applied_key(ma: &str) -> String {
    format!("rules-applied:{ma}")
}

/// The fingerprints of a configuration's rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fingerprints {
    own: BTreeMap<String, String>,
    /// Every MA's outbound rules and the metaverse schema.
    shared: String,
    /// MAs with import flows: a full sync of one re-applies the shared
    /// rules to the metaverse objects it touches.
    sources: Vec<String>,
}

/// What an MA's connector space was last synchronised under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    own: String,
    shared: String,
}

fn digest(value: &serde_json::Value) -> String {
    let mut h = siphasher::sip128::SipHasher13::new_with_keys(0, 0);
    h.write(value.to_string().as_bytes());
    format!(
        "{:032x}",
        siphasher::sip128::Hasher128::finish128(&h).as_u128()
    )
}

/// An MA's own sync rules: its definition without what does not change
/// what a sync computes (connector settings, controller, run profiles,
/// thresholds).
fn own_rules(ma: &MaDef) -> serde_json::Value {
    let mut v = serde_json::to_value(ma).unwrap_or(serde_json::Value::Null);
    if let Some(map) = v.as_object_mut() {
        for key in [
            "connector",
            "controller",
            "run_profiles",
            "name",
            "staging_thresholds",
            "export_deletion_threshold",
            "reject_deletions",
            "max_value_size",
        ] {
            map.remove(key);
        }
    }
    v
}

impl Fingerprints {
    pub(crate) fn of(system: &SystemDef) -> Fingerprints {
        let own = system
            .mas
            .iter()
            .map(|m| (m.name.clone(), digest(&own_rules(m))))
            .collect();
        let outbound: Vec<serde_json::Value> = system
            .mas
            .iter()
            .map(|m| {
                serde_json::json!({
                    "ma": m.name,
                    "export_flows": m.export_flows,
                    "provisioning": m.provisioning,
                    "deprovisioning": m.deprovisioning,
                    "deprovision_joined": m.deprovision_joined,
                })
            })
            .collect();
        let shared = digest(&serde_json::json!({
            "metaverse": system.metaverse,
            "outbound": outbound,
        }));
        let sources = system
            .mas
            .iter()
            .filter(|m| !m.import_flows.is_empty())
            .map(|m| m.name.clone())
            .collect();
        Fingerprints {
            own,
            shared,
            sources,
        }
    }

    fn current(&self, ma: &str) -> Option<Applied> {
        Some(Applied {
            own: self.own.get(ma)?.clone(),
            shared: self.shared.clone(),
        })
    }
}

/// After a sync step of `ma` under `fp` ended: record the rules it ran
/// under (a delta sync only when nothing was recorded yet).
pub(crate) fn record(
    store: &dyn Store,
    fp: &Fingerprints,
    ma: &str,
    full: bool,
) -> StoreResult<()> {
    let Some(now) = fp.current(ma) else {
        return Ok(());
    };
    let key = applied_key(ma);
    let mut txn = store.begin()?;
    let before = txn.meta(&key)?;
    if before.is_some() && !full {
        return Ok(());
    }
    let text = serde_json::to_string(&now).unwrap_or_default();
    if before.as_deref() != Some(text.as_str()) {
        txn.set_meta(&key, Some(&text))?;
        txn.commit()?;
    }
    Ok(())
}

/// An MA whose connector space was last synchronised under other rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullSyncNeeded {
    pub ma: String,
    /// Why, in words.
    pub because: String,
}

impl Engine {
    /// The MAs that need a full sync because the rules changed since their
    /// connector space was last synchronised (their own rules, or, for a
    /// source, another MA's outbound rules or the metaverse schema). An MA
    /// that was never synchronised needs none.
    pub fn full_syncs_needed(&self) -> Result<Vec<FullSyncNeeded>, EngineError> {
        needed(&self.system, &self.fingerprints, self.store.as_ref())
    }
}

/// [`Engine::full_syncs_needed`] without an engine, reading only: what a
/// `status` read from the store (no service running) shows.
pub fn full_syncs_needed(
    system: &SystemDef,
    store: &dyn Store,
) -> Result<Vec<FullSyncNeeded>, EngineError> {
    needed(system, &Fingerprints::of(system), store)
}

fn needed(
    system: &SystemDef,
    fingerprints: &Fingerprints,
    store: &dyn Store,
) -> Result<Vec<FullSyncNeeded>, EngineError> {
    let mut read = store.read()?;
    let mut out = Vec::new();
    for ma in &system.mas {
        let Some(text) = read.meta(&applied_key(&ma.name))? else {
            continue;
        };
        let Some(now) = fingerprints.current(&ma.name) else {
            continue;
        };
        let Ok(then) = serde_json::from_str::<Applied>(&text) else {
            continue;
        };
        let because = if then.own != now.own {
            "its synchronisation rules changed since its last full sync"
        } else if then.shared != now.shared && fingerprints.sources.contains(&ma.name) {
            "the metaverse schema (precedence, deletion rules) or another MA's outbound \
             flows or provisioning changed since its last full sync"
        } else {
            continue;
        };
        out.push(FullSyncNeeded {
            ma: ma.name.clone(),
            because: because.to_owned(),
        });
    }
    Ok(out)
}
