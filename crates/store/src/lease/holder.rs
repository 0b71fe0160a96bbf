//! Who holds a lease: an [`Instance`] (a random id per process, with its
//! host and pid for people to read) and the [`Holder`] record it writes
//! into the lease, with its heartbeat and expiry.
//!
//! A pid means something only where the process table it comes from can be
//! seen: the same kernel boot and the same pid namespace. That is the
//! holder's *scope* (`/proc/sys/kernel/random/boot_id` and the link
//! `/proc/self/ns/pid`); only a holder of the same scope can be known dead
//! from its pid (and start time, so that a recycled pid is not taken for
//! it). Elsewhere (another host, another container, no `/proc`) only the
//! heartbeat tells.
//!
//! A holder also records the store file it took the lease in
//! ([`StoreFile`]: device and inode, on unix). A copy of the store (a
//! backup, restored elsewhere on the same host) holds the leases of the
//! service it was copied from; read from another file of the same host and
//! scope and file system, such a lease is not held ([`Gone::OtherFile`]).
//! Two processes on the same file see the same identity and exclude each
//! other as ever; on another device (a second mount of one NFS export
//! has its own device number) the heartbeat decides.
//! Leases written before this record keep the rules above.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Duration;

/// One participant in the leases of a store: this process, normally
/// ([`Instance::current`]). Two instances never share an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    id: String,
    host: String,
    pid: u32,
    /// The process's start time (clock ticks since boot); 0 where unknown.
    started: u64,
    /// Where `pid` names this process (see the module's documentation);
    /// empty where that cannot be known.
    scope: String,
}

impl Instance {
    /// This process: generated once, the same for every lease it takes.
    pub fn current() -> Instance {
        static CURRENT: OnceLock<Instance> = OnceLock::new();
        CURRENT.get_or_init(Instance::fresh).clone()
    }

    /// This process under a new id: a second node in the same process (a
    /// test of two nodes sharing a store).
    pub fn fresh() -> Instance {
        let pid = std::process::id();
        Instance {
            id: new_id(),
            host: host_name(),
            pid,
            started: process_start(pid).unwrap_or(0),
            scope: local_scope(),
        }
    }

    /// An instance on another host, whose pid means nothing here (tests
    /// of a second host; tools).
    pub fn elsewhere(host: &str, pid: u32) -> Instance {
        let id = new_id();
        Instance {
            scope: format!("elsewhere:{id}"),
            id,
            host: host.to_owned(),
            pid,
            started: 0,
        }
    }

    /// Process `pid` of this host while it runs (`None` when it does not),
    /// under a new id: a lease record naming another local process (tests).
    pub fn local_process(pid: u32) -> Option<Instance> {
        Some(Instance {
            id: new_id(),
            host: host_name(),
            pid,
            started: process_start(pid)?,
            scope: local_scope(),
        })
    }

    /// 32 hex digits (128 random bits).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The record this instance writes into a lease it takes or renews at
    /// `now`, valid for `ttl` (with no store file: [`super::Leases`] adds
    /// its store's).
    pub fn holder(&self, now: DateTime<Utc>, ttl: Duration) -> Holder {
        Holder {
            instance: self.id.clone(),
            host: self.host.clone(),
            pid: self.pid,
            started: self.started,
            scope: self.scope.clone(),
            renewed_at: Some(now),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            store_file: None,
        }
    }
}

/// Which file a store is on its host: the device and inode of its main
/// database file, taken when it was opened ([`crate::Store::store_file`]).
/// A copy of the file is another file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFile {
    pub dev: u64,
    pub ino: u64,
    /// A hash of the path it was opened at, made absolute (0: unknown):
    /// another file now at the same path (a backup restored over the
    /// store of a process that still runs) is not a copy elsewhere.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub path: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The holder's part of a lease as stored (JSON; the lease's other fields
/// sit beside these). Leases written before instance ids have only `pid`
/// and `started` (their holder is judged by its process alone, as then).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's [`Instance::id`]; empty in a lease of the old format.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot); 0 where unknown.
    #[serde(default)]
    pub started: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<DateTime<Utc>>,
    /// How long after its last heartbeat the lease lapses.
    #[serde(default)]
    pub ttl_ms: u64,
    /// The store file the lease was taken in; absent in leases written
    /// before it was recorded, or where the store has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_file: Option<StoreFile>,
}

