//! The benchmark program. One entry point, one JSON object per run:
//! `{"scenario", "objects", "machine", "results": {...}}`. Figures are
//! measured here, never in tests. See BENCHMARKS.md for the latest figures.

mod engine_scenario;
mod machine;

use clap::{Parser, Subcommand};
use std::io::Write as _;

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
            let report = engine_scenario::run(objects, keep)?;
            let mut described = machine::describe();
            described["load_average_before"] = serde_json::json!(load_before);
            described["load_average_after"] = serde_json::json!(machine::load_average());
            let bars = engine_scenario::bars(&report, objects);
            let out = serde_json::json!({
                "scenario": "engine",
                "objects": objects,
                "machine": described,
                "results": report,
                "bars": bars,
            });
            let text = if json {
                serde_json::to_string(&out)?
            } else {
                serde_json::to_string_pretty(&out)?
            };
            // The report is the program's output.
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}")?;
        }
    }
    Ok(())
}
