//! Change detection: how a connector can tell that its system's data
//! changed, so that an import is asked for soon after, and the functions a
//! connector type lends to trigger scripts.
//!
//! A factory answers [`ConnectorFactory::change_detection`] from its
//! validated settings, **without contacting the system**. `autosync
//! discover` proposes a trigger from the answer and the service takes its
//! default triggers from it (a file watch's default file, a change poll's
//! probe), so neither knows any connector type: a new connector type says
//! here what it offers and nothing else changes.
//!
//! The offers:
//!
//! - a **file watch** on the file that holds the data (CSV, JSON lines),
//!   with the connector's reader of that file for a watch's
//!   `ignore_attributes` ([`FileContent`]);
//! - a **poll** of a value that moves whenever the data changed (a
//!   changelog's last sequence number, the largest change-tracking value):
//!   the connector provides the [`ChangeProbe`], the trigger asks for an
//!   import when the token it returns moved;
//! - a **notification channel** (an LDAP persistent search, later a
//!   PostgreSQL `LISTEN`): the connector provides a [`ChangeSource`] whose
//!   [`ChangeListener`]s are blocking streams of [`ChangeEvent`]s, each
//!   with the attributes that changed when the system tells them; the
//!   `change-notification` trigger runs one on a thread and asks for an
//!   import at each change.
//!
//! Each offer carries the sentence `autosync discover` prints about it.
//! Sentences and shown paths quote settings only as the configuration file
//! writes them (the `shown` table: `${ENV}` references and `X_file` keys as
//! they are), never the values those stand for.
//!
//! [`ConnectorFactory::change_detection`]: crate::ConnectorFactory::change_detection

use crate::ConnectorError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What a connector offers to notice changes of its system, best first.
#[derive(Clone, Debug, Default)]
pub struct ChangeDetection {
    pub offers: Vec<ChangeOffer>,
    /// Why discovery proposes none of the offers, when no offer is
    /// [`proposed`](ChangeOffer::proposed): a sentence naming the
    /// connector, e.g. "sqlite connector without `delta` (...)". `None`:
    /// "<type> connector: no change notification".
    pub why_none: Option<String>,
}

impl ChangeDetection {
    /// Nothing offered, and why.
    pub fn none(why: impl Into<String>) -> Self {
        ChangeDetection {
            offers: Vec::new(),
            why_none: Some(why.into()),
        }
    }

    /// The offer discovery proposes: the first one marked so.
    pub fn proposed(&self) -> Option<&ChangeOffer> {
        self.offers.iter().find(|o| o.proposed)
    }

    /// The connector's file watch, proposed or not: a file-watch trigger
    /// without `path` watches its file.
    pub fn file_watch(&self) -> Option<&FileWatchOffer> {
        self.offers.iter().find_map(|o| match &o.kind {
            ChangeOfferKind::FileWatch(w) => Some(w),
            _ => None,
        })
    }

    /// The connector's notification channel: what a change-notification
    /// trigger listens to.
    pub fn notification(&self) -> Option<&NotificationOffer> {
        self.offers.iter().find_map(|o| match &o.kind {
            ChangeOfferKind::Notification(n) => Some(n),
            _ => None,
        })
    }

    /// The connector's change poll: what a change-poll trigger asks.
    pub fn poll(&self) -> Option<&PollOffer> {
        self.offers.iter().find_map(|o| match &o.kind {
            ChangeOfferKind::Poll(p) => Some(p),
            _ => None,
        })
    }
}

/// One way the connector can notice changes.
#[derive(Clone, Debug)]
pub struct ChangeOffer {
    pub kind: ChangeOfferKind,
    /// Discovery proposes it: it sees every change soon after it is made.
    /// An offer that misses changes (a database file whose writes land in
    /// another file first) is still offered, for a watch configured by
    /// hand and for the service's default, but not proposed.
    pub proposed: bool,
    /// What it is, for people, naming the connector: `csv connector: a
    /// file watch on data/hr.csv`. Discovery completes it with what is
    /// asked for and when.
    pub sentence: String,
}

/// The kinds of change detection.
#[derive(Clone, Debug)]
pub enum ChangeOfferKind {
    FileWatch(FileWatchOffer),
    Poll(PollOffer),
    Notification(NotificationOffer),
}

