//! Loading configuration files end to end: real files in temporary folders,
//! a registry of connector factories (test data: they validate settings the
//! way file connectors do, and build nothing), and the rendered diagnostics
//! snapshotted as users see them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod errors;
mod extensions;
mod fuzz;
mod loading;
mod mv_reads;
mod ref_targets;
mod references;
mod schemas;
mod support;
mod write_only;
