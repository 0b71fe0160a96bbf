//! Sessions kept open between runs.
//!
//! Opening a session costs a connection, a bind, and reads of the root DSE
//! and the subschema entry: several milliseconds, most of a one-change
//! delta import's time. A connector that ends hands its session back here
//! (when it is still open), and the next connector of the same MA with the
//! same connection settings takes it, after one round trip that proves the
//! connection still answers (a server may have closed an idle connection).
//!
//! At most one idle session per MA and settings; a session idle longer
//! than [`IDLE_MAX`] or older than [`AGE_MAX`] is closed rather than
//! reused, so the server's schema and controls are read again now and
//! then, and no connection is held for an MA no longer run.

use super::config::{Bind, LdapSettings, Transport};
use super::session::Session;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// An idle session not taken for this long is closed.
pub const IDLE_MAX: Duration = Duration::from_secs(120);
/// A session opened this long ago is closed when it comes back.
pub const AGE_MAX: Duration = Duration::from_secs(15 * 60);

/// What a session depends on: a session is reused only by a connector of
/// the same MA with the same values for all of these (a reload that
/// changes the URL, the bind or TLS opens a new one).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    ma: String,
    url: String,
    transport: u8,
    start_tls: bool,
    ca_file: Option<PathBuf>,
    tls_verify: bool,
    /// The bind's kind, DN and password (kept in memory only, as the
    /// settings themselves are).
    bind: (u8, String, String),
    connect_timeout: Duration,
    timeout: Duration,
}

impl Key {
    pub fn of(s: &LdapSettings) -> Key {
        let bind = match &s.bind {
            Bind::Anonymous => (0, String::new(), String::new()),
            Bind::Simple { dn, password } => (1, dn.clone(), password.clone()),
            Bind::External => (2, String::new(), String::new()),
        };
        Key {
            ma: s.ma.clone(),
            url: s.url.clone(),
            transport: match s.transport {
                Transport::Plain => 0,
                Transport::Tls => 1,
                Transport::Socket => 2,
            },
            start_tls: s.start_tls,
            ca_file: s.ca_file.clone(),
            tls_verify: s.tls_verify,
            bind,
            connect_timeout: s.connect_timeout,
            timeout: s.timeout,
        }
    }
}

struct Idle {
    session: Session,
    opened: Instant,
    since: Instant,
}

static IDLE: LazyLock<Mutex<HashMap<Key, Idle>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// A session as a connector holds it: when it was opened goes back to the
/// pool with it.
pub struct Held {
    pub session: Session,
    opened: Instant,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.session.fmt(f)
    }
}

/// The idle session of `s`'s MA that still answers, else a new one.
pub fn take(s: &LdapSettings) -> Result<Held, autosync_connector::ConnectorError> {
    let key = Key::of(s);
    let idle = lock().remove(&key);
    if let Some(mut idle) = idle {
        let now = Instant::now();
        let fresh = now.duration_since(idle.since) <= IDLE_MAX
            && now.duration_since(idle.opened) <= AGE_MAX;
        if fresh && !idle.session.is_closed() && idle.session.answers() {
            return Ok(Held {
                session: idle.session,
                opened: idle.opened,
            });
        }
        tracing::debug!(ma = %s.ma, "an idle LDAP session was closed or stale: connecting again");
    }
    Ok(Held {
        session: Session::open(s)?,
        opened: Instant::now(),
    })
}

/// Keeps `held` for the next connector of `s`'s MA, unless its connection
/// is gone or it is too old; closes idle sessions nobody took in time.
pub fn give_back(s: &LdapSettings, mut held: Held) {
    let now = Instant::now();
    if held.session.is_closed() || now.duration_since(held.opened) > AGE_MAX {
        return;
    }
    let stale: Vec<Idle> = {
        let mut idle = lock();
        let old: Vec<Key> = idle
            .iter()
            .filter(|(_, i)| now.duration_since(i.since) > IDLE_MAX)
            .map(|(k, _)| k.clone())
            .collect();
        let mut stale: Vec<Idle> = old.iter().filter_map(|k| idle.remove(k)).collect();
        let replaced = idle.insert(
            Key::of(s),
            Idle {
                session: held.session,
                opened: held.opened,
                since: now,
            },
        );
        stale.extend(replaced);
        stale
    };
    // Closed outside the lock.
    drop(stale);
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<Key, Idle>> {
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}
