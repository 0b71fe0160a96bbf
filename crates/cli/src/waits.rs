//! `autosync cs MA --unresolved`: the references of MA's objects that wait.
//!
//! Two kinds: a connector-space reference that names an object not there
//! or not joined yet (inbound, `ref_wait_in`), and a metaverse reference
//! exported to MA whose referred object has no connector on the MA that
//! spells it yet, or one whose add or rename is not exported yet
//! (outbound, `ref_wait_out`). An outbound wait's value is left out of
//! what MA is sent until it ends.

use autosync_model::{CsId, CsObject, ExportKind, MvId, SystemDef, Value};
use autosync_store::{RefWait, StoreRead, StoreResult};
use serde::Serialize;

/// At most this many waits of one object are listed (the rest counted),
/// as a run's recorded changes cap their value lists.
pub const LISTED: usize = 100;

/// The ids of the objects of `ma` with a wait of either kind, in id order
/// (each once), and how many there are.
pub fn waiting_ids(read: &mut dyn StoreRead, ma: &str) -> StoreResult<Vec<CsId>> {
    let mut ids = Vec::new();
    for outbound in [false, true] {
        let mut after = 0;
        loop {
            let page = if outbound {
                read.ref_out_waiting_page(ma, after, 10_000)?
            } else {
                read.ref_waiting_page(ma, after, 10_000)?
            };
            let Some(&last) = page.last() else { break };
            after = last;
            ids.extend(page);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// One wait of a listed object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "direction", rename_all = "kebab-case")]
pub enum Wait {
    /// The object's reference names an object of `ma` (by anchor or DN)
    /// that is not there, or not joined.
    In {
        attribute: String,
        ma: String,
        /// The anchor or DN named (the key is `anchor` for both: it was
        /// so before outbound waits were listed).
        anchor: String,
    },
    /// The metaverse reference exported to this object names `mv_id`,
    /// which has no usable connector on `via` yet.
    Out {
        /// The attribute of this MA the reference flows to (the metaverse
        /// attribute, when no export flow copies it).
        attribute: String,
        mv_id: MvId,
        object_type: String,
        via: String,
        /// `no-connector`, `add-not-exported`, `add-failed` (the add was
        /// sent and refused: `error`), `rename-not-exported`, or `ready`
        /// (the next sync resolves it).
        reason: &'static str,
        /// The error the connector's add failed with (`add-failed`).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl Wait {
    /// The `WAITS FOR` column.
    pub fn waits_for(&self) -> String {
        match self {
            Wait::In { ma, anchor, .. } => format!("{ma}/{anchor} (not there, or not joined)"),
            Wait::Out {
                mv_id,
                object_type,
                via,
                reason,
                error,
                ..
            } => {
                let why = match *reason {
                    "no-connector" => format!("has no connector in {via}"),
                    "add-not-exported" => format!("its add to {via} is not exported yet"),
                    "add-failed" => format!(
                        "its add to {via} failed ({}): it waits until the add goes",
                        error.as_deref().unwrap_or("error")
                    ),
                    "rename-not-exported" => format!("its rename in {via} is not exported yet"),
                    _ => format!("its connector in {via} is there: the next sync sends it"),
                };
                format!("{object_type} #{mv_id}: {why}")
            }
        }
    }

    pub fn attribute(&self) -> &str {
        match self {
            Wait::In { attribute, .. } | Wait::Out { attribute, .. } => attribute,
        }
    }
}

/// The waits of one listed object, at most [`LISTED`], and how many more.
#[derive(Clone, Debug, Default)]
pub struct Waits {
    pub listed: Vec<Wait>,
    pub more: usize,
}

/// The waits of `o` (an object of `ma`) of both kinds.
pub fn waits_of(
    read: &mut dyn StoreRead,
    system: &SystemDef,
    ma: &str,
    o: &CsObject,
) -> StoreResult<Waits> {
    let inbound: Vec<RefWait> = read.ref_waits_of(o.id)?;
    let outbound = match o.connection.mv_id() {
        Some(mv) => read.ref_out_waits_of(mv, ma)?,
        None => Vec::new(),
    };
    let total = inbound.len() + outbound.len();
    let mut listed: Vec<Wait> = inbound
        .into_iter()
        .take(LISTED)
        .map(|w| Wait::In {
            attribute: w.attr,
            ma: w.ma,
            anchor: w.key,
        })
        .collect();
    let room = LISTED.saturating_sub(listed.len());
    if room > 0 && !outbound.is_empty() {
        // The attribute each value flows to: the one reference flow to
        // this object's type, without reading the referrer (a group of
        // half a million members); else found in the referrer's values.
        let flows = reference_flows(system, ma, &o.object_type);
        let referrer = match (flows.as_slice(), o.connection.mv_id()) {
            ([_], _) | (_, None) => None,
            (_, Some(mv)) => read.mv_get(mv)?,
        };
        for (target, via) in outbound.into_iter().take(room) {
            let attribute = match (flows.as_slice(), &referrer) {
                ([(cs, _)], _) => cs.clone(),
                (_, Some(r)) => r
                    .attributes
                    .iter()
                    .find(|(_, v)| names(&v.value, target))
                    .map(|(name, _)| {
                        flows
                            .iter()
                            .find(|(_, from)| from == name)
                            .map_or_else(|| name.clone(), |(cs, _)| cs.clone())
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            listed.push(out_wait(read, attribute, target, via)?);
        }
    }
    let more = total - listed.len();
    Ok(Waits { listed, more })
}

/// The export flows of `ma` to objects of `object_type` that copy a
/// metaverse reference: `(CS attribute, metaverse attribute)` each.
fn reference_flows(system: &SystemDef, ma: &str, object_type: &str) -> Vec<(String, String)> {
    let is_reference = |mv_type: Option<&str>, attr: &str| {
        system
            .metaverse
            .iter()
            .filter(|(t, _)| mv_type.is_none_or(|m| m == t.as_str()))
            .any(|(_, d)| d.references.contains_key(attr))
    };
    let mut flows: Vec<(String, String)> = system
        .ma(ma)
        .map(|m| {
            m.export_flows
                .iter()
                .filter(|f| f.object_type.as_deref().is_none_or(|t| t == object_type))
                .filter_map(|f| {
                    let from = f.from.as_deref()?;
                    is_reference(f.mv_type.as_deref(), from)
                        .then(|| (f.cs.clone(), from.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    flows.dedup();
    flows
}

/// Why the reference to `target` waits for a connector on `via`, read
/// from the connectors' spellings (no attributes decoded).
fn out_wait(
    read: &mut dyn StoreRead,
    attribute: String,
    target: MvId,
    via: String,
) -> StoreResult<Wait> {
    let object_type = read
        .mv_get_light(target)?
        .map(|m| m.object_type)
        .unwrap_or_else(|| "deleted object".to_owned());
    let mut connectors = read.cs_spellings_by_mvs(&via, &[target])?;
    connectors.sort_unstable_by_key(|c| c.id);
    let mut error = None;
    let reason = match connectors.first() {
        None => "no-connector",
        Some(c) => match &c.pending {
            Some((ExportKind::Add | ExportKind::DeleteAdd, _)) => {
                // Sent and refused: its error says why (a name taken).
                error = read
                    .cs_get_light(c.id)?
                    .and_then(|o| o.error)
                    .filter(|e| e.stage == autosync_model::ErrorStage::Export)
                    .map(|e| e.error_type);
                if error.is_some() {
                    "add-failed"
                } else {
                    "add-not-exported"
                }
            }
            Some((_, Some(_))) => "rename-not-exported",
            _ => "ready",
        },
    };
    Ok(Wait::Out {
        attribute,
        mv_id: target,
        object_type,
        via,
        reason,
        error,
    })
}

/// Whether `v` is, or holds, a reference to `target`.
fn names(v: &Value, target: MvId) -> bool {
    match v {
        Value::Reference(id) => *id == target,
        Value::Multi(vs) => vs.iter().any(|v| names(v, target)),
        _ => false,
    }
}
