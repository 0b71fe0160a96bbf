//! What the connector of a trigger's MA provides to the trigger (a change
//! poll's probe, the reader of a watched file), held in the trigger's
//! configuration next to the keys read from the file. It is not a key of
//! the file: whoever reads the configuration fills it from the MA
//! connector's offers (`autosync_connector::ChangeDetection`), and
//! validation says when a trigger needs one its connector does not offer.

use std::fmt;
use std::sync::Arc;

/// Something provided by the MA's connector, or nothing. Two are equal when
/// they are the same object (or both absent).
pub struct Provided<T: ?Sized>(pub Option<Arc<T>>);

impl<T: ?Sized> Provided<T> {
    pub fn new(value: Arc<T>) -> Self {
        Provided(Some(value))
    }

    pub fn get(&self) -> Option<&Arc<T>> {
        self.0.as_ref()
    }
}

impl<T: ?Sized> Default for Provided<T> {
    fn default() -> Self {
        Provided(None)
    }
}

impl<T: ?Sized> Clone for Provided<T> {
    fn clone(&self) -> Self {
        Provided(self.0.clone())
    }
}

impl<T: ?Sized> PartialEq for Provided<T> {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Provided<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "provided({v:?})"),
            None => f.write_str("not provided"),
        }
    }
}
