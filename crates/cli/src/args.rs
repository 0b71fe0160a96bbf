//! Command-line arguments (clap).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// autosync: identity synchronisation with event-driven automation.
#[derive(Debug, Parser)]
#[command(name = "autosync", version, about, long_about = None, after_help = crate::exit::HELP)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "autosync.toml",
        env = "AUTOSYNC_CONFIG"
    )]
    pub config: PathBuf,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and say what it defines.
    Check(JsonFlag),
    /// Run one run profile of one management agent and show its result.
    RunProfile(RunProfileArgs),
    /// Show the run history, most recent first; with a run's id, that run
    /// and its per-object errors.
    History(HistoryArgs),
    /// Show a management agent's connector space.
    Cs(CsArgs),
    /// Show metaverse objects.
    Mv(MvArgs),
    /// Run the service: triggers ask for imports, the controller runs every
    /// follow-up (delta sync, exports, confirming imports) until quiescent.
    /// Stops gracefully on SIGINT/SIGTERM, keeping its queue.
    Run(RunArgs),
    /// Show every management agent's state and queue (from the running
    /// service, else from the store).
    Status(JsonFlag),
    /// Queue a run profile on a management agent (through the running
    /// service, else in the store for the next start).
    Queue(QueueArgs),
    /// Propose a controller configuration (triggers, profiles by role) from
    /// the management agents and their run history, as TOML to paste.
    Discover(DiscoverArgs),
    /// Start the controller of an MA (or of every MA) in the running
    /// service: its triggers fire and its queue runs again.
    Start(ControlArgs),
    /// Stop the controller of an MA (or of every MA) in the running service:
    /// no new run starts; trigger requests wait in the queue, which is kept.
    Stop(ControlArgs),
    /// Cancel the run of an MA at its next safe point (running service).
    Cancel(MaControlArgs),
    /// Drop every queued request of an MA (running service).
    ClearQueue(MaControlArgs),
    /// Pause the triggers of an MA (or of every MA): follow-ups still run
    /// (running service).
    Pause(ControlArgs),
    /// Resume paused triggers (running service).
    Resume(ControlArgs),
    /// Let through what a threshold stopped on an MA: the syncs held by a
    /// staging threshold run, and its next export may exceed the deletion
    /// threshold, once (through the running service, else in the store;
    /// refused when nothing waits).
    Approve(ApproveArgs),
    /// Discard what a threshold stopped on an MA: the changes staged over a
    /// staging threshold (the next import reads the source again) and the
    /// pending deletes of an export stopped at the deletion threshold
    /// (through the running service, else in the store; refused when
    /// nothing waits).
    Reject(MaControlArgs),
    /// Maintenance mode of the running service: `on`, no run starts (running
    /// ones finish, triggers still queue); `off`, runs start again.
    Maintenance(MaintenanceArgs),
    /// Follow the running service's events (runs queued, started, their
    /// progress and end, MAs' state changes, notices), one line each,
    /// until interrupted or the service stops.
    Events(EventsArgs),
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print each event as its JSON (one object a line) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many events (for scripts and tests).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Also write the proposal (TOML) to this file.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Overwrite the --write file when it exists.
    #[arg(long, requires = "write")]
    pub force: bool,
    /// Print the proposal as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A control on one MA or, without one, on every MA.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// Management agent name (every MA when absent).
    pub ma: Option<String>,
    /// Print the service's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A control on one MA.
