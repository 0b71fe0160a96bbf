//! A private OpenLDAP server for tests (see the crate's documentation).
//!
//! The server's folder holds its `slapd.conf` (`-f`), the mdb databases
//! (the suffix's and `cn=accesslog`), the certificates, the `ldapi`
//! socket and `slapd.log`. `slapd` runs in the foreground (`-d 0`) under a
//! shell watchdog:
//!
//! * a server of one's own ([`SlapdBuilder::start`]): the watchdog reads
//!   its standard input from the owner (a `restart` line starts `slapd`
//!   again on the same ports and data: [`Slapd::restart`]); when the
//!   owner drops the [`Slapd`] or dies, the pipe closes and the watchdog
//!   stops `slapd` and removes the folder;
//! * a shared server ([`SlapdBuilder::shared`]): every process using it
//!   holds a shared `flock` on a `users` file next to it; the watchdog
//!   (in a session of its own, so that a test runner killing one test's
//!   process group leaves it alone) waits until no process holds it for
//!   two seconds, then stops `slapd` and removes the server's folder. A
//!   process that comes meanwhile waits for that and starts a new server.
//!   The small folder of the lock and users files stays (one per test
//!   binary and configuration): removing it could let two processes lock
//!   two different files.
//!
//! The server is ready when its ports accept connections and the suffix
//! entry is added: waited for by connecting, never by a fixed sleep.

use crate::KitError;
use crate::state::State;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod start;

