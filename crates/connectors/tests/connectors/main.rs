//! Integration tests of the shipped connectors against real files, real
//! SQLite databases in temporary folders and a real OpenLDAP server (the
//! testkit's slapd, one for the binary): the shared compliance suite, then
//! each connector's own behaviour (per-record errors, atomic export,
//! watermarks, delta, constraints, injection), what each offers to
//! notice changes (`change`), and that an export changing nothing leaves
//! its target untouched (`untouched`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod blank_anchor;
mod change;
mod common;
mod csv;
mod csv_group;
mod csv_quotes;
mod fuzz;
mod fuzz_files;
mod jsonl;
mod ldap;
mod ldap_delta;
mod ldap_filter_values;
mod ldap_listen;
mod ldap_parents;
mod ldap_pipeline;
mod ldap_pool;
mod ldap_schema;
mod ldap_spelling;
mod ldap_support;
mod ldap_swap;
mod schema;
mod sqlite;
mod sqlite_untyped;
mod untouched;
mod unwritable;
