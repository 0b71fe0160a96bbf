//! Engine tests against a real SQLite store and the real connectors (files,
//! SQLite, and the LDAP connector against the testkit's slapd).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ambiguous_names;
mod confirm;
mod conflict;
mod converge;
mod cs_delete;
mod dn_forms;
mod export;
mod extensions;
mod filters;
mod fixture;
mod flow_reads;
mod history;
mod import;
mod import_anchorless;
mod import_dn;
mod import_errors;
mod joins;
mod ldap_cut;
mod ldap_delta;
mod ldap_swap;
mod passwords;
mod refs;
mod refs_export;
mod rows;
mod rules_applied;
mod runs;
mod scenario;
mod scope;
mod staging_lift;
mod store_full;
mod sync;
mod sync_lease;
mod target_gone;
mod thresholds;
mod types;