/// What a lease's holder is to the instance that reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Held by this instance.
    Mine,
    /// Held by another instance that lives: a lease it holds is not taken.
    Live,
    /// Its holder is gone: the lease may be taken over.
    Gone(Gone),
}

/// How a holder is known to be gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// Its process, in the reader's scope, has ended.
    ProcessEnded,
    /// No heartbeat within its time to live.
    Expired,
    /// It was taken in another store file of the reader's host and scope:
    /// the lease came with a copy of the store (a backup restored).
    OtherFile,
}

impl Holder {
    /// This holder as `me` sees it at `now`, whatever store file it was
    /// read from.
    pub fn standing(&self, me: &Instance, now: DateTime<Utc>) -> Standing {
        self.standing_in(me, None, now)
    }

    /// This holder as `me` sees it at `now`, read from the store file
    /// `file` (`None`: unknown, as [`Holder::standing`]).
    pub fn standing_in(
        &self,
        me: &Instance,
        file: Option<StoreFile>,
        now: DateTime<Utc>,
    ) -> Standing {
        if self.instance.is_empty() {
            // The old format: one host, the process decides.
            if self.pid == me.pid && (self.started == me.started || self.started == 0) {
                return Standing::Mine;
            }
            return if process_alive(self.pid, self.started) {
                Standing::Live
            } else {
                Standing::Gone(Gone::ProcessEnded)
            };
        }
        if self.instance == me.id {
            return Standing::Mine;
        }
        // Same host and scope: the pid is this host's (without `/proc` the
        // scope is empty and every process counts as alive), and so is the
        // store file's identity.
        let here = self.host == me.host && self.scope == me.scope;
        if here && !process_alive(self.pid, self.started) {
            return Standing::Gone(Gone::ProcessEnded);
        }
        // Another file of the same file system at another path (a copy):
        // surely not this store. A different device proves nothing (one
        // NFS export mounted twice has two device numbers), nor does
        // another file at the same path (the store replaced under a
        // process that still runs on the old one): the heartbeat decides.
        if here
            && let (Some(theirs), Some(mine)) = (self.store_file, file)
            && theirs.dev == mine.dev
            && theirs.ino != mine.ino
            && (theirs.path == 0 || theirs.path != mine.path)
        {
            return Standing::Gone(Gone::OtherFile);
        }
        let ttl = chrono::Duration::milliseconds(i64::try_from(self.ttl_ms).unwrap_or(i64::MAX));
        match self.renewed_at.and_then(|t| t.checked_add_signed(ttl)) {
            Some(until) if now < until => Standing::Live,
            _ => Standing::Gone(Gone::Expired),
        }
    }

    /// `process 1234`, or `process 1234 on host-b` when it is not on
    /// `me`'s host.
    pub fn describe(&self, me: &Instance) -> String {
        if self.host.is_empty() || self.host == me.host {
            format!("process {}", self.pid)
        } else {
            format!("process {} on {}", self.pid, self.host)
        }
    }
}

fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The boot and pid namespace of this process (empty without `/proc`).
fn local_scope() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
    let ns = std::fs::read_link("/proc/self/ns/pid");
    match (boot, ns) {
        (Ok(boot), Ok(ns)) => format!("{}/{}", boot.trim(), ns.display()),
        _ => String::new(),
    }
}

/// The start time of process `pid`, from `/proc/<pid>/stat` (field 22).
/// `None` when the process does not exist.
fn process_start(pid: u32) -> Option<u64> {
    read_stat(&format!("/proc/{pid}/stat")).map(|(_, started)| started)
}

/// The state (field 3: `R`, `S`, `Z`, ...) and start time (field 22) of a
/// process or thread, from its `stat` file at `path`; `None` when it does
/// not exist.
fn read_stat(path: &str) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let mut after = stat.rsplit_once(')')?.1.split_whitespace();
    let state = after.next()?.chars().next()?;
    let started = after.nth(18)?.parse().ok()?;
    Some((state, started))
}

/// A task that has ended: a zombie (`Z`, ended, not yet reaped by its
/// parent) or dead (`X`, `x`).
fn ended(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Whether process `pid` started at `started` (0: any) runs on this host.
/// Without `/proc` (not Linux) a process is taken as alive.
///
/// A process killed whose parent has not reaped it yet (a zombie: its
/// parent has not waited for it, or it was left to an init that does
/// not reap, as in some containers) still has its `/proc/<pid>/stat`,
/// start time included, for as long as that lasts: it has ended all the
/// same, and holds nothing. Its main thread a zombie while another of its
/// threads runs, it lives.
fn process_alive(pid: u32, started: u64) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    match read_stat(&format!("/proc/{pid}/stat")) {
        None => false,
        Some((_, s)) if started != 0 && s != started => false,
        Some((state, _)) if ended(state) => some_thread_runs(pid),
        Some(_) => true,
    }
}

