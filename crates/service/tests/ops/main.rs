//! End-to-end tests of the controller's operations through the real
//! Service + Engine + SQLite store + file/SQLite connectors on copies of
//! the quickstart: retries and the failed state, staging thresholds,
//! operators' controls, hooks, reload, notifications, triggers fed by
//! the connector (`changes`), the published event stream (`events`), and
//! one test per known problem of the original (`known_problems`).
//! Peers (webhook receiver, SMTP server) are real, on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/people.rs"]
mod people;
mod support;

mod changes;
mod controls;
mod email;
mod events;
mod hooks;
mod known_problems;
mod ldap_down;
mod reload;
mod retries;
mod stop_api;
mod store_stop_notice;
mod thresholds;
