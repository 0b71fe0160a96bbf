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
    mod closed_stderr;
    mod commands;
    mod controls;
    mod crash;
    mod cs_states;
    mod discover;
    mod docs;
    mod events;
    mod h1_cli_fixes;
    mod h2_ldap_check;
    mod h4_history_rename;
    mod h6_discover_status;
    mod history;
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
