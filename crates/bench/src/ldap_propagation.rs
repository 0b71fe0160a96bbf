//! Scenario `ldap-propagation`: a change made in the directory, to the
//! value readable in a SQLite target, with the real service running.
//!
//! A private slapd (the test kit's) holds `--burst` people under
//! `ou=people`. The LDAP MA `dir` reads them (anchor `entryUUID`, delta
//! imports by content synchronisation) and is triggered by its
//! `change-notification` trigger; `telephoneNumber` flows to the `phone`
//! column of the SQLite MA `app` (table `users`, one row per person). The
//! first import, sync and export run in this process; then `autosync run`
//! starts on that folder, as a user runs it.
//!
//! * **Steady**: a writer thread (one ldap3 connection of this process)
//!   changes the `telephoneNumber` of one entry `--rate` times a second
//!   (20 by default) for `--seconds`, each value new (`s<seq>`). The
//!   latency of a change runs from the writer's modify response to the
//!   first poll that reads its value (or a later one) in the target: a
//!   read-only connection polls the row every 1 ms. The target database
//!   is in WAL mode (this program creates it so), so the polling reader
//!   never blocks the service's writes, nor they it.
//! * **Burst**: then every entry is changed once (`b<i>`), one modify
//!   after the other, as fast as the server answers: by `ldapmodify -f`
//!   of one LDIF file (the default: the tool and the way the raw rate is
//!   measured, so the bar compares like with like), or by the writer
//!   above (`--burst-writer ldap3`). `burst_seconds` runs from the first
//!   modify sent to the poll (every 5 ms once the writer is done: a count
//!   over the table) that finds every value in the target.
//! * **Raw**: `ldapmodify` of one LDIF of `--burst` modifies of entries
//!   under `ou=raw` (outside the MA's base DN, so the service never sees
//!   them), with the service running and idle, right before the burst
//!   and again right after it: `raw_modify_per_s` is the rate of the two
//!   together (one run of the tool moves by a fifth from one to the
//!   next). `raw_ldap3_modify_per_s` is the writer's own rate, the same
//!   way, before the steady phase.

use crate::controller_scenarios::percentile;
use crate::ldap_raw;
use crate::service_proc::ServiceProc;
use anyhow::{Context as _, bail};
use autosync_testkit::{Slapd, SlapdBuilder};
use ldap3::{Ldap, LdapConnAsync, Mod};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The bars (issue 21).
const P50_BAR_MS: f64 = 25.0;
const P99_BAR_MS: f64 = 150.0;
const BURST_FACTOR: f64 = 1.5;
/// How often the steady phase's reader polls the target's row.
const STEADY_POLL: Duration = Duration::from_millis(1);
/// How often the burst's reader counts the arrived values.
const BURST_POLL: Duration = Duration::from_millis(5);
/// A change not in the target this long after its modify fails the run.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The scenario's options.
#[derive(Debug)]
pub struct Args {
    pub seconds: f64,
    pub burst: u64,
    pub rate: f64,
    pub burst_writer: BurstWriter,
    pub keep: bool,
}

/// Who sends the burst's modifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BurstWriter {
    /// `ldapmodify -f` of one LDIF file: the tool (and the way) the raw
    /// rate is measured with, so the bar compares like with like.
    Ldapmodify,
    /// This program's ldap3 writer (one modify after the other).
    Ldap3,
}

