//! The cycle, as pure functions: `decide` says which follow-ups a finished
//! run needs (import with staged changes → delta sync; sync with outbound
//! changes → export on each target; export with activity → confirming
//! import), and `reconcile` says what the connector spaces still need. Both
//! read only their arguments: no clock, no I/O.

use crate::because;
use crate::profiles::{FollowUpKind, ProfileError};
use crate::request::{ChainLink, Request};
use crate::view::ControllerView;
use autosync_model::{
    ExportCounters, ImportCounters, OutboundCounters, RunId, RunReason, RunRecord, RunStatus,
    StepCounters, StepType,
};
use std::collections::BTreeMap;
use std::fmt;

/// What deciding produced: requests to queue, and reports for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub requests: Vec<Request>,
    pub reports: Vec<Report>,
}

/// Something the operator should know instead of (or besides) a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// The causal chain reached the oscillation limit: its follow-ups were
    /// not requested. Flows that flip a value back and forth end here.
    Oscillation { ma: String, chain: Vec<ChainLink> },
    /// A follow-up was needed but is switched off for this MA.
    SwitchedOff {
        ma: String,
        follow_up: FollowUpKind,
        because: String,
    },
    /// A follow-up was needed but the MA has no profile for it.
    NoProfile {
        ma: String,
        follow_up: FollowUpKind,
        error: ProfileError,
    },
    /// Counters name an MA the controller does not know.
    UnknownMa { ma: String, because: String },
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Oscillation { ma, chain } => {
                let runs: Vec<String> = chain
                    .iter()
                    .map(|l| format!("{} {} (run {})", l.ma, l.profile, l.run_id))
                    .collect();
                write!(
                    f,
                    "management agent `{ma}`: the cycle did not settle after {} runs and was stopped \
                     (flows may be flipping a value back and forth): {}",
                    chain.len(),
                    runs.join(" → ")
                )
            }
            Report::SwitchedOff {
                ma,
                follow_up,
                because,
            } => {
                write!(
                    f,
                    "management agent `{ma}`: {follow_up} needed ({because}) but switched off"
                )
            }
            Report::NoProfile { error, .. } => write!(f, "{error}"),
            Report::UnknownMa { ma, because } => {
                write!(
                    f,
                    "management agent `{ma}` is not known to the controller ({because})"
                )
            }
        }
    }
}

/// Where the requests of one decision come from.
#[derive(Clone, Copy)]
enum Origin {
    FollowUp(RunId),
    Reconciliation,
}

impl Decision {
    /// Requests `kind` on `ma`, or reports why not.
    fn follow_up(
        &mut self,
        view: &ControllerView,
        ma: &str,
        kind: FollowUpKind,
        because: String,
        origin: Origin,
        chain: &[ChainLink],
    ) {
        let Some(m) = view.ma(ma) else {
            self.reports.push(Report::UnknownMa {
                ma: ma.to_owned(),
                because,
            });
            return;
        };
        if !m.follow_ups.allows(kind) {
            self.reports.push(Report::SwitchedOff {
                ma: ma.to_owned(),
                follow_up: kind,
                because,
            });
            return;
        }
        match m.profiles.get(kind) {
            Ok(profile) => self.requests.push(Request {
                ma: ma.to_owned(),
                profile: profile.clone(),
                exclusive: false,
                run_immediate: false,
                reason: match origin {
                    Origin::FollowUp(run_id) => RunReason::FollowUp {
                        run_id,
                        because,
                        confirming: kind == FollowUpKind::ConfirmingImport,
                    },
                    Origin::Reconciliation => RunReason::Reconciliation { because },
                },
                chain: chain.to_vec(),
            }),
            Err(error) => self.reports.push(Report::NoProfile {
                ma: ma.to_owned(),
                follow_up: kind,
                error: error.clone(),
            }),
        }
    }

    /// Replaces the requests by an oscillation report when the chain is
    /// past the limit.
    fn bound(mut self, ma: &str, chain: Vec<ChainLink>, past_limit: bool) -> Self {
        if past_limit && !self.requests.is_empty() {
            tracing::warn!(
                ma,
                generations = chain.len(),
                "cycle oscillates; follow-ups not requested"
            );
            self.requests.clear();
            self.reports.push(Report::Oscillation {
                ma: ma.to_owned(),
                chain,
            });
        }
        self
    }

