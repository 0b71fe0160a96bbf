//! Where the engine keeps its state: connector spaces, the metaverse,
//! watermarks, run history and approvals, behind the [`Store`] trait, with
//! SQLite (WAL) as the embedded implementation. A PostgreSQL store for high
//! availability implements the same trait later.
//!
//! The store knows nothing of connectors, rules or triggers. Every write
//! happens in a [`StoreTxn`]: either all of it is durable after `commit`, or
//! none of it (a crash, a dropped transaction). That is what makes steps
//! crash-safe: a batch of staged changes and the watermark that covers them
//! are committed together.
//!
//! Built on it: [`lease`] (one holder at a time of a named claim, across
//! processes and hosts, with a heartbeat). The `conformance` feature adds
//! the suite every `Store` implementation passes (`conformance`).

mod api;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod lease;
pub mod sqlite;

pub use api::*;
pub use sqlite::{SqliteOptions, SqliteStore};
