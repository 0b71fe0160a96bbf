//! `autosync cs MA --unresolved`: the references of MA's objects that wait.
//!
//! Two kinds: a connector-space reference that names an object not there
//! or not joined yet (inbound, `ref_wait_in`), and a metaverse reference
//! exported to MA whose referred object has no connector on the MA that
//! spells it yet, or one whose add or rename is not exported yet
//! (outbound, `ref_wait_out`). An outbound wait's value is left out of
//! what MA is sent until it ends.

use autosync_model::{CsId, CsObject, ExportKind, MvId, MvObject, SystemDef, Value};
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
        /// `no-connector`, `add-not-exported`, `rename-not-exported`, or
        /// `ready` (the next sync resolves it).
        reason: &'static str,
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
                ..
            } => {
                let why = match *reason {
                    "no-connector" => format!("has no connector in {via}"),
                    "add-not-exported" => format!("its add to {via} is not exported yet"),
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
        let referrer = match o.connection.mv_id() {
            Some(mv) => read.mv_get(mv)?,
            None => None,
        };
        for (target, via) in outbound.into_iter().take(room) {
            listed.push(out_wait(
                read,
                system,
                ma,
                o,
                referrer.as_ref(),
                target,
                via,
            )?);
        }
    }
    let more = total - listed.len();
    Ok(Waits { listed, more })
}

fn out_wait(
    read: &mut dyn StoreRead,
    system: &SystemDef,
    ma: &str,
    o: &CsObject,
    referrer: Option<&MvObject>,
    target: MvId,
    via: String,
) -> StoreResult<Wait> {
    let object_type = read
        .mv_get_light(target)?
        .map(|m| m.object_type)
        .unwrap_or_else(|| "deleted object".to_owned());
    let connector = read.cs_by_mv(target)?.into_iter().find(|c| c.ma == via);
    let reason = match connector {
        None => "no-connector",
        Some(c) => match c
            .pending_export
            .as_ref()
            .map(|p| (p.kind, p.new_dn.is_some()))
        {
            Some((ExportKind::Add | ExportKind::DeleteAdd, _)) => "add-not-exported",
            Some((_, true)) => "rename-not-exported",
            _ => "ready",
        },
    };
    let mv_attribute = referrer.and_then(|r| {
        r.attributes
            .iter()
            .find(|(_, v)| names(&v.value, target))
            .map(|(name, _)| name.as_str())
    });
    let attribute = match mv_attribute {
        None => String::new(),
        Some(name) => system
            .ma(ma)
            .and_then(|m| {
                m.export_flows
                    .iter()
                    .filter(|f| f.object_type.as_deref().is_none_or(|t| t == o.object_type))
                    .filter(|f| {
                        referrer
                            .is_none_or(|r| f.mv_type.as_deref().is_none_or(|t| t == r.object_type))
                    })
                    .find(|f| f.from.as_deref() == Some(name))
            })
            .map(|f| f.cs.clone())
            .unwrap_or_else(|| name.to_owned()),
    };
    Ok(Wait::Out {
        attribute,
        mv_id: target,
        object_type,
        via,
        reason,
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
