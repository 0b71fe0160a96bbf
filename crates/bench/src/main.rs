//! The benchmark program. One entry point, one JSON object per run:
//! `{"scenario", "objects", "machine", "results": {...}}`. Figures are
//! measured here, never in tests. See BENCHMARKS.md for the latest figures.

mod controller_scenarios;
mod engine_refs;
mod engine_scenario;
mod group_change;
mod ldap_export;
mod ldap_propagation;
mod ldap_raw;
mod machine;
mod service_proc;
mod status_scenario;
mod workload;

use clap::{Args, Parser, Subcommand};
use controller_scenarios::Common;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use workload::Workload;

#[derive(Debug, Parser)]
#[command(name = "autosync-bench", about = "autosync benchmarks")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N people from a CSV source: full import, full sync (join + projection
    /// + 10 flows + provisioning to one target), export to a SQLite target.
    Engine {
        /// Number of people.
        #[arg(long, default_value_t = 100_000)]
        objects: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Keep the working folder (printed) instead of deleting it.
        #[arg(long)]
        keep: bool,
    },
    /// A group of N members in a SQLite source (child table, changelog):
    /// one member changed, then every member replaced, each propagated
    /// (delta import, delta sync, export to a SQLite target) and timed.
    GroupChange {
        /// Members of the group (2N people).
        #[arg(long, default_value_t = 500_000)]
        objects: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Keep the working folder (printed) instead of deleting it.
        #[arg(long)]
        keep: bool,
    },
    /// The quickstart under `autosync run`: K changes to data/hr.csv (add,
    /// change, terminate), one every interval; time from each write to the
    /// change showing in both targets; run profiles; follow-up overhead.
    Quickstart {
        #[command(flatten)]
        service: ServiceArgs,
        /// Number of changes.
        #[arg(long, default_value_t = 60)]
        changes: usize,
        /// Time between two changes, in ms.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
    },
    /// The service on N people (the `engine` scenario's folder, its work
    /// done): latency of `GET /api/v1/status` during a full sync of every
    /// object, and while another process holds the store's write lock.
    StatusUnderLoad {
        /// Number of people.
        #[arg(long, default_value_t = 1_000_000)]
        objects: u64,
        /// Print one JSON object instead of indented JSON.
        #[arg(long)]
        json: bool,
        /// Keep the working folder (printed) instead of deleting it.
        #[arg(long)]
        keep: bool,
        /// The `autosync` binary (default: $AUTOSYNC, else next to this program).
        #[arg(long)]
        autosync: Option<PathBuf>,
    },
    /// An LDAP MA's export (N adds, then N modifies, then N deletes)
    /// against `ldapadd`/`ldapmodify`/`ldapdelete` of one LDIF file of the
    /// same entries, on one private slapd, in the same run.
    LdapExport {
        /// Number of entries.
        #[arg(long, default_value_t = 10_000)]
        objects: u64,
        /// Rounds of the six phases (the figures are the medians).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Print one JSON object instead of indented JSON.
        #[arg(long)]
        json: bool,
        /// Keep the working folder (printed) instead of deleting it.
        #[arg(long)]
        keep: bool,
    },
    /// The service with an LDAP source (change-notification trigger) and a
    /// SQLite target: latency from a modify in slapd to the value in the
    /// target, at a steady 20 changes/s, then a burst.
    LdapPropagation {
        /// Length of the steady phase, in seconds.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Modifies of the burst (one per entry; the directory holds this
        /// many people).
        #[arg(long, default_value_t = 10_000)]
        burst: u64,
        /// Changes per second of the steady phase.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Who sends the burst: `ldapmodify` (the tool that measures the
        /// raw rate, one LDIF file) or `ldap3` (this program's writer).
        #[arg(long, value_enum, default_value_t = ldap_propagation::BurstWriter::Ldapmodify)]
        burst_writer: ldap_propagation::BurstWriter,
        /// Print one JSON object instead of indented JSON.
        #[arg(long)]
        json: bool,
        /// Keep the working folder (printed) instead of deleting it.
        #[arg(long)]
        keep: bool,
        /// The `autosync` binary (default: $AUTOSYNC, else next to this program).
        #[arg(long)]
        autosync: Option<PathBuf>,
    },
    /// The service with 3 MAs, each with a file watch, and no change: run
    /// profiles executed and CPU used over the window.
    Idle {
        #[command(flatten)]
        service: ServiceArgs,
        /// Length of the window, in seconds.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
    },
    /// The same steady changes to data/hr.csv once under the service and
    /// once under a fixed-order scheduler (every interval: import all, sync
    /// all, export all) on the same engine.
    VsFixedOrder {
        #[command(flatten)]
        service: ServiceArgs,
        /// Number of changes.
        #[arg(long, default_value_t = 60)]
        changes: usize,
        /// Time between two changes, in ms (not a divisor of the fixed
        /// interval, so that changes land at every phase of its cycle).
        #[arg(long, default_value_t = 700)]
        interval_ms: u64,
        /// The fixed-order scheduler's interval, in ms.
        #[arg(long, default_value_t = 5000)]
        fixed_interval_ms: u64,
    },
}

/// Options of the scenarios that start the service.
#[derive(Debug, Args)]
struct ServiceArgs {
    /// Print one JSON object instead of indented JSON.
    #[arg(long)]
    json: bool,
    /// Keep the working folders (printed) instead of deleting them.
    #[arg(long)]
    keep: bool,
    /// The `autosync` binary (default: $AUTOSYNC, else next to this program).
    #[arg(long)]
    autosync: Option<PathBuf>,
    /// The quickstart folder to copy (default: examples/quickstart of this
    /// repository).
    #[arg(long)]
    example: Option<PathBuf>,
    /// A change not visible in both targets after this many seconds fails
    /// the benchmark.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
}

