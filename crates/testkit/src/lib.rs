//! Test support shared by autosync's test binaries: real servers started
//! privately on loopback, never mocks.
//!
//! * [`Slapd`]: OpenLDAP's `slapd` under a temporary folder (mdb backend,
//!   the syncprov and accesslog overlays, the core, cosine, inetorgperson
//!   and nis schemas and any schema a test adds), listening on free
//!   loopback ports for `ldap://`, `ldaps://` (and StartTLS) and
//!   `ldapi://`, with a CA and server certificate the kit generates
//!   ([`tls`]). [`SlapdBuilder::shared`] gives one server per test binary
//!   (and per configuration), shared by the binary's tests even when
//!   cargo-nextest runs each test in its own process;
//!   [`SlapdBuilder::start`] gives a server of one's own, stopped and
//!   removed when dropped.
//!
//! * [`SmtpSink`]: an SMTP server (Python's aiosmtpd, plain, STARTTLS or
//!   TLS) that keeps every message it accepts for the test to read; one
//!   per test, stopped when dropped.
//! * [`CutProxy`]: a loopback relay in front of a real LDAP server that
//!   cuts its connections after a chosen number of write answers (a
//!   connection lost halfway through an export).
//! * [`ServiceProcess`]: the real service (`autosync run`) as a child
//!   process, its log kept, stopped when dropped.
//!
//! A slapd never outlives its users: it runs under a small shell
//! watchdog that stops it and removes its folder when the last process
//! using it is gone, however that process ended (normally, by a panic
//! or killed), and `slapd` itself gets SIGKILL when its watchdog dies
//! (`setpriv --pdeathsig`).
//!
//! Install: `apt-get install slapd ldap-utils` (`scripts/test.sh` does it
//! when missing). The kit needs `slapd`, `ldapadd`/`ldapmodify`/
//! `ldapdelete`/`ldapsearch`, `sh`, and util-linux's `setsid`, `setpriv`
//! and `flock`.

pub mod cut;
pub mod service;
mod slapd;
pub mod smtp;
mod state;
pub mod tls;

pub use cut::CutProxy;
pub use service::ServiceProcess;
pub use slapd::{Slapd, SlapdBuilder};
pub use smtp::{Mail, SinkTls, SmtpSink};

/// What went wrong starting or using a test server, with what the server
/// or the tool said.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KitError(pub String);

impl KitError {
    fn new(message: impl Into<String>) -> Self {
        KitError(message.into())
    }
}

impl From<std::io::Error> for KitError {
    fn from(e: std::io::Error) -> Self {
        KitError(e.to_string())
    }
}
