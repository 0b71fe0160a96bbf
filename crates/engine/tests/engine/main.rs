//! Engine tests against a real SQLite store and the real file connectors.

mod fixture;
mod import;
mod scenario;
mod sync;
mod export;
mod runs;
mod converge;