fn config(s: &Slapd, people_ou: &str) -> String {
    format!(
        r#"
[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["uid", "phone"]

[[ma]]
name = "dir"
connector = {{ type = "ldap", url = "{url}", bind_dn = "{dn}", password = "{pw}", base_dns = ["{people_ou}"], object_classes = {{ person = "inetOrgPerson" }}, attributes = ["uid", "telephoneNumber"] }}
object_types = [{{ name = "person", anchor = "entryUUID" }}]
join = [{{ mv_type = "person", on = [{{ cs = "uid", mv = "uid" }}] }}]
projection = [{{ mv_type = "person" }}]
import_flows = [
  {{ mv = "uid", from = "uid" }},
  {{ mv = "phone", from = "telephoneNumber" }},
]
[ma.controller]
triggers = [{{ type = "change-notification" }}]

[[ma]]
name = "app"
connector = {{ type = "sqlite", path = "app.db", table = "users", create_table = true, columns = ["uid", "phone"] }}
object_types = [{{ name = "user", anchor = "uid" }}]
join = [{{ mv_type = "person", on = [{{ cs = "uid", mv = "uid" }}] }}]
export_flows = [{{ mv_type = "person", cs = "phone", from = "phone" }}]
provisioning = [{{ mv_type = "person", anchor = "uid" }}]

[controller]
start_stagger = "0s"
"#,
        url = s.url(),
        dn = s.admin_dn(),
        pw = s.admin_password(),
    )
}

/// `n` people under `ou` (uid, cn, sn, telephoneNumber).
fn people_ldif(ou: &str, n: u64) -> String {
    let mut out = String::with_capacity(n as usize * 120);
    for i in 0..n {
        let uid = ldap_raw::uid(i);
        let _ = writeln!(
            out,
            "dn: uid={uid},{ou}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Person {i}\nsn: {i}\ntelephoneNumber: +1 555 {i:07}\n"
        );
    }
    out
}

/// `n` modifies of the people under `ou` (the burst's, for `ldapmodify`).
fn burst_ldif(ou: &str, n: u64, prefix: &str) -> String {
    let mut out = String::with_capacity(n as usize * 90);
    for i in 0..n {
        let _ = writeln!(
            out,
            "dn: uid={},{ou}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: {prefix}{i}\n-\n",
            ldap_raw::uid(i)
        );
    }
    out
}

/// The writer: one bound ldap3 connection on a runtime of its own.
struct Writer {
    rt: tokio::runtime::Runtime,
    ldap: Ldap,
}

impl Writer {
    fn open(s: &Slapd) -> anyhow::Result<Writer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let url = s.url().to_owned();
        let (dn, pw) = (s.admin_dn().to_owned(), s.admin_password().to_owned());
        let ldap = rt.block_on(async move {
            let (conn, mut ldap) = LdapConnAsync::new(&url).await?;
            tokio::spawn(async move {
                let _ = conn.drive().await;
            });
            ldap.simple_bind(&dn, &pw).await?.success()?;
            Ok::<_, ldap3::LdapError>(ldap)
        })?;
        Ok(Writer { rt, ldap })
    }

    /// Replaces `telephoneNumber` of `dn` with `value`: when the answer came.
    fn set_phone(&mut self, dn: &str, value: &str) -> anyhow::Result<Instant> {
        let ldap = &mut self.ldap;
        let mods = vec![Mod::Replace("telephoneNumber", HashSet::from([value]))];
        self.rt
            .block_on(async move { ldap.modify(dn, mods).await?.success() })
            .with_context(|| format!("modify {dn}"))?;
        Ok(Instant::now())
    }
}

