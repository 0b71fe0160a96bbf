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

use crate::state::{self, State};
use crate::{KitError, tls};
use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

impl SlapdBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The database's suffix (its first RDN must be `dc=`, `o=` or `ou=`).
    pub fn suffix(mut self, suffix: &str) -> Self {
        suffix.clone_into(&mut self.suffix);
        self
    }

    /// The administrator (the database's `rootdn`) and its password.
    pub fn admin(mut self, dn: &str, password: &str) -> Self {
        dn.clone_into(&mut self.admin_dn);
        password.clone_into(&mut self.admin_password);
        self
    }

    /// More schema, in `slapd.conf` syntax (`attributetype ( ... )`,
    /// `objectclass ( ... )`), after the standard ones.
    pub fn schema(mut self, text: &str) -> Self {
        self.schemas.push(text.to_owned());
        self
    }

    /// A directive of the suffix's database, e.g. `limits dn.exact="..."
    /// size.soft=50 size.hard=50 size.prtotal=unlimited`.
    pub fn database_directive(mut self, line: &str) -> Self {
        self.directives.push(line.to_owned());
        self
    }

    /// The size of the suffix database's content-synchronisation session
    /// log (`syncprov-sessionlog`, default 10,000): a refresh with a
    /// recent cookie then sends the changes and the deletes (RFC 4533's
    /// delete phase). `None`: no log, so such a refresh sends every
    /// entry, the unchanged ones as *present* (the present phase). Either
    /// way a stale cookie is refused (`syncprov-reloadhint`: result
    /// 4096, e-syncRefreshRequired).
    pub fn sessionlog(mut self, entries: Option<u32>) -> Self {
        self.sessionlog = entries;
        self
    }

    /// A server of one's own, stopped and removed when the [`Slapd`] is
    /// dropped (or its process dies).
    pub fn start(self) -> Result<Slapd, KitError> {
        let dir = std::env::temp_dir().join(format!("autosync-slapd-{}", unique()));
        fs::create_dir_all(&dir)?;
        let result = self.launch(&dir, None);
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// The one server of this configuration for the test binary: the same
    /// for every test of it, in every process cargo-nextest runs it in,
    /// as long as one of them runs (and two seconds more).
    pub fn shared(self) -> Result<&'static Slapd, KitError> {
        static SHARED: Mutex<Vec<(u64, &'static Slapd)>> = Mutex::new(Vec::new());
        let mut shared = SHARED
            .lock()
            .map_err(|_| KitError::new("an earlier test panicked while starting slapd"))?;
        let key = self.key();
        if let Some((_, s)) = shared.iter().find(|(k, _)| *k == key) {
            return Ok(s);
        }
        let slapd: &'static Slapd = Box::leak(Box::new(self.shared_instance(key)?));
        shared.push((key, slapd));
        Ok(slapd)
    }

    /// This configuration and this test binary (its path: a rebuilt
    /// binary shares the folder of the lock, never a server of another
    /// configuration), hashed.
    fn key(&self) -> u64 {
        let mut h = DefaultHasher::new();
        if let Ok(exe) = std::env::current_exe() {
            exe.hash(&mut h);
        }
        (
            &self.suffix,
            &self.admin_dn,
            &self.admin_password,
            &self.schemas,
            &self.directives,
            self.sessionlog,
        )
            .hash(&mut h);
        h.finish()
    }

    fn shared_instance(self, key: u64) -> Result<Slapd, KitError> {
        let top = std::env::temp_dir().join(format!("autosync-slapd-shared-{key:016x}"));
        fs::create_dir_all(&top)?;
        // One process at a time decides whether to start a server.
        let startup = OpenOptions::new()
            .create(true)
            .append(true)
            .open(top.join("lock"))?;
        startup.lock()?;
        // Waits while a watchdog is stopping a server nobody uses.
        let users = OpenOptions::new()
            .create(true)
            .append(true)
            .open(top.join("users"))?;
        users.lock_shared()?;
        if let Some(s) = state::read(&top.join("state")).filter(State::answers) {
            return Ok(self.server_of(s, Guard::Shared { _users: users }));
        }
        let run = top.join(format!("run-{}", unique()));
        fs::create_dir_all(&run)?;
        // On failure the watchdog removes the folder once nobody uses it.
        let slapd = self.launch(&run, Some((&top, users)))?;
        // The state names the server for the processes that come next.
        state::write(&top.join("state"), &slapd.state())?;
        Ok(slapd)
    }

    fn server_of(&self, s: State, guard: Guard) -> Slapd {
        Slapd {
            url: format!("ldap://127.0.0.1:{}", s.port),
            ldaps_url: format!("ldaps://127.0.0.1:{}", s.ldaps_port),
            ldapi_url: ldapi_url(&s.run.join("ldapi")),
            dir: s.run,
            suffix: self.suffix.clone(),
            admin_dn: self.admin_dn.clone(),
            admin_password: self.admin_password.clone(),
            slapd_pid: s.pid,
            guard,
        }
    }

    /// Write the configuration under `dir` and start the server, retrying
    /// with other ports when one was taken meanwhile. `shared`: the top
    /// folder and the users' lock of a shared server.
    fn launch(&self, dir: &Path, shared: Option<(&Path, File)>) -> Result<Slapd, KitError> {
        let slapd = find(SLAPD).ok_or_else(|| {
            KitError::new(
                "slapd is not installed: apt-get install -y slapd ldap-utils (scripts/test.sh does it)",
            )
        })?;
        let modules = find(MODULE_DIRS)
            .ok_or_else(|| KitError::new("no OpenLDAP module folder (/usr/lib/ldap) found"))?;
        let certs = tls::server_certificates()?;
        fs::write(dir.join("ca.pem"), &certs.ca_pem)?;
        fs::write(dir.join("server.pem"), &certs.cert_pem)?;
        fs::write(dir.join("server.key"), &certs.key_pem)?;
        fs::write(dir.join("password"), &self.admin_password)?;
        fs::create_dir_all(dir.join("data"))?;
        fs::create_dir_all(dir.join("accesslog"))?;
        let conf = dir.join("slapd.conf");
        fs::write(&conf, self.config(dir, &modules)?)?;
        let mut shared = shared;
        let mut last = KitError::new("slapd did not start");
        for _ in 0..5 {
            let (port, ldaps_port) = (free_port()?, free_port()?);
            let listen = format!(
                "ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/ {}",
                ldapi_url(&dir.join("ldapi"))
            );
            let mut cmd = match &shared {
                None => {
                    let mut c = Command::new("sh");
                    c.arg("-c").arg(OWNED_WATCHDOG).arg("sh").arg(dir);
                    c
                }
                Some((top, _)) => {
                    let mut c = Command::new("setsid");
                    c.arg("sh")
                        .arg("-c")
                        .arg(SHARED_WATCHDOG)
                        .arg("sh")
                        .arg(top)
                        .arg(dir);
                    c
                }
            };
            cmd.arg(&slapd)
                .arg("-f")
                .arg(&conf)
                .arg("-h")
                .arg(&listen)
                .arg("-d")
                .arg("0")
                .stdin(if shared.is_some() {
                    Stdio::null()
                } else {
                    Stdio::piped()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            let mut watchdog = cmd.spawn().map_err(|e| {
                KitError::new(format!(
                    "cannot start slapd's watchdog (sh, setsid, setpriv, flock): {e}"
                ))
            })?;
            let Some(out) = watchdog.stdout.take() else {
                return Err(KitError::new("the watchdog has no standard output"));
            };
            let mut pids = BufReader::new(out);
            let pid = read_pid(&mut pids)?;
            let guard = match shared.take() {
                None => Guard::Owned {
                    stdin: watchdog.stdin.take(),
                    watchdog,
                    pids,
                },
                Some((top, users)) => {
                    // The watchdog lives on in its own session; it is
                    // never waited for by this process.
                    drop(watchdog);
                    shared = Some((top, users.try_clone()?));
                    Guard::Shared { _users: users }
                }
            };
            let server = Slapd {
                url: format!("ldap://127.0.0.1:{port}"),
                ldaps_url: format!("ldaps://127.0.0.1:{ldaps_port}"),
                ldapi_url: ldapi_url(&dir.join("ldapi")),
                dir: dir.to_owned(),
                suffix: self.suffix.clone(),
                admin_dn: self.admin_dn.clone(),
                admin_password: self.admin_password.clone(),
                slapd_pid: pid,
                guard,
            };
            match server.wait_ready(&[port, ldaps_port]) {
                Ok(()) => {
                    server.add_suffix_entry()?;
                    return Ok(server);
                }
                Err(e) => {
                    last = e;
                    if !server.log().contains("bind(") {
                        // Not a port taken meanwhile: trying again won't help.
                        return Err(last);
                    }
                    // Dropping an owned server stops its watchdog; a
                    // shared one's watchdog sees slapd gone and its users
                    // leave: it stops by itself.
                }
            }
        }
        Err(last)
    }

    /// The `slapd.conf` of a server in `dir`.
    fn config(&self, dir: &Path, modules: &Path) -> Result<String, KitError> {
        let d = dir.display();
        let mut c = String::new();
        for s in ["core", "cosine", "inetorgperson", "nis"] {
            c.push_str(&format!("include {SCHEMA_DIR}/{s}.schema\n"));
        }
        for (i, s) in self.schemas.iter().enumerate() {
            let file = dir.join(format!("extra-{i}.schema"));
            fs::write(&file, s)?;
            c.push_str(&format!("include {}\n", file.display()));
        }
        c.push_str(&format!(
            "modulepath {}\n\
             moduleload back_mdb\n\
             moduleload syncprov\n\
             moduleload accesslog\n\
             pidfile {d}/slapd.pid\n\
             argsfile {d}/slapd.args\n\
             TLSCACertificateFile {d}/ca.pem\n\
             TLSCertificateFile {d}/server.pem\n\
             TLSCertificateKeyFile {d}/server.key\n\
             authz-regexp \"gidNumber=[0-9]+[+]uidNumber=[0-9]+,cn=peercred,cn=external,cn=auth\" \"{admin}\"\n\
             \n\
             database config\n\
             rootdn \"cn=config\"\n\
             rootpw {pw}\n\
             \n\
             database mdb\n\
             suffix \"cn=accesslog\"\n\
             directory {d}/accesslog\n\
             maxsize 268435456\n\
             dbnosync\n\
             index reqStart,reqEnd eq\n\
             overlay syncprov\n\
             syncprov-nopresent TRUE\n\
             syncprov-reloadhint TRUE\n\
             \n\
             database mdb\n\
             suffix \"{suffix}\"\n\
             rootdn \"{admin}\"\n\
             rootpw {pw}\n\
             directory {d}/data\n\
             maxsize 1073741824\n\
             dbnosync\n\
             index objectClass,entryUUID,entryCSN,uid,cn eq\n",
            modules.display(),
            admin = self.admin_dn,
            pw = self.admin_password,
            suffix = self.suffix,
        ));
        for line in &self.directives {
            c.push_str(line);
            c.push('\n');
        }
        c.push_str("overlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-reloadhint TRUE\n");
        if let Some(n) = self.sessionlog {
            c.push_str(&format!("syncprov-sessionlog {n}\n"));
        }
        c.push_str(
            "overlay accesslog\n\
             logdb cn=accesslog\n\
             logops writes\n\
             logsuccess TRUE\n\
             logpurge 07+00:00 01+00:00\n",
        );
        Ok(c)
    }
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
