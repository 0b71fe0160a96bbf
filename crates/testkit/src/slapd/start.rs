//! Starting a server: its configuration written, `slapd` started under
//! its watchdog and waited for ([`SlapdBuilder`]).

use super::{
    Guard, MODULE_DIRS, OWNED_WATCHDOG, SCHEMA_DIR, SHARED_WATCHDOG, SLAPD, Slapd, SlapdBuilder,
    find, free_port, ldapi_url, read_pid, unique,
};
use crate::state::{self, State};
use crate::{KitError, tls};
use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

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