impl ServiceArgs {
    fn common(&self) -> anyhow::Result<Common> {
        Ok(Common {
            autosync: service_proc::find_binary(self.autosync.clone())?,
            example: self
                .example
                .clone()
                .unwrap_or_else(controller_scenarios::default_example),
            keep: self.keep,
        })
    }

    fn workload(&self, changes: usize, interval_ms: u64, in_place: bool) -> Workload {
        Workload {
            changes,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_secs(self.timeout_s),
            poll: Duration::from_millis(1),
            in_place,
        }
    }
}

/// Prints the report of a scenario.
fn report(
    scenario: &str,
    objects: u64,
    json: bool,
    load_before: Option<[f64; 3]>,
    results: serde_json::Value,
    bars: serde_json::Value,
) -> anyhow::Result<()> {
    report_on(
        scenario,
        objects,
        json,
        machine::describe(),
        load_before,
        results,
        bars,
    )
}

/// Prints the report of a scenario, with `described` as its machine.
fn report_on(
    scenario: &str,
    objects: u64,
    json: bool,
    mut described: serde_json::Value,
    load_before: Option<[f64; 3]>,
    results: serde_json::Value,
    bars: serde_json::Value,
) -> anyhow::Result<()> {
    described["load_average_before"] = serde_json::json!(load_before);
    described["load_average_after"] = serde_json::json!(machine::load_average());
    let mut out = serde_json::json!({
        "scenario": scenario,
        "objects": objects,
        "machine": described,
        "results": results,
    });
    if !bars.is_null() {
        out["bars"] = bars;
    }
    let text = if json {
        serde_json::to_string(&out)?
    } else {
        serde_json::to_string_pretty(&out)?
    };
    // The report is the program's output.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.scenario {
        Scenario::Engine {
            objects,
            json,
            keep,
        } => {
            let load_before = machine::load_average();
            let cpu_before = machine::cpu_reference_ms();
            let results = engine_scenario::run(objects, keep)?;
            let bars = engine_scenario::bars(&results, objects);
            let mut described = machine::describe();
            described["cpu_reference_ms"] =
                serde_json::json!([cpu_before, machine::cpu_reference_ms()]);
            report_on(
                "engine",
                objects,
                json,
                described,
                load_before,
                results,
                bars,
            )?;
        }
        Scenario::Quickstart {
            service,
            changes,
            interval_ms,
        } => {
            let common = service.common()?;
            let objects = controller_scenarios::people(&common)? as u64;
            let load_before = machine::load_average();
            let w = service.workload(changes, interval_ms, true);
            let (results, bars) = controller_scenarios::quickstart(&common, w)?;
            report(
                "quickstart",
                objects,
                service.json,
                load_before,
                results,
                bars,
            )?;
        }
        Scenario::GroupChange {
            objects,
            json,
            keep,
        } => {
            let load_before = machine::load_average();
            let results = group_change::run(objects, keep)?;
            let bars = group_change::bars(&results);
            report("group-change", objects, json, load_before, results, bars)?;
        }
        Scenario::StatusUnderLoad {
            objects,
            json,
            keep,
            autosync,
        } => {
            let bin = service_proc::find_binary(autosync)?;
            let load_before = machine::load_average();
            let (results, bars) = status_scenario::run(&bin, objects, keep)?;
            report(
                "status-under-load",
                objects,
                json,
                load_before,
                results,
                bars,
            )?;
        }
        Scenario::LdapExport {
            objects,
            rounds,
            json,
            keep,
        } => {
            let load_before = machine::load_average();
            let results = ldap_export::run(objects, rounds, keep)?;
            let bars = ldap_export::bars(&results);
            report("ldap-export", objects, json, load_before, results, bars)?;
        }
        Scenario::LdapPropagation {
            seconds,
            burst,
            rate,
            burst_writer,
            json,
            keep,
            autosync,
        } => {
            let bin = service_proc::find_binary(autosync)?;
            let load_before = machine::load_average();
            let args = ldap_propagation::Args {
                seconds,
                burst,
                rate,
                burst_writer,
                keep,
            };
            let (results, bars) = ldap_propagation::run(&bin, &args)?;
            report("ldap-propagation", burst, json, load_before, results, bars)?;
        }
        Scenario::Idle { service, seconds } => {
            let common = service.common()?;
            let objects = controller_scenarios::people(&common)? as u64;
            let load_before = machine::load_average();
            let (results, bars) = controller_scenarios::idle(&common, seconds)?;
            report("idle", objects, service.json, load_before, results, bars)?;
        }
        Scenario::VsFixedOrder {
            service,
            changes,
            interval_ms,
            fixed_interval_ms,
        } => {
            let common = service.common()?;
            let objects = controller_scenarios::people(&common)? as u64;
            let load_before = machine::load_average();
            let w = service.workload(changes, interval_ms, false);
            let (results, bars) = controller_scenarios::vs_fixed_order(
                &common,
                w,
                Duration::from_millis(fixed_interval_ms),
            )?;
            report(
                "vs-fixed-order",
                objects,
                service.json,
                load_before,
                results,
                bars,
            )?;
        }
    }
    Ok(())
}
