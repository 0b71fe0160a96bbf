//! Durations as people write them (`"1h30m"`): the parser lives in
//! `autosync_model::duration`, shared with every other crate that reads a
//! duration; re-exported here for the triggers' users.

pub use autosync_model::duration::{DurationError, HumanDuration, format_duration, parse_duration};
