//! The benchmark program. One entry point, one JSON object per run:
//! `{"scenario", "objects", "machine", "results": {...}}`. Figures are
//! measured here, never in tests. See BENCHMARKS.md for the latest figures.

mod engine_scenario;
mod machine;

use clap::{Parser, Subcommand};

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
        Scenario::Engine { objects, json, keep } => {
            let report = engine_scenario::run(objects, keep)?;
            let out = serde_json::json!({
                "scenario": "engine",
                "objects": objects,
                "machine": machine::describe(),
                "results": report,
            });
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
        }
    }
    Ok(())
}
