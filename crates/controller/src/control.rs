//! Operators' controls of a running service: start/stop (per MA or all),
//! cancel a run, clear a queue, pause/resume triggers, approve/reject what
//! a threshold stopped, and maintenance mode. The CLI and the HTTP API send
//! them to the service, whose state machine
//! ([`Event::Control`](crate::machine::Event::Control)) answers with a
//! sentence saying what it did, or an error naming what was wrong.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One operator action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Control {
    /// Start the controller of an MA (or of every MA): its triggers fire and
    /// its queue runs again. Also clears the `failed` state.
    Start,
    /// Stop the controller of an MA (or of every MA): no new run starts;
    /// its triggers' requests wait in the queue, which is kept; a running
    /// profile finishes.
    Stop,
    /// Cancel the MA's running profile at its next safe point.
    Cancel,
    /// Drop every queued request of the MA.
    ClearQueue,
    /// Pause the triggers of an MA (or of every MA): follow-ups still run.
    Pause,
    /// Resume paused triggers.
    Resume,
    /// Let what a threshold stopped flow: the staged changes of an import
    /// over a staging threshold are synchronised, an export stopped at the
    /// deletion threshold runs again.
    Approve,
    /// Discard what a staging threshold stopped: the staged changes are
    /// dropped and the next import reads the source again.
    Reject,
    /// Maintenance mode on: no run starts anywhere (running ones finish);
    /// triggers still queue.
    Maintenance,
    /// Maintenance mode off.
    EndMaintenance,
}

impl Control {
    /// Every action, for help texts and parsing.
    pub const ALL: [Control; 10] = [
        Control::Start,
        Control::Stop,
        Control::Cancel,
        Control::ClearQueue,
        Control::Pause,
        Control::Resume,
        Control::Approve,
        Control::Reject,
        Control::Maintenance,
        Control::EndMaintenance,
    ];

    /// The action's name on the CLI and in the API (`clear-queue`).
    pub fn name(self) -> &'static str {
        match self {
            Control::Start => "start",
            Control::Stop => "stop",
            Control::Cancel => "cancel",
            Control::ClearQueue => "clear-queue",
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Approve => "approve",
            Control::Reject => "reject",
            Control::Maintenance => "maintenance",
            Control::EndMaintenance => "end-maintenance",
        }
    }

    /// The action by name.
    pub fn from_name(name: &str) -> Option<Control> {
        Control::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether the action needs an MA (else it may take one or none).
    pub fn needs_ma(self) -> bool {
        matches!(
            self,
            Control::Cancel | Control::ClearQueue | Control::Approve | Control::Reject
        )
    }

    /// Whether the action would start work (runs, or an engine call):
    /// refused while the service stops gracefully. `stop`, `cancel`,
    /// `clear-queue`, `pause` and `maintenance` only hold or drop work.
    pub fn starts_work(self) -> bool {
        matches!(
            self,
            Control::Start
                | Control::Resume
                | Control::Approve
                | Control::Reject
                | Control::EndMaintenance
        )
    }

    /// Whether the action applies to the whole service only.
    pub fn global_only(self) -> bool {
        matches!(self, Control::Maintenance | Control::EndMaintenance)
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_should_round_trip_and_match_serde() {
        for c in Control::ALL {
            assert_eq!(Control::from_name(c.name()), Some(c));
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.name()));
        }
        assert_eq!(Control::from_name("explode"), None);
    }
}