#[derive(Debug, Args)]
pub struct MaControlArgs {
    /// Management agent name.
    pub ma: String,
    /// Print the service's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    /// `on` or `off`.
    pub mode: OnOff,
    /// Print the service's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Management agent name.
    pub ma: String,
    /// Run profile name.
    pub profile: String,
    /// Run alone, whatever the run mode.
    #[arg(long)]
    pub exclusive: bool,
    /// Front of the MA's queue instead of the back.
    #[arg(long)]
    pub run_immediate: bool,
    /// Print the answer (request id, merged or not) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Start, reconcile, run what sources changed since their last import
    /// and everything that follows until nothing is left to do, then exit:
    /// 0 when every MA's profiles last ended well, 1 when one completed
    /// with per-object errors, 3 when one stopped (cron and systemd see
    /// it). An MA whose retries are used up is not waited for.
    #[arg(long)]
    pub once: bool,
    /// Address of the HTTP API (loopback only; port 0: any free port). Its
    /// URL and token go to `api.json` next to the store (mode 0600).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub api: std::net::SocketAddr,
    /// Do not serve the HTTP API.
    #[arg(long)]
    pub no_api: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunProfileArgs {
    /// Management agent name.
    pub ma: String,
    /// Run profile name (e.g. full-import, delta-sync, export).
    pub profile: String,
    /// Print the run record as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Never draw a progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show this run, with its per-object changes and errors, instead of
    /// the list.
    #[arg(value_name = "RUN_ID")]
    pub run: Option<i64>,
    /// Only runs of this management agent.
    #[arg(long)]
    pub ma: Option<String>,
    /// At most this many runs (with RUN_ID: changes, and errors).
    #[arg(long, default_value_t = 20, value_parser = at_least_one)]
    pub limit: usize,
    /// Skip this many runs (the most recent) first, or with RUN_ID that
    /// many changes: the next page starts at the offset the text output
    /// names.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: usize,
    /// With RUN_ID: only its changes, not its errors.
    #[arg(long, requires = "run", conflicts_with = "errors")]
    pub changes: bool,
    /// With RUN_ID: only its errors, not its changes.
    #[arg(long, requires = "run")]
    pub errors: bool,
    /// Print the runs (or the run with its changes and errors) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct CsFilterArgs {
    /// Only objects with a pending import.
    #[arg(long)]
    pub pending_import: bool,
    /// Only objects with a pending export.
    #[arg(long)]
    pub pending_export: bool,
    /// Only objects with an unconfirmed export.
    #[arg(long)]
    pub unconfirmed_export: bool,
    /// Only objects with an error, then the import errors of records that
    /// are no object (a new row the import could not read).
    #[arg(long)]
    pub errors: bool,
    /// Only objects with a reference that waits for the object it names
    /// (not there yet, or not joined), each with what it waits for.
    #[arg(long)]
    pub unresolved: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CsArgs {
    #[command(subcommand)]
    pub action: Option<CsAction>,
    /// Management agent name.
    #[arg(required = true)]
    pub ma: Option<String>,
    #[command(flatten)]
    pub filter: CsFilterArgs,
    /// Only the object with this anchor (compared exactly).
    #[arg(long, value_name = "VALUE", conflicts_with_all = ["dn", "offset", "CsFilterArgs"])]
    pub anchor: Option<String>,
    /// Only the objects with this DN (ignoring case; reads the whole
    /// connector space).
    #[arg(long, value_name = "DN", conflicts_with_all = ["offset", "CsFilterArgs"])]
    pub dn: Option<String>,
    /// At most this many objects.
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    pub limit: usize,
    /// Skip this many objects (in id order) first: the next page starts at
    /// the offset the text output names.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: usize,
    /// Print the connector-space objects as JSON (one array).
    #[arg(long)]
    pub json: bool,
}

/// What `autosync cs` can do besides showing a connector space.
#[derive(Debug, Subcommand)]
pub enum CsAction {
    /// Delete a management agent's connector space (one that left the
    /// configuration, or one to rebuild): every object is disconnected as
    /// if deleted in its system, so the metaverse deletion rule and
    /// deprovisioning apply, then removed.
    Delete(CsDeleteArgs),
    /// Make an explicit disconnector (never joined again: deprovisioned
    /// as `explicit-disconnector`, or its delete rejected) a normal
    /// disconnector: its MA's join rules meet it at that MA's next sync,
    /// and the provisioning that made it takes it back.
    Release(CsReleaseArgs),
}

#[derive(Debug, Args)]
pub struct CsReleaseArgs {
    /// Management agent name.
    pub ma: String,
    /// The object's anchor (compared exactly).
    pub anchor: String,
}

#[derive(Debug, Args)]
pub struct CsDeleteArgs {
    /// Management agent name (configured or not).
    pub ma: String,
    /// Delete it; without this, only say what would happen.
    #[arg(long)]
    pub yes: bool,
    /// Print the run record as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Never draw a progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct MvArgs {
    /// Only objects of this metaverse type.
    #[arg(long = "type")]
    pub object_type: Option<String>,
    /// Only objects whose attribute has this value: `attr=value` (any
    /// value of a multi-valued attribute; ignoring case unless
    /// --case-sensitive).
    #[arg(long)]
    pub filter: Option<String>,
    /// Compare the --filter value exactly, case included.
    #[arg(long, requires = "filter")]
    pub case_sensitive: bool,
    /// Only the metaverse object with this id.
    #[arg(long, value_name = "ID", conflicts_with_all = ["object_type", "filter", "offset", "connector"])]
    pub id: Option<i64>,
    /// Only the metaverse object joined to a connector-space object of this
    /// management agent, named by --anchor or --dn.
    #[arg(long, value_name = "MA", conflicts_with_all = ["object_type", "filter", "offset"])]
    #[arg(requires = "cs_key")]
    pub connector: Option<String>,
    /// With --connector: the anchor of its connector-space object.
    #[arg(long, value_name = "VALUE", group = "cs_key", requires = "connector")]
    pub anchor: Option<String>,
    /// With --connector: the DN of its connector-space object (ignoring
    /// case).
    #[arg(long, value_name = "DN", group = "cs_key", requires = "connector")]
    pub dn: Option<String>,
    /// At most this many objects.
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    pub limit: usize,
    /// Skip this many objects (in id order) first: the next page starts at
    /// the offset the text output names.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: usize,
    /// Print the metaverse objects as JSON (one array).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Management agent name.
    pub ma: String,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A `--limit`: 0 would show nothing and then say there is nothing after
/// the first 0 (a black-box review); refused, naming the smallest.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory as _;

    /// Every argument of every command says what it does in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn missing(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    out.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                missing(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
        let mut out = Vec::new();
        missing(&Cli::command(), "autosync", &mut out);
        assert!(
            out.is_empty(),
            "arguments without help text:\n{}",
            out.join("\n")
        );
    }
}