/// Where Debian puts the schemas and the modules.
const SCHEMA_DIR: &str = "/etc/ldap/schema";
const MODULE_DIRS: &[&str] = &["/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"];
const SLAPD: &[&str] = &[
    "/usr/sbin/slapd",
    "/usr/local/libexec/slapd",
    "/usr/libexec/slapd",
];

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The watchdog of a server of one's own: `$1` the folder, then the
/// `slapd` command. It prints slapd's pid, then reads its standard input:
/// a `restart` line starts slapd again (same command: same ports and
/// data) and prints the new pid; the end of its input stops slapd and
/// removes the folder.
const OWNED_WATCHDOG: &str = r#"
dir=$1; shift
start() {
  setpriv --pdeathsig KILL -- "$@" >>"$dir/slapd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid"
}
start "$@"
while read -r line; do
  if [ "$line" = restart ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    start "$@"
  fi
done
exec >/dev/null
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

/// The watchdog of a shared server: `$1` the folder of the users' lock
/// and state, `$2` the server's own folder, then the `slapd` command.
const SHARED_WATCHDOG: &str = r#"
top=$1; run=$2; shift 2
exec 9>>"$top/users"
setpriv --pdeathsig KILL -- "$@" >>"$run/slapd.log" 2>&1 </dev/null 9>&- &
pid=$!
echo "$pid"
exec >/dev/null
while :; do
  flock -x 9
  flock -u 9
  sleep 2
  if flock -n -x 9; then break; fi
done
if [ "$(head -n 1 "$top/state" 2>/dev/null)" = "$run" ]; then rm -f "$top/state"; fi
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$run"
flock -u 9
"#;

/// How to configure a test server. The defaults: suffix
/// `dc=example,dc=org`, administrator `cn=admin,dc=example,dc=org` with
/// password `secret`.
#[derive(Clone, Debug)]
pub struct SlapdBuilder {
    suffix: String,
    admin_dn: String,
    admin_password: String,
    schemas: Vec<String>,
    directives: Vec<String>,
    sessionlog: Option<u32>,
}

/// The content-synchronisation session log's default size (entries).
const SESSIONLOG: u32 = 10_000;

impl Default for SlapdBuilder {
    fn default() -> Self {
        SlapdBuilder {
            suffix: "dc=example,dc=org".into(),
            admin_dn: "cn=admin,dc=example,dc=org".into(),
            admin_password: "secret".into(),
            schemas: Vec::new(),
            directives: Vec::new(),
            sessionlog: Some(SESSIONLOG),
        }
    }
}

/// A running test server.
#[derive(Debug)]
pub struct Slapd {
    url: String,
    ldaps_url: String,
    ldapi_url: String,
    dir: PathBuf,
    suffix: String,
    admin_dn: String,
    admin_password: String,
    slapd_pid: u32,
    guard: Guard,
}

#[derive(Debug)]
enum Guard {
    /// The watchdog, the pipe whose end stops it and where it prints the
    /// pids of the slapd it starts.
    Owned {
        watchdog: Child,
        stdin: Option<ChildStdin>,
        pids: BufReader<ChildStdout>,
    },
    /// The shared lock on the `users` file, held for the process's life.
    Shared { _users: File },
}

impl Slapd {
    /// A server with the default configuration, of one's own.
    pub fn start() -> Result<Slapd, KitError> {
        SlapdBuilder::new().start()
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS works on it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> &str {
        &self.ldaps_url
    }

    /// `ldapi://` and the percent-encoded path of the server's socket
    /// (SASL EXTERNAL there binds as the administrator).
    pub fn ldapi_url(&self) -> &str {
        &self.ldapi_url
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    pub fn admin_dn(&self) -> &str {
        &self.admin_dn
    }

    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The pid of the `slapd` process.
    pub fn pid(&self) -> u32 {
        self.slapd_pid
    }

    /// The server's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What slapd printed (at debug level 0: start-up problems).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
    }

    /// `ldapadd` of `ldif` as the administrator.
    pub fn ldapadd(&self, ldif: &str) -> Result<(), KitError> {
        self.tool("ldapadd", &[], ldif).map(drop)
    }

    /// `ldapmodify` of `ldif` (with `changetype:` lines) as the
    /// administrator.
    pub fn ldapmodify(&self, ldif: &str) -> Result<(), KitError> {
        self.tool("ldapmodify", &[], ldif).map(drop)
    }

    /// Delete `dn` and everything under it (`ldapdelete -r`).
    pub fn delete_tree(&self, dn: &str) -> Result<(), KitError> {
        self.tool("ldapdelete", &["-r", dn], "").map(drop)
    }

    /// `ldapsearch` as the administrator: the LDIF it prints (`-LLL`,
    /// lines not wrapped).
    pub fn ldapsearch(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<String, KitError> {
        let mut args = vec!["-LLL", "-o", "ldif-wrap=no", "-b", base, filter];
        args.extend_from_slice(attrs);
        self.tool("ldapsearch", &args, "")
    }

    /// A new, empty organizational unit under the suffix, named after
    /// `prefix` and made unique (tests sharing a server each work in
    /// their own): its DN.
    pub fn new_ou(&self, prefix: &str) -> Result<String, KitError> {
        let name = format!("{prefix}-{}", unique());
        let dn = format!("ou={name},{}", self.suffix);
        self.ldapadd(&format!(
            "dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n"
        ))?;
        Ok(dn)
    }

    /// Kill `slapd` at once (SIGKILL), as a crash would. The watchdog
    /// then cleans up (an owned server when dropped).
    pub fn kill(&self) -> Result<(), KitError> {
        let status = Command::new("kill")
            .arg("-KILL")
            .arg(self.slapd_pid.to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(KitError::new(format!("kill {} failed", self.slapd_pid)))
        }
    }

    /// Start `slapd` again on the same ports, configuration and data (after
    /// [`kill`](Self::kill), or stopping the running one first), and wait
    /// until it answers. Only a server of one's own can be restarted: the
    /// others' users share it.
    pub fn restart(&mut self) -> Result<(), KitError> {
        let Guard::Owned {
            stdin: Some(stdin),
            pids,
            ..
        } = &mut self.guard
        else {
            return Err(KitError::new(
                "only a server of one's own (SlapdBuilder::start) can be restarted",
            ));
        };
        stdin.write_all(b"restart\n")?;
        stdin.flush()?;
        self.slapd_pid = read_pid(pids)?;
        let port = |url: &str| {
            url.rsplit(':')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(0)
        };
        self.wait_ready(&[port(&self.url), port(&self.ldaps_url)])
    }

    fn tool(&self, tool: &str, args: &[&str], input: &str) -> Result<String, KitError> {
        let mut child = Command::new(tool)
            .arg("-x")
            .arg("-H")
            .arg(&self.url)
            .arg("-D")
            .arg(&self.admin_dn)
            .arg("-y")
            .arg(self.dir.join("password"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| KitError::new(format!("cannot run {tool} (ldap-utils): {e}")))?;
        // The input is written by a thread of its own while the output is
        // read here: the tool prints a line per entry, and a large input
        // would otherwise fill both pipes and stop the two of them.
        let writer = child.stdin.take().map(|mut stdin| {
            let input = input.as_bytes().to_vec();
            std::thread::spawn(move || stdin.write_all(&input))
        });
        let out = child.wait_with_output()?;
        if let Some(writer) = writer {
            match writer.join() {
                Ok(Ok(())) => {}
                // The tool stopped reading (it failed): its status says why.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(KitError::new(format!("writing {tool}'s input failed"))),
            }
        }
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(KitError::new(format!(
                "{tool} {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                if input.is_empty() {
                    String::new()
                } else {
                    format!("\ninput:\n{input}")
                }
            )))
        }
    }

    fn state(&self) -> State {
        let port = |url: &str| {
            url.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0)
        };
        State {
            run: self.dir.clone(),
            port: port(&self.url),
            ldaps_port: port(&self.ldaps_url),
            pid: self.slapd_pid,
        }
    }

    /// Wait until every port accepts a connection, or slapd is gone.
    fn wait_ready(&self, ports: &[u16]) -> Result<(), KitError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        for port in ports {
            let addr = SocketAddr::from(([127, 0, 0, 1], *port));
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                    break;
                }
                if !alive(self.slapd_pid) {
                    return Err(KitError::new(format!(
                        "slapd exited at start: {}{}",
                        self.log().trim(),
                        self.diagnose()
                    )));
                }
                if start.elapsed() > START_TIMEOUT {
                    return Err(KitError::new(format!(
                        "slapd did not listen on port {port} within {START_TIMEOUT:?}: {}",
                        self.log().trim()
                    )));
                }
                // Waiting for slapd to listen: each try answers at once.
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// What `slaptest` says of the configuration (slapd says little at
    /// debug level 0).
    fn diagnose(&self) -> String {
        match Command::new("slaptest")
            .arg("-u")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .output()
        {
            Ok(out) if !out.status.success() => format!(
                "\nslaptest: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            _ => String::new(),
        }
    }

    fn add_suffix_entry(&self) -> Result<(), KitError> {
        let first = self.suffix.split(',').next().unwrap_or_default();
        let (attr, value) = first.split_once('=').unwrap_or(("", ""));
        let body = match attr.trim().to_ascii_lowercase().as_str() {
            "dc" => format!(
                "objectClass: dcObject\nobjectClass: organization\ndc: {value}\no: {value}\n"
            ),
            "o" => format!("objectClass: organization\no: {value}\n"),
            "ou" => format!("objectClass: organizationalUnit\nou: {value}\n"),
            other => {
                return Err(KitError::new(format!(
                    "suffix `{}`: its first RDN must be dc=, o= or ou=, not {other}=",
                    self.suffix
                )));
            }
        };
        self.ldapadd(&format!("dn: {}\n{body}", self.suffix))
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Guard::Owned {
            watchdog, stdin, ..
        } = &mut self.guard
        {
            // Closing the pipe tells the watchdog to stop slapd and remove
            // the folder; wait for it to have done so.
            drop(stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// The next line the watchdog prints: the pid of the slapd it started.
fn read_pid(pids: &mut BufReader<ChildStdout>) -> Result<u32, KitError> {
    let mut line = String::new();
    pids.read_line(&mut line)?;
    line.trim().parse().map_err(|_| {
        KitError::new(format!(
            "the watchdog did not start slapd (it printed {line:?})"
        ))
    })
}

/// Whether process `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// A free loopback port (free now: slapd binds it a moment later).
fn free_port() -> Result<u16, KitError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// `ldapi://` with the socket's path percent-encoded.
fn ldapi_url(socket: &Path) -> String {
    let mut out = String::from("ldapi://");
    for b in socket.display().to_string().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A name no other server of this machine has.
fn unique() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:x}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}
