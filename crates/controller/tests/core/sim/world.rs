//! The simulated connected systems and connector spaces, as counts: what
//! an import stages, a sync sends out, an export sends; outages of a
//! connected system; and staging thresholds (an import that stages too
//! much is held, as the engine holds it, until approved or rejected). It
//! stands in for the engine and its systems; it simulates no server.

use autosync_controller::{CsState, EngineCallError, MaInfo};
use autosync_model::{
    ExportCounters, ImportCounters, OutboundCounters, RunStatus, StepCounters, StepType,
    SyncCounters,
};
use std::collections::{BTreeMap, BTreeSet};

pub const MAS: [&str; 4] = ["hr", "ad", "app", "ldap"];

/// Every MA's profiles; `ldap` has no delta import, `hr` also has an
/// import-and-sync profile (unless `without_import_sync`).
pub fn infos(without_import_sync: bool) -> BTreeMap<String, MaInfo> {
    use StepType::*;
    MAS.iter()
        .map(|ma| {
            let mut profiles = BTreeMap::from([
                ("full-import".to_owned(), vec![FullImport]),
                ("delta-sync".to_owned(), vec![DeltaSync]),
                ("full-sync".to_owned(), vec![FullSync]),
                ("export".to_owned(), vec![Export]),
            ]);
            if *ma != "ldap" {
                profiles.insert("delta-import".into(), vec![DeltaImport]);
            }
            if *ma == "hr" && !without_import_sync {
                profiles.insert("import-sync".into(), vec![DeltaImport, DeltaSync]);
            }
            (
                (*ma).to_owned(),
                MaInfo {
                    name: (*ma).to_owned(),
                    profiles,
                },
            )
        })
        .collect()
}

/// How one step went.
pub struct StepDone {
    pub status: RunStatus,
    pub counters: StepCounters,
    /// The run stops after this step.
    pub last: bool,
}

/// The connected systems and the engine's connector spaces, as counts.
pub struct World {
    pub cs: BTreeMap<String, CsState>,
    /// Changes waiting in each connected system for its next import.
    pub source: BTreeMap<String, u64>,
    /// Where a sync of each MA sends outbound changes.
    pub flows: BTreeMap<String, Vec<String>>,
    /// How many more confirming imports may find the target changed what it
    /// was sent (an "echo" that needs another sync); `None`: forever.
    pub echoes: Option<u32>,
    /// Connected systems that are down: their imports and exports stop
    /// `stopped-server-down` having done nothing.
    pub down: BTreeSet<String>,
    /// An import staging more than this many changes on an MA is held at
    /// its staging threshold (none: no threshold).
    pub staging_threshold: Option<u64>,
    /// MAs whose staged changes a staging threshold holds.
    pub held: BTreeSet<String>,
    /// MAs whose export stopped at the deletion threshold (the store's
    /// deletion stop).
    pub deletion_stopped: BTreeSet<String>,
}

impl World {
    pub fn new(echoes: Option<u32>) -> Self {
        let flows = [
            ("hr", vec!["ad", "app"]),
            ("ad", vec!["app"]),
            ("app", vec!["ad"]),
            ("ldap", vec!["hr"]),
        ]
        .into_iter()
        .map(|(ma, to)| (ma.to_owned(), to.into_iter().map(str::to_owned).collect()))
        .collect();
        World {
            cs: MAS
                .iter()
                .map(|m| ((*m).to_owned(), CsState::default()))
                .collect(),
            source: MAS.iter().map(|m| ((*m).to_owned(), 0)).collect(),
            flows,
            echoes: echoes.map(|n| n.min(1_000)),
            down: BTreeSet::new(),
            staging_threshold: None,
            held: BTreeSet::new(),
            deletion_stopped: BTreeSet::new(),
        }
    }

    /// Nothing left to flow in the connector spaces, and nothing waits
    /// for an operator (changes still in a source wait for a trigger).
    pub fn quiescent(&self) -> bool {
        self.cs.values().all(CsState::is_quiescent) && self.held.is_empty()
    }

