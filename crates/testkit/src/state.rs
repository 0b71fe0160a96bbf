//! The state file of a shared server: which server runs, on which ports,
//! so that the next test process of the binary uses it.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A running shared server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Its folder (the state's first line: the watchdog compares it).
    pub run: PathBuf,
    pub port: u16,
    pub ldaps_port: u16,
    /// The pid of `slapd`.
    pub pid: u32,
}

impl State {
    /// Whether the server is still there: its folder exists and its port
    /// accepts a connection.
    pub fn answers(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        self.run.join("slapd.conf").exists()
            && TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    }
}

pub fn read(path: &Path) -> Option<State> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let run = PathBuf::from(lines.next()?);
    let port = lines.next()?.parse().ok()?;
    let ldaps_port = lines.next()?.parse().ok()?;
    let pid = lines.next()?.parse().ok()?;
    Some(State {
        run,
        port,
        ldaps_port,
        pid,
    })
}

/// Write the state whole (a temporary file renamed over it).
pub fn write(path: &Path, s: &State) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        format!(
            "{}\n{}\n{}\n{}\n",
            s.run.display(),
            s.port,
            s.ldaps_port,
            s.pid
        ),
    )?;
    std::fs::rename(tmp, path)
}
