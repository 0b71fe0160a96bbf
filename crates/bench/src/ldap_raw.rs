//! What the LDAP scenarios share: the private slapd (the test kit's), the
//! people they write (the same attributes and values in every OU), and
//! the raw reference: OpenLDAP's own `ldapadd`/`ldapmodify`/`ldapdelete`
//! of one LDIF file, timed as one process run.

use anyhow::{Context as _, bail};
use autosync_testkit::Slapd;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Person `i` as LDAP attributes (besides `objectClass: inetOrgPerson`),
/// in the order an LDIF writes them. `title` is the attribute the
/// modifies change (`round` 0: first value).
pub fn person(i: u64, round: u32) -> Vec<(&'static str, String)> {
    let first = format!("First{i}");
    let last = format!("Last{i}");
    vec![
        ("uid", uid(i)),
        ("cn", format!("{first} {last}")),
        ("sn", last.clone()),
        ("givenName", first.clone()),
        (
            "mail",
            format!("{}.{}@example.org", first, last).to_lowercase(),
        ),
        ("title", title(i, round)),
        ("telephoneNumber", format!("+1 555 {i:07}")),
        ("employeeNumber", format!("E{i:08}")),
    ]
}

pub fn uid(i: u64) -> String {
    format!("p{i:07}")
}

/// The title of person `i` after `round` modifies.
pub fn title(i: u64, round: u32) -> String {
    if round == 0 {
        format!("Title {}", i % 37)
    } else {
        format!("Title {} r{round}", i % 37)
    }
}

/// An LDIF of `n` people added under `ou`.
pub fn add_ldif(ou: &str, n: u64) -> String {
    let mut out = String::with_capacity(n as usize * 260);
    for i in 0..n {
        let _ = writeln!(out, "dn: uid={},{ou}\nobjectClass: inetOrgPerson", uid(i));
        for (a, v) in person(i, 0) {
            let _ = writeln!(out, "{a}: {v}");
        }
        out.push('\n');
    }
    out
}

/// An LDIF replacing the title of `n` people under `ou` (round `round`).
pub fn modify_ldif(ou: &str, n: u64, round: u32) -> String {
    let mut out = String::with_capacity(n as usize * 80);
    for i in 0..n {
        let _ = writeln!(
            out,
            "dn: uid={},{ou}\nchangetype: modify\nreplace: title\ntitle: {}\n-\n",
            uid(i),
            title(i, round)
        );
    }
    out
}

/// The DNs of `n` people under `ou`, one a line (`ldapdelete -f`).
pub fn delete_list(ou: &str, n: u64) -> String {
    let mut out = String::with_capacity(n as usize * 40);
    for i in 0..n {
        let _ = writeln!(out, "uid={},{ou}", uid(i));
    }
    out
}

/// Adds the organizational unit `ou=name` under the suffix: its DN.
pub fn add_ou(s: &Slapd, name: &str) -> anyhow::Result<String> {
    let dn = format!("ou={name},{}", s.suffix());
    s.ldapadd(&format!(
        "dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n"
    ))
    .with_context(|| format!("cannot add {dn}"))?;
    Ok(dn)
}

/// Runs `tool` (`ldapadd`, `ldapmodify`, `ldapdelete`) as the
/// administrator on the file `ldif` written first under `dir`, and
/// returns its wall time in seconds (one process: start, bind, every
/// operation one after the other, as the tools do).
pub fn timed_tool(s: &Slapd, dir: &Path, tool: &str, ldif: &str) -> anyhow::Result<f64> {
    let tool = Tool::prepare(s, dir, tool, ldif)?;
    let started = Instant::now();
    tool.run()?;
    Ok(started.elapsed().as_secs_f64())
}

/// An ldap-utils tool with its LDIF file written, ready to run.
pub struct Tool {
    command: Command,
    name: String,
    file: std::path::PathBuf,
}

impl Tool {
    pub fn prepare(s: &Slapd, dir: &Path, tool: &str, ldif: &str) -> anyhow::Result<Tool> {
        let file = dir.join(format!("{tool}.ldif"));
        std::fs::write(&file, ldif).with_context(|| format!("cannot write {}", file.display()))?;
        let mut command = Command::new(tool);
        command
            .arg("-x")
            .arg("-H")
            .arg(s.url())
            .arg("-D")
            .arg(s.admin_dn())
            .arg("-w")
            .arg(s.admin_password())
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Ok(Tool {
            command,
            name: tool.to_owned(),
            file,
        })
    }

    /// Runs it to its end.
    pub fn run(mut self) -> anyhow::Result<()> {
        let (tool, file) = (&self.name, &self.file);
        let out = self
            .command
            .output()
            .with_context(|| format!("cannot run {tool} (apt-get install -y ldap-utils)"))?;
        if !out.status.success() {
            bail!(
                "{tool} -f {} failed ({}): {}",
                file.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// How many entries right under `ou` (`ldapsearch`, one level).
pub fn count_under(s: &Slapd, ou: &str) -> anyhow::Result<u64> {
    let out = Command::new("ldapsearch")
        .args(["-x", "-LLL", "-H", s.url(), "-D", s.admin_dn(), "-w"])
        .arg(s.admin_password())
        .args(["-s", "one", "-b", ou, "(objectClass=*)", "1.1"])
        .stdin(Stdio::null())
        .output()
        .context("cannot run ldapsearch")?;
    if !out.status.success() {
        bail!(
            "ldapsearch -b {ou} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("dn:"))
        .count() as u64)
}

/// Every entry under `ou` has title `expected(i)`: the number that do.
pub fn count_titles(s: &Slapd, ou: &str, n: u64, round: u32) -> anyhow::Result<u64> {
    let text = s
        .ldapsearch(ou, "(objectClass=inetOrgPerson)", &["uid", "title"])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ok = 0;
    for block in text.split("\n\n") {
        let get = |a: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{a}: ")).map(str::to_owned))
        };
        let (Some(u), Some(t)) = (get("uid"), get("title")) else {
            continue;
        };
        let Some(i) = u.strip_prefix('p').and_then(|d| d.parse::<u64>().ok()) else {
            continue;
        };
        if i < n && t == title(i, round) {
            ok += 1;
        }
    }
    Ok(ok)
}
