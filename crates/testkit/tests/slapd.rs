//! The kit's slapd: it starts, answers plain LDAP, StartTLS and LDAPS
//! with the kit's CA, and is gone (process and folder) once dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use autosync_testkit::{Slapd, SlapdBuilder};
use std::process::Command;

fn whoami(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = Command::new("ldapwhoami");
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn an_owned_slapd_should_serve_ldap_starttls_ldaps_and_ldapi_and_be_gone_when_dropped() {
    let s = Slapd::start().unwrap();
    let admin = ["-x", "-D", s.admin_dn(), "-w", s.admin_password()];
    let plain = whoami(&[&["-H", s.url()], &admin[..]].concat(), &[]);
    assert!(plain.status.success(), "{plain:?}");
    assert!(String::from_utf8_lossy(&plain.stdout).contains(s.admin_dn()));
    let ca = [("LDAPTLS_CACERT", s.ca_file().display().to_string())];
    let starttls = whoami(&[&["-ZZ", "-H", s.url()], &admin[..]].concat(), &ca);
    assert!(starttls.status.success(), "{starttls:?}");
    let ldaps = whoami(&[&["-H", s.ldaps_url()], &admin[..]].concat(), &ca);
    assert!(ldaps.status.success(), "{ldaps:?}");
    let external = whoami(&["-H", s.ldapi_url(), "-Y", "EXTERNAL", "-Q"], &[]);
    assert!(external.status.success(), "{external:?}");
    assert!(
        String::from_utf8_lossy(&external.stdout).contains(s.admin_dn()),
        "SASL EXTERNAL over ldapi is the administrator: {external:?}"
    );
    // Another CA is refused.
    let dir = tempfile_dir();
    let other = dir.join("other.pem");
    std::fs::write(&other, autosync_testkit::tls::other_ca_pem().unwrap()).unwrap();
    let wrong = whoami(
        &[&["-H", s.ldaps_url()], &admin[..]].concat(),
        &[("LDAPTLS_CACERT", other.display().to_string())],
    );
    assert!(!wrong.status.success(), "a wrong CA must be refused");
    std::fs::remove_dir_all(&dir).unwrap();

    let (pid, folder) = (s.pid(), s.dir().to_owned());
    s.ldapadd("dn: ou=x,dc=example,dc=org\nobjectClass: organizationalUnit\nou: x\n")
        .unwrap();
    assert!(
        s.ldapsearch("dc=example,dc=org", "(ou=x)", &["ou"])
            .unwrap()
            .contains("ou: x")
    );
    drop(s);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "slapd still runs"
    );
    assert!(!folder.exists(), "the folder is left behind");
}

#[test]
fn a_killed_slapd_should_restart_on_its_ports_with_its_data() {
    let mut s = Slapd::start().unwrap();
    s.ldapadd("dn: ou=kept,dc=example,dc=org\nobjectClass: organizationalUnit\nou: kept\n")
        .unwrap();
    let (url, before) = (s.url().to_owned(), s.pid());
    s.kill().unwrap();
    assert!(
        s.ldapsearch("dc=example,dc=org", "(ou=kept)", &["ou"])
            .is_err()
    );
    s.restart().unwrap();
    assert_ne!(s.pid(), before);
    assert_eq!(s.url(), url);
    assert!(
        s.ldapsearch("dc=example,dc=org", "(ou=kept)", &["ou"])
            .unwrap()
            .contains("ou: kept")
    );
    // A running one restarts too.
    s.restart().unwrap();
    assert!(
        s.ldapsearch("dc=example,dc=org", "(ou=kept)", &["ou"])
            .unwrap()
            .contains("ou: kept")
    );
    let (pid, folder) = (s.pid(), s.dir().to_owned());
    drop(s);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!folder.exists());
}

#[test]
fn a_shared_slapd_should_be_the_same_for_every_caller_of_the_process() {
    let builder = || SlapdBuilder::new().database_directive("sizelimit 1000");
    let a = builder().shared().unwrap();
    let b = builder().shared().unwrap();
    assert!(std::ptr::eq(a, b));
    let ou = a.new_ou("shared").unwrap();
    assert!(
        b.ldapsearch(&ou, "(objectClass=*)", &["ou"])
            .unwrap()
            .contains(&ou)
    );
    a.delete_tree(&ou).unwrap();
}

#[test]
fn ldapadd_should_take_thousands_of_entries_at_once() {
    // Its output (a line per entry) is more than a pipe holds.
    let s = SlapdBuilder::new().shared().unwrap();
    let ou = s.new_ou("many").unwrap();
    let ldif: String = (0..3_000)
        .map(|i| format!("dn: cn=p{i},{ou}\nobjectClass: person\ncn: p{i}\nsn: p{i}\n\n"))
        .collect();
    s.ldapadd(&ldif).unwrap();
    let found = s.ldapsearch(&ou, "(objectClass=person)", &["cn"]).unwrap();
    assert_eq!(found.matches("\ncn: p").count(), 3_000);
    s.delete_tree(&ou).unwrap();
}

// The SMTP sink: a message sent over a raw SMTP dialogue is kept.
#[test]
fn the_smtp_sink_should_keep_each_message_it_accepts() {
    use std::io::{BufRead, BufReader, Write};
    let sink = autosync_testkit::SmtpSink::start().unwrap();
    let stream = std::net::TcpStream::connect(("127.0.0.1", sink.port())).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    let mut expect = |code: &str, reader: &mut BufReader<std::net::TcpStream>| loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "{line}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    };
    expect("220", &mut reader);
    for (say, code) in [
        ("EHLO test", "250"),
        ("MAIL FROM:<a@example.org>", "250"),
        ("RCPT TO:<b@example.org>", "250"),
        ("DATA", "354"),
        ("Subject: hello\r\n\r\nbody\r\n.", "250"),
        ("QUIT", "221"),
    ] {
        write!(writer, "{say}\r\n").unwrap();
        expect(code, &mut reader);
    }
    let mails = sink.mails().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos, ["b@example.org"]);
    assert_eq!(mails[0].header("subject").as_deref(), Some("hello"));
    assert_eq!(mails[0].body().trim(), "body");
    assert!(!mails[0].tls);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kit-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
