//! The controller core's tests, in one binary: the cycle (`decide`),
//! reconciliation, profile resolution, queues, the scheduler, the state
//! machine and what it publishes, and property tests that drive them
//! together in a simulated loop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod blackouts;
mod cycle;
mod deletion_stop_gone;
mod machine;
mod machine_life;
mod profiles;
mod properties;
mod published;
mod queues;
mod reconciliation;
mod reload_answers;
mod scheduling;
mod sim;
mod support;
mod trigger_status;
