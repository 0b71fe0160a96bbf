//! Integration tests of the `autosync` binary: one test binary for the
//! crate (modules below), driving the real binary on real files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../service/tests/common/people.rs"]
mod people;

mod cli {
    pub mod support;

    mod cancel;
    mod check;
    mod check_ldap;
    mod check_ldap_aliases_and_filter_values;
    mod closed_stderr;
    mod commands;
    mod controls;
    mod crash;
    mod cs_states;
    mod discover;
    mod discover_secrets_and_status_hints;
    mod dn_lookup_and_maintenance_off;
    mod docs;
    mod events;
    mod history;
    mod history_renames;
    mod hr_to_ldap;
    mod killed;
    mod killed_service;
    mod listing;
    mod operator;
    mod quickstart;
    mod reload;
    mod reload_added;
    mod safety;
    mod secrets;
    mod service;
    mod store_gone;
    mod sync_lease;
}