/// Opens the target read-only (after the service created it).
fn reader(db: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {} read-only", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The steady phase: each change's latency in ms.
fn steady(s: &Slapd, db: &Path, dn: &str, uid: &str, args: &Args) -> anyhow::Result<Vec<f64>> {
    let changes = (args.seconds * args.rate).round().max(1.0) as usize;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let mut w = Writer::open(s)?;
    let dn_w = dn.to_owned();
    let writer = std::thread::spawn(move || -> anyhow::Result<()> {
        let start = Instant::now();
        for seq in 0..changes {
            let due = start + interval * seq as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                // Pacing: the writer's schedule, not a wait for an event.
                std::thread::sleep(wait);
            }
            let answered = w.set_phone(&dn_w, &format!("s{seq}"))?;
            if tx.send((seq, answered)).is_err() {
                break;
            }
        }
        Ok(())
    });
    let conn = reader(db)?;
    let mut read = conn.prepare("SELECT phone FROM users WHERE uid = ?1")?;
    let mut answered: Vec<Option<Instant>> = vec![None; changes];
    let mut arrived: Vec<Option<Instant>> = vec![None; changes];
    let mut seen = 0usize; // values arrived: 0..seen
    let mut last_answer = Instant::now();
    while seen < changes {
        for (seq, at) in rx.try_iter() {
            answered[seq] = Some(at);
            last_answer = at;
        }
        let phone: Option<String> = read.query_row([uid], |r| r.get(0)).optional()?.flatten();
        let now = Instant::now();
        if let Some(k) = phone
            .as_deref()
            .and_then(|p| p.strip_prefix('s'))
            .and_then(|k| k.parse::<usize>().ok())
            && k < changes
            && k + 1 > seen
        {
            for a in &mut arrived[seen..=k] {
                *a = Some(now);
            }
            seen = k + 1;
        }
        if writer.is_finished() && now.duration_since(last_answer) > ARRIVAL_TIMEOUT {
            bail!(
                "{} of {changes} changes reached the target; the rest not within {ARRIVAL_TIMEOUT:?}",
                seen
            );
        }
        std::thread::sleep(STEADY_POLL);
    }
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    for (seq, at) in rx.try_iter() {
        answered[seq] = Some(at);
    }
    let mut latencies = Vec::with_capacity(changes);
    for (a, b) in answered.iter().zip(&arrived) {
        let (Some(a), Some(b)) = (a, b) else {
            bail!("a change without its answer or arrival");
        };
        latencies.push(b.saturating_duration_since(*a).as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// The burst: (seconds from the first modify to every value in the
/// target, seconds the writer took).
fn burst(
    s: &Slapd,
    dir: &Path,
    db: &Path,
    people_ou: &str,
    n: u64,
    by: BurstWriter,
) -> anyhow::Result<(f64, f64)> {
    let ou = people_ou.to_owned();
    // Connected, or its file written, before the clock starts.
    enum Ready {
        Ldap3(Writer),
        Tool(Box<ldap_raw::Tool>),
    }
    let ready = match by {
        BurstWriter::Ldap3 => Ready::Ldap3(Writer::open(s)?),
        BurstWriter::Ldapmodify => Ready::Tool(Box::new(ldap_raw::Tool::prepare(
            s,
            dir,
            "ldapmodify",
            &burst_ldif(&ou, n, "b"),
        )?)),
    };
    let start = Instant::now();
    let writer_thread = std::thread::spawn(move || -> anyhow::Result<Instant> {
        match ready {
            Ready::Ldap3(mut w) => {
                for i in 0..n {
                    w.set_phone(&format!("uid={},{ou}", ldap_raw::uid(i)), &format!("b{i}"))?;
                }
            }
            Ready::Tool(tool) => tool.run()?,
        }
        Ok(Instant::now())
    });
    let mut writer_done = Some(writer_thread);
    let conn = reader(db)?;
    let mut count = conn.prepare("SELECT count(*) FROM users WHERE phone LIKE 'b%'")?;
    let timeout = ARRIVAL_TIMEOUT.max(Duration::from_secs(n / 50));
    let mut written: Option<Instant> = None;
    loop {
        let finished = writer_done.as_ref().is_some_and(|w| w.is_finished());
        // Every value arrives after its modify: no count is needed before
        // the writer is done, and none is made (a count reads the whole
        // table: every 5 ms, a sixth of a core taken from the service and
        // slapd while they work).
        if written.is_none() && !finished {
            if start.elapsed() > timeout * 4 {
                bail!("the burst's writer did not finish within {:?}", timeout * 4);
            }
            std::thread::sleep(BURST_POLL);
            continue;
        }
        let got: i64 = count.query_row([], |r| r.get(0))?;
        let now = Instant::now();
        if written.is_none() && (got as u64 >= n || finished) {
            // Every value arrived after its modify: the writer is done.
            let Some(w) = writer_done.take() else {
                bail!("the burst's writer was already joined");
            };
            written = Some(
                w.join()
                    .map_err(|_| anyhow::anyhow!("the writer panicked"))??,
            );
        }
        if written.is_none() && now.duration_since(start) > timeout * 4 {
            bail!("the burst's writer did not finish within {:?}", timeout * 4);
        }
        if let Some(written) = written {
            if got as u64 >= n {
                return Ok((
                    now.duration_since(start).as_secs_f64(),
                    written.duration_since(start).as_secs_f64(),
                ));
            }
            if now.duration_since(written) > timeout {
                bail!(
                    "{got} of the burst's {n} changes reached the target within {timeout:?} of the last"
                );
            }
        }
        std::thread::sleep(BURST_POLL);
    }
}

/// Runs the scenario: its results and bars.
pub fn run(bin: &Path, args: &Args) -> anyhow::Result<(Value, Value)> {
    if args.burst == 0 || args.rate <= 0.0 || args.seconds <= 0.0 {
        bail!("--burst, --rate and --seconds must be positive");
    }
    let dir = tempfile::Builder::new()
        .prefix("autosync-bench-ldap-prop-")
        .tempdir()?;
    let root = dir.path().to_path_buf();
    let slapd = SlapdBuilder::new()
        .start()
        .map_err(|e| anyhow::anyhow!("cannot start slapd: {e}"))?;
    let people_ou = ldap_raw::add_ou(&slapd, "people")?;
    let raw_ou = ldap_raw::add_ou(&slapd, "raw")?;
    // From files, timed as the raw reference is.
    let people = people_ldif(&people_ou, args.burst);
    ldap_raw::timed_tool(&slapd, &root, "ldapadd", &people)?;
    let raw = people_ldif(&raw_ou, args.burst);
    ldap_raw::timed_tool(&slapd, &root, "ldapadd", &raw)?;

    // The target in WAL mode: the polling reader never blocks a write.
    let db = root.join("app.db");
    Connection::open(&db)?.pragma_update(None, "journal_mode", "WAL")?;
    // The first import, sync and export, in this process.
    let cfg = config(&slapd, &people_ou);
    {
        let (engine, _store) = crate::engine_scenario::engine_for(&root, &cfg)?;
        for (ma, profile) in [
            ("dir", "full-import"),
            ("dir", "full-sync"),
            ("app", "export"),
            ("app", "full-import"),
        ] {
            crate::engine_scenario::run_step(&engine, ma, profile)?;
        }
    }
    let store = root.join("state/autosync.db");
    let mut service = ServiceProc::start(
        bin,
        &root.join("autosync.toml"),
        &store,
        &root.join("service.log"),
    )?;
    service.wait_quiescent(Duration::from_secs(1), Duration::from_secs(120))?;
    let before = service.history()?.last().map_or(0, |r| r.id);

    // This program's writer alone, for comparison with the tool.
    let writer_s = {
        let mut w = Writer::open(&slapd)?;
        let started = Instant::now();
        for i in 0..args.burst {
            w.set_phone(
                &format!("uid={},{raw_ou}", ldap_raw::uid(i)),
                &format!("w{i}"),
            )?;
        }
        started.elapsed().as_secs_f64()
    };

    let uid = ldap_raw::uid(0);
    let dn = format!("uid={uid},{people_ou}");
    let mut latencies = steady(&slapd, &db, &dn, &uid, args)?;
    let steady_runs = service.history()?.iter().filter(|r| r.id > before).count();
    service.wait_quiescent(Duration::from_secs(1), Duration::from_secs(120))?;
    // The raw rate right before and right after the burst (the service
    // idle): the machine's speed drifts, and one run of the tool moves
    // by a fifth from one to the next.
    let raw = |prefix: &str| {
        ldap_raw::timed_tool(
            &slapd,
            &root,
            "ldapmodify",
            &burst_ldif(&raw_ou, args.burst, prefix),
        )
    };
    let raw_before = raw("r")?;
    let mid = service.history()?.last().map_or(0, |r| r.id);
    let (burst_s, written_s) = burst(
        &slapd,
        &root,
        &db,
        &people_ou,
        args.burst,
        args.burst_writer,
    )?;
    service.wait_quiescent(Duration::from_secs(1), Duration::from_secs(120))?;
    let burst_runs = service.history()?.iter().filter(|r| r.id > mid).count();
    let raw_after = raw("s")?;
    service.stop()?;
    let raw_rate = 2.0 * args.burst as f64 / (raw_before + raw_after);

    let changes = latencies.len();
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let p50 = percentile(&mut latencies, 0.50).unwrap_or(f64::NAN);
    let p99 = percentile(&mut latencies, 0.99).unwrap_or(f64::NAN);
    let max = latencies.iter().copied().fold(0.0, f64::max);
    let burst_bar = BURST_FACTOR * args.burst as f64 / raw_rate;
    let results = json!({
        "p50_ms": r3(p50),
        "p99_ms": r3(p99),
        "max_ms": r3(max),
        "changes": changes,
        "rate_per_s": args.rate,
        "steady_run_profiles": steady_runs,
        "burst": args.burst,
        "burst_seconds": r3(burst_s),
        "burst_written_seconds": r3(written_s),
        "burst_run_profiles": burst_runs,
        "raw_modify_per_s": raw_rate.round(),
        "raw_modify_runs_per_s": [
            (args.burst as f64 / raw_before).round(),
            (args.burst as f64 / raw_after).round(),
        ],
        "raw_ldap3_modify_per_s": (args.burst as f64 / writer_s).round(),
        "burst_writer": match args.burst_writer {
            BurstWriter::Ldapmodify => "ldapmodify",
            BurstWriter::Ldap3 => "ldap3",
        },
        "burst_bar_seconds": r3(burst_bar),
    });
    let bars = json!({
        "p50_ms": { "bar": P50_BAR_MS, "met": p50 <= P50_BAR_MS },
        "p99_ms": { "bar": P99_BAR_MS, "met": p99 <= P99_BAR_MS },
        "burst_seconds": { "bar": r3(burst_bar), "met": burst_s <= burst_bar },
    });
    if args.keep {
        let kept = dir.keep();
        eprintln!("working folder kept: {}", kept.display());
    }
    Ok((results, bars))
}