/// Whether a thread of process `pid` (whose main thread has ended) has
/// not ended; `true` when its threads cannot be listed (a holder wrongly
/// taken as alive lapses with its heartbeat; one wrongly taken as ended
/// would let two hold a lease).
fn some_thread_runs(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        // Unless it was reaped meanwhile.
        return std::path::Path::new(&format!("/proc/{pid}")).exists();
    };
    tasks.flatten().any(|task| {
        let path = task.path().join("stat");
        path.to_str()
            .and_then(read_stat)
            .is_some_and(|(state, _)| !ended(state))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_holder_should_live_until_its_heartbeat_is_older_than_its_time_to_live() {
        let me = Instance::fresh();
        let other = Instance::elsewhere("host-b", 77);
        let h = other.holder(at(0), Duration::from_secs(60));
        assert_eq!(h.standing(&other, at(0)), Standing::Mine);
        assert_eq!(h.standing(&me, at(59)), Standing::Live);
        assert_eq!(h.standing(&me, at(60)), Standing::Gone(Gone::Expired));
        assert_eq!(h.describe(&me), "process 77 on host-b");
    }

    #[test]
    fn a_local_holder_whose_process_ended_should_be_gone_at_once() {
        let me = Instance::fresh();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let alive = Instance::local_process(pid).unwrap();
        child.wait().unwrap();
        let h = alive.holder(at(0), Duration::from_secs(60));
        assert_eq!(h.standing(&me, at(1)), Standing::Gone(Gone::ProcessEnded));
        // Another node in this very process lives while it renews.
        let twin = Instance::fresh().holder(at(0), Duration::from_secs(60));
        assert_eq!(twin.standing(&me, at(1)), Standing::Live);
        assert_eq!(twin.describe(&me), format!("process {}", me.pid()));
        // A recycled pid does not keep a lease.
        let recycled = Holder {
            started: me.started + 1,
            ..me.holder(at(0), Duration::from_secs(60))
        };
        let third = Instance::fresh();
        assert_eq!(
            recycled.standing(&third, at(1)),
            Standing::Gone(Gone::ProcessEnded)
        );
    }

    /// Waits (up to 10 s) until task `pid` is a zombie.
    fn until_zombie(pid: u32) {
        let start = std::time::Instant::now();
        while read_stat(&format!("/proc/{pid}/stat")).map(|(s, _)| s) != Some('Z') {
            assert!(start.elapsed() < Duration::from_secs(10), "{pid} no zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A black-box review: `kill -KILL` of `autosync run` left a zombie its
    /// parent (an init that does not reap) never waited for; its
    /// `/proc/<pid>/stat` stayed, and every command took the service as
    /// running until its heartbeat lapsed, a minute later.
    #[test]
    fn a_local_holder_killed_and_not_yet_reaped_should_be_gone_at_once() {
        let me = Instance::fresh();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let killed = Instance::local_process(child.id()).unwrap();
        let h = killed.holder(at(0), Duration::from_secs(60));
        let old = Holder {
            pid: killed.pid,
            started: killed.started,
            ..Holder::default()
        };
        assert_eq!(h.standing(&me, at(1)), Standing::Live);
        assert_eq!(old.standing(&me, at(1)), Standing::Live);
        child.kill().unwrap();
        until_zombie(child.id());
        assert_eq!(h.standing(&me, at(1)), Standing::Gone(Gone::ProcessEnded));
        assert_eq!(old.standing(&me, at(1)), Standing::Gone(Gone::ProcessEnded));
        child.wait().unwrap();
        assert_eq!(h.standing(&me, at(1)), Standing::Gone(Gone::ProcessEnded));
    }

    /// A process whose main thread ended while another runs lives (its
    /// main thread is a zombie). Made with Python where it can be.
    #[test]
    fn a_process_whose_main_thread_ended_should_live_while_a_thread_runs() {
        assert!(some_thread_runs(std::process::id()));
        let script = "import threading, time, ctypes, sys\n\
            threading.Thread(target=lambda: sys.stdin.read()).start()\n\
            ctypes.CDLL(None).pthread_exit(None)\n";
        let Ok(mut child) = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("no python3: the threads' case is not tried");
            return;
        };
        let me = Instance::fresh();
        let pid = child.id();
        let h = Instance::local_process(pid)
            .unwrap()
            .holder(at(0), Duration::from_secs(60));
        until_zombie(pid);
        assert_eq!(h.standing(&me, at(1)), Standing::Live);
        drop(child.stdin.take());
        child.wait().unwrap();
        assert_eq!(h.standing(&me, at(1)), Standing::Gone(Gone::ProcessEnded));
    }

    #[test]
    fn a_lease_of_the_old_format_should_be_judged_by_its_process_alone() {
        let me = Instance::fresh();
        let old: Holder = serde_json::from_str(&format!(
            r#"{{"pid":{},"started":{},"run_id":4}}"#,
            me.pid, me.started
        ))
        .unwrap();
        assert_eq!(old.standing(&me, at(0)), Standing::Mine);
        let child = std::process::Command::new("sleep").arg("60").spawn();
        let mut child = child.unwrap();
        let other = Instance::local_process(child.id()).unwrap();
        let old = Holder {
            pid: other.pid,
            started: other.started,
            ..Holder::default()
        };
        assert_eq!(old.standing(&me, at(10_000)), Standing::Live, "no expiry");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(old.standing(&me, at(0)), Standing::Gone(Gone::ProcessEnded));
    }

    #[test]
    fn a_holder_in_another_store_file_should_be_gone_only_on_this_host() {
        let me = Instance::fresh();
        let (here, copy) = (
            StoreFile {
                dev: 1,
                ino: 10,
                path: 0,
            },
            StoreFile {
                dev: 1,
                ino: 11,
                path: 0,
            },
        );
        let ttl = Duration::from_secs(60);
        let twin = Holder {
            store_file: Some(here),
            ..Instance::fresh().holder(at(0), ttl)
        };
        assert_eq!(twin.standing_in(&me, Some(here), at(1)), Standing::Live);
        assert_eq!(
            twin.standing_in(&me, Some(copy), at(1)),
            Standing::Gone(Gone::OtherFile)
        );
        // Another device (one NFS export mounted twice): the heartbeat.
        let mount = StoreFile {
            dev: 2,
            ino: 11,
            path: 0,
        };
        assert_eq!(twin.standing_in(&me, Some(mount), at(1)), Standing::Live);
        // Another file at the same path (restored over a live process's
        // store): the heartbeat; at another path, a copy.
        let at_path = |ino, path| StoreFile { dev: 1, ino, path };
        let placed = Holder {
            store_file: Some(at_path(10, 7)),
            ..Instance::fresh().holder(at(0), ttl)
        };
        assert_eq!(
            placed.standing_in(&me, Some(at_path(11, 7)), at(1)),
            Standing::Live
        );
        assert_eq!(
            placed.standing_in(&me, Some(at_path(11, 8)), at(1)),
            Standing::Gone(Gone::OtherFile)
        );
        // Unknown on either side: the heartbeat and the process tell.
        assert_eq!(twin.standing_in(&me, None, at(1)), Standing::Live);
        let older = Instance::fresh().holder(at(0), ttl);
        assert_eq!(older.standing_in(&me, Some(copy), at(1)), Standing::Live);
        // Another host's file identity means nothing here.
        let remote = Holder {
            store_file: Some(here),
            ..Instance::elsewhere("host-b", 77).holder(at(0), ttl)
        };
        assert_eq!(remote.standing_in(&me, Some(copy), at(1)), Standing::Live);
        // It is kept in the lease's text, and absent from older ones.
        let text = serde_json::to_string(&twin).unwrap();
        assert!(
            text.contains(r#""store_file":{"dev":1,"ino":10}"#),
            "{text}"
        );
        let back: Holder = serde_json::from_str(&text).unwrap();
        assert_eq!(back, twin);
        assert!(
            !serde_json::to_string(&older)
                .unwrap()
                .contains("store_file")
        );
    }

    #[test]
    fn instances_should_have_distinct_ids_of_128_bits() {
        let (a, b) = (Instance::fresh(), Instance::fresh());
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 32);
        assert_eq!(Instance::current(), Instance::current());
        assert!(!a.scope.is_empty(), "no /proc here?");
        assert!(a.started > 0);
    }
}
