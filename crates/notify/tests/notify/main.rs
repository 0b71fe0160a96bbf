#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! autosync-notify: configuration, suppression, messages, and delivery to a
//! real SMTP server (aiosmtpd) and real HTTP servers on loopback.

mod config;
mod delivery;
mod peers;
mod render;
mod suppression;
