//! Plain types shared by every autosync crate: attribute values, connector-space
//! and metaverse objects, the definitions that configuration produces, run
//! records with MIM's counters and statuses. Nothing here does I/O.

pub mod compare;
pub mod def;
pub mod object;
pub mod run;
pub mod threshold;
pub mod value;

pub use compare::ValueOrder;
pub use def::*;
pub use object::*;
pub use run::*;
pub use threshold::{DeletionThreshold, Exceeded, Limit, StagingThresholds};
pub use value::{AttrChanges, Attributes, Value};
