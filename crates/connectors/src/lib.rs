//! The connectors that ship with autosync, one folder each: CSV files
//! ([`csv`]), JSON Lines files ([`jsonl`]) and SQLite tables ([`sqlite`]).
//! Each has a [`ConnectorFactory`](autosync_connector::ConnectorFactory)
//! whose settings are the MA's `connector` table, validated in full (one
//! error per problem) before anything is built; [`register_all`] adds them
//! all to a registry.

mod change;
pub mod csv;
pub mod file;
pub mod jsonl;
pub mod settings;
pub mod sqlite;
mod watch;

use autosync_connector::Registry;

/// Register every connector type of this crate (`csv`, `jsonl`, `sqlite`).
pub fn register_all(registry: &mut Registry) {
    registry.register(Box::new(csv::CsvFactory));
    registry.register(Box::new(jsonl::JsonlFactory));
    registry.register(Box::new(sqlite::SqliteFactory));
}