    fn extend(&mut self, other: Decision) {
        self.requests.extend(other.requests);
        self.reports.extend(other.reports);
    }
}

/// What a finished run still needs after its own later steps did their part.
#[derive(Default)]
struct Needs {
    delta_sync: Option<ImportCounters>,
    /// By target MA.
    exports: BTreeMap<String, OutboundCounters>,
    confirming_import: Option<ExportCounters>,
    /// References that waited for objects an export added, and (one per
    /// object) those to objects it deleted.
    references_ready: u64,
    /// References an export held back while it added or renamed objects:
    /// a chain of reports deeper than an export page orders, a cycle of
    /// managers made in one run. The next export sends them.
    held_after_adds: u64,
    /// Adds an import found already made in the system (accounts there
    /// before autosync): their adds are now updates, for the next export.
    found_existing: u64,
    /// Whether the export added, renamed or deleted objects (for the
    /// reason).
    added: bool,
    renamed: bool,
    deleted: bool,
}

/// A step that ran to its end (with or without object errors) covers the
/// follow-ups of earlier steps; a stopped one does not.
fn ran_to_end(status: RunStatus) -> bool {
    !status.is_stopped() && status != RunStatus::InProgress
}

fn needs_of(finished: &RunRecord, profile_steps: &[StepType]) -> Needs {
    let mut needs = Needs::default();
    for (i, step) in finished.steps.iter().enumerate() {
        if let Some(planned) = profile_steps.get(i)
            && *planned != step.step_type
        {
            tracing::warn!(
                ma = %finished.ma,
                profile = %finished.profile,
                step = i,
                planned = %planned,
                recorded = %step.step_type,
                "run record disagrees with the profile; trusting the record"
            );
        }
        if ran_to_end(step.status) {
            if step.step_type.is_sync() {
                needs.delta_sync = None;
            } else if step.step_type == StepType::Export {
                needs.exports.remove(&finished.ma);
                needs.held_after_adds = 0;
            } else if step.step_type.is_import() {
                needs.confirming_import = None;
            }
        }
        match &step.counters {
            StepCounters::Import(c) => {
                if c.staged() > 0 {
                    because::add_import(needs.delta_sync.get_or_insert_with(Default::default), c);
                }
                needs.found_existing += c.export_add_existing;
            }
            StepCounters::Sync(c) => {
                for (target, out) in c.outbound.iter().filter(|(_, o)| o.staged() > 0) {
                    because::add_outbound(needs.exports.entry(target.clone()).or_default(), out);
                }
            }
            StepCounters::Export(c) if c.activity() > 0 => {
                because::add_export(
                    needs.confirming_import.get_or_insert_with(Default::default),
                    c,
                );
                needs.references_ready += c.references_ready;
                needs.added |= c.adds + c.delete_adds > 0;
                needs.renamed |= c.renames > 0;
                needs.deleted |= c.deletes > 0;
                if c.adds + c.delete_adds + c.renames > 0 {
                    needs.held_after_adds += c.references_held;
                }
            }
            _ => {}
        }
    }
    needs
}

