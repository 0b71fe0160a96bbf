//! Integration tests of the shipped connectors against real files and real
//! SQLite databases in temporary folders: the shared compliance suite, then
//! each connector's own behaviour (per-record errors, atomic export,
//! watermarks, delta, constraints, injection), and what each offers to
//! notice changes (`change`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod change;
mod common;
mod csv;
mod csv_quotes;
mod fuzz;
mod fuzz_files;
mod jsonl;
mod schema;
mod sqlite;