    /// Does one step on `ma`; a stopped step (`stopped`, a cancel) does
    /// half its work (rounded up).
    pub fn step(&mut self, ma: &str, step: StepType, stopped: Option<RunStatus>) -> StepDone {
        let part = |n: u64| if stopped.is_some() { n - n / 2 } else { n };
        let ends = |counters: StepCounters| StepDone {
            status: stopped.unwrap_or(RunStatus::Success),
            counters,
            last: stopped.is_some(),
        };
        let touches_system = step.is_import() || step == StepType::Export;
        if touches_system && self.down.contains(ma) {
            return StepDone {
                status: RunStatus::StoppedServerDown,
                counters: if step.is_import() {
                    StepCounters::Import(ImportCounters::default())
                } else {
                    StepCounters::Export(ExportCounters::default())
                },
                last: true,
            };
        }
        if step.is_import() {
            let cs = self.cs.entry(ma.to_owned()).or_default();
            let confirmed = part(cs.unconfirmed_export);
            cs.unconfirmed_export -= confirmed;
            let source = self.source.entry(ma.to_owned()).or_default();
            let mut staged = part(*source);
            *source -= staged;
            if confirmed > 0 {
                match &mut self.echoes {
                    None => staged += 1,
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        staged += 1;
                    }
                    Some(_) => {}
                }
            }
            cs.pending_import += staged;
            let counters = StepCounters::Import(ImportCounters {
                stage_update: staged,
                export_confirmed: confirmed,
                ..Default::default()
            });
            if self.staging_threshold.is_some_and(|t| staged > t) {
                self.held.insert(ma.to_owned());
                return StepDone {
                    status: RunStatus::StoppedStagingThresholdExceeded,
                    counters,
                    last: true,
                };
            }
            ends(counters)
        } else if step.is_sync() {
            if self.held.contains(ma) {
                return StepDone {
                    status: RunStatus::StoppedStagingThresholdExceeded,
                    counters: StepCounters::Sync(SyncCounters::default()),
                    last: true,
                };
            }
            let cs = self.cs.entry(ma.to_owned()).or_default();
            let n = part(cs.pending_import);
            cs.pending_import -= n;
            let mut outbound = BTreeMap::new();
            if n > 0 {
                for target in self.flows.get(ma).into_iter().flatten() {
                    self.cs.entry(target.clone()).or_default().pending_export += n;
                    let counters = OutboundCounters {
                        export_attribute_flow: n,
                        ..Default::default()
                    };
                    outbound.insert(target.clone(), counters);
                }
            }
            ends(StepCounters::Sync(SyncCounters {
                outbound,
                ..Default::default()
            }))
        } else {
            let cs = self.cs.entry(ma.to_owned()).or_default();
            let sent = part(cs.pending_export);
            cs.pending_export -= sent;
            cs.unconfirmed_export += sent;
            ends(StepCounters::Export(ExportCounters {
                updates: sent,
                ..Default::default()
            }))
        }
    }

    /// An operator's approval: the held changes may be synchronised (as
    /// the engine's, it succeeds when nothing is held). The store of an MA
    /// that is down refuses it.
    pub fn approve(&mut self, ma: &str) -> Result<String, EngineCallError> {
        if self.down.contains(ma) {
            return Err(EngineCallError::Unavailable {
                message: format!("the store is unavailable for `{ma}`"),
            });
        }
        let export = self.deletion_stopped.remove(ma);
        Ok(if self.held.remove(ma) || export {
            format!("approved the staged changes of `{ma}`")
        } else {
            format!("approved `{ma}`: nothing was held")
        })
    }

    /// An operator's rejection: the held changes are dropped and the
    /// source will give them again; returns the pending imports left.
    pub fn reject(&mut self, ma: &str) -> Result<(String, u64, u64), EngineCallError> {
        let export = self.deletion_stopped.remove(ma);
        if !self.held.remove(ma) {
            if export {
                let left = self.cs.get(ma).map_or(0, |cs| cs.pending_export);
                return Ok((format!("dropped the pending deletes of `{ma}`"), 0, left));
            }
            return Err(EngineCallError::NothingWaits { ma: ma.to_owned() });
        }
        let cs = self.cs.entry(ma.to_owned()).or_default();
        let dropped = std::mem::take(&mut cs.pending_import);
        *self.source.entry(ma.to_owned()).or_default() += dropped;
        Ok((format!("rejected {dropped} staged changes of `{ma}`"), 0, 0))
    }
}