/// The follow-ups of a finished run, whatever its status (`stopped-*`
/// included: what it staged before it stopped still has to flow).
///
/// `profile_steps` are the steps the profile was meant to run; the record's
/// steps say what did run, and only a later step that ran to its end makes a
/// follow-up unnecessary. An export on a target is skipped when the view
/// shows the target's connector space with no pending export (a later sync
/// may have cancelled it). Follow-ups carry the finished run's causal chain;
/// a chain past `view.oscillation_limit` gives a [`Report::Oscillation`]
/// instead of requests.
pub fn decide(finished: &RunRecord, profile_steps: &[StepType], view: &ControllerView) -> Decision {
    let needs = needs_of(finished, profile_steps);
    let mut chain = view.chain(&finished.ma).to_vec();
    chain.push(ChainLink::of(finished));
    let origin = Origin::FollowUp(finished.id);
    let mut decision = Decision::default();

    if let Some(c) = &needs.delta_sync {
        let because = because::staged(c);
        decision.follow_up(
            view,
            &finished.ma,
            FollowUpKind::DeltaSync,
            because,
            origin,
            &chain,
        );
    }
    for (target, c) in &needs.exports {
        let target_cs = view.ma(target).and_then(|m| m.cs);
        if target_cs.is_some_and(|cs| cs.pending_export == 0) {
            tracing::debug!(ma = %target, "outbound changes counted but no pending export left; no export");
            continue;
        }
        let because = because::outbound(target, c);
        decision.follow_up(view, target, FollowUpKind::Export, because, origin, &chain);
    }
    let own_cs = view.ma(&finished.ma).and_then(|m| m.cs);
    if needs.found_existing > 0 && own_cs.is_none_or(|cs| cs.pending_export > 0) {
        let n = because::count(needs.found_existing, "add", "adds");
        decision.follow_up(
            view,
            &finished.ma,
            FollowUpKind::Export,
            format!("{n} found the object already there: sent as updates of what differs"),
            origin,
            &chain,
        );
    }
    if needs.references_ready > 0 {
        // A sync's end exports the references that waited for the adds.
        let n = because::count(needs.references_ready, "reference", "references");
        let made: Vec<&str> = [(needs.added, "added"), (needs.renamed, "renamed")]
            .into_iter()
            .filter_map(|(did, verb)| did.then_some(verb))
            .collect();
        let because = match (made.is_empty(), needs.deleted) {
            (false, false) => format!("{n} waited for objects this export {}", made.join(" or ")),
            (true, false) => format!("{n} waited for objects this export sent"),
            (true, true) => format!("{n} to objects this export deleted"),
            (false, true) => format!(
                "{n} to objects this export {} or deleted",
                made.join(" or ")
            ),
        };
        decision.follow_up(
            view,
            &finished.ma,
            FollowUpKind::DeltaSync,
            because,
            origin,
            &chain,
        );
    }
    if needs.held_after_adds > 0 {
        // Sent now that the objects they name are there (an add that
        // failed holds them again, and the next export adds nothing: the
        // chain ends).
        let n = because::count(needs.held_after_adds, "reference", "references");
        decision.follow_up(
            view,
            &finished.ma,
            FollowUpKind::Export,
            format!("{n} held back until the objects this export added or renamed were there"),
            origin,
            &chain,
        );
    }
    if let Some(c) = &needs.confirming_import {
        let because = because::exported(c);
        decision.follow_up(
            view,
            &finished.ma,
            FollowUpKind::ConfirmingImport,
            because,
            origin,
            &chain,
        );
    }
    let past_limit = chain.len() > view.oscillation_limit;
    decision.bound(&finished.ma, chain, past_limit)
}

/// What the connector spaces still need: pending imports → delta sync,
/// pending exports → export, unconfirmed exports → confirming import,
/// references ready to send (an export run outside the controller sent
/// the adds or deletes they wait for) → delta sync. Run at
/// start-up, after a run the controller did not start, and periodically.
/// Requests continue the causal chain of the MA's last run; an MA whose
/// chain is already at the oscillation limit is reported, not requested, so
/// that reconciliation does not restart a loop that was stopped.
pub fn reconcile(view: &ControllerView) -> Decision {
    let mut all = Decision::default();
    for (ma, m) in &view.mas {
        let Some(cs) = m.cs else { continue };
        let chain = m.chain.clone();
        let mut decision = Decision::default();
        let wanted = [
            (
                cs.pending_import,
                FollowUpKind::DeltaSync,
                "pending import",
                "pending imports",
            ),
            (
                cs.pending_export,
                FollowUpKind::Export,
                "pending export",
                "pending exports",
            ),
            (
                cs.unconfirmed_export,
                FollowUpKind::ConfirmingImport,
                "unconfirmed export",
                "unconfirmed exports",
            ),
            (
                cs.references_ready,
                FollowUpKind::DeltaSync,
                "object whose references are ready to send",
                "objects whose references are ready to send",
            ),
        ];
        for (n, kind, one, many) in wanted {
            if n > 0 {
                let because = because::pending(n, one, many);
                decision.follow_up(view, ma, kind, because, Origin::Reconciliation, &chain);
            }
        }
        let at_limit = chain.len() >= view.oscillation_limit;
        all.extend(decision.bound(ma, chain, at_limit));
    }
    all
}