/// The data is a file: a change of the file is a change of the data.
#[derive(Clone, Debug)]
pub struct FileWatchOffer {
    /// The file, resolved against the configuration's folder.
    pub path: PathBuf,
    /// The file as the configuration writes it (for a proposed trigger's
    /// `path`: `${ENV}` references kept); `None` when the file does not
    /// write it as text (a trigger then takes the default: this file).
    pub shown_path: Option<String>,
    /// How the connector reads the file, so that a change touching only
    /// ignored attributes asks for nothing. `None`: the file's attributes
    /// cannot be told apart; a change is compared whole.
    pub content: Option<Arc<dyn FileContent>>,
}

/// A value the connector can poll: it moves whenever the data changed.
#[derive(Clone, Debug)]
pub struct PollOffer {
    pub probe: Arc<dyn ChangeProbe>,
}

/// A channel on which the system announces changes.
#[derive(Clone, Debug)]
pub struct NotificationOffer {
    /// What is listened to, for people, e.g. `a content-synchronisation
    /// search of ou=people,dc=example,dc=org`.
    pub channel: String,
    /// Opens listeners on it.
    pub source: Arc<dyn ChangeSource>,
}

/// Opens listeners on a system's change notifications.
pub trait ChangeSource: Send + Sync + fmt::Debug {
    /// Connects and starts listening; blocking (called from a blocking
    /// thread). `attributes`: the caller wants to know which attributes
    /// each change touched (it ignores some): a source that can tell them
    /// only by reading more (an LDAP directory keeps no such record for a
    /// content-synchronisation search) does so then, and only then.
    fn listen(&self, attributes: bool) -> Result<Box<dyn ChangeListener>, ConnectorError>;
}

/// A running listener: a blocking stream of changes, from the moment
/// [`ChangeSource::listen`] returned.
pub trait ChangeListener: Send {
    /// The next change, waiting at most `wait`; `Ok(None)` when none came
    /// in that time (so the caller can stop between waits). An error
    /// means the listener is broken (the connection lost, a message it
    /// cannot read): drop it and open another; changes made meanwhile
    /// were not told.
    fn next_change(&mut self, wait: Duration) -> Result<Option<ChangeEvent>, ConnectorError>;
}

/// One change a listener noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEvent {
    /// What changed, for people (an entry's DN).
    pub object: String,
    /// The attributes the change touched, when known; `None` when not (an
    /// add, a delete, a rename, or a system that does not say): such a
    /// change is never ignored.
    pub attributes: Option<Vec<String>>,
}

/// Reads a token that moves whenever the system's data changed.
pub trait ChangeProbe: Send + Sync + fmt::Debug {
    /// The current token (opaque: only compared with the previous one), or
    /// `None` when there is nothing to compare yet (an empty changelog).
    /// Called from a blocking thread; reads, never writes.
    fn token(&self) -> Result<Option<String>, ConnectorError>;
}

/// Reads a watched file as its connector does.
pub trait FileContent: Send + Sync + fmt::Debug {
    /// A hash of the file's records leaving out the attributes `ignored`
    /// accepts (column names of a CSV file, keys of a JSON line), or why
    /// the file cannot be read. Any other change, a record added or
    /// removed included, changes it. Called from a blocking thread.
    fn fingerprint(&self, ignored: &dyn Fn(&str) -> bool) -> Result<u64, String>;
}

/// A value a script function returns.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptValue {
    /// No value (no row, NULL).
    Unit,
    Integer(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A function a connector type lends to trigger scripts, e.g. the SQLite
/// connector's `sql_scalar(sqlite_path, query)`: text arguments in, one
/// value out, nothing written.
#[derive(Clone, Copy, Debug)]
pub struct ScriptFunction {
    /// The name scripts call it by.
    pub name: &'static str,
    /// Its parameters' names (one to three), as the documentation writes
    /// them.
    pub params: &'static [&'static str],
    /// What it returns, for the documentation.
    pub doc: &'static str,
    /// The function: the configuration's folder (relative paths resolve
    /// against it) and the arguments; an error is the script's error (it
    /// names the function).
    pub call: fn(base_dir: &Path, args: &[&str]) -> Result<ScriptValue, String>,
}
