//! Plain types shared by every autosync crate: attribute values, connector-space
//! and metaverse objects, the definitions that configuration produces, run
//! records with MIM's counters and statuses; and the small helpers every
//! crate's messages and settings share: "did you mean" (`suggest`) and
//! durations as people write them (`duration`). Nothing here does I/O.

pub mod change;
pub mod compare;
pub mod def;
pub mod dn;
pub mod duration;
pub mod object;
pub mod repeated;
pub mod run;
pub mod secret;
pub mod suggest;
pub mod threshold;
pub mod value;

pub use change::{AttrChange, ChangeKind, RunChange};
pub use compare::ValueOrder;
pub use def::*;
pub use object::*;
pub use run::*;
pub use threshold::{DeletionThreshold, Exceeded, Limit, StagingThresholds};
pub use value::{AttrChanges, Attributes, Value, ValueChanges, ValueDelta};
