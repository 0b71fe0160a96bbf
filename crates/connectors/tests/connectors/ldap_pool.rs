//! The LDAP connector keeps its session open between runs: the next
//! connector of the same MA and settings uses the same connection (no new
//! connect, bind and schema read: most of a small delta import's time),
//! a connection the server closed is replaced without an error, and
//! settings that differ (another password) never get it.

use crate::common::drain;
use crate::ldap_support::*;
use autosync_connector::{Connector, ImportItem};
use autosync_model::ObjectTypeDef;
use autosync_testkit::{Slapd, SlapdBuilder};
use serde_json::json;
use std::collections::HashSet;

fn types() -> Vec<ObjectTypeDef> {
    vec![ObjectTypeDef {
        name: "person".into(),
        anchor: "entryUUID".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    }]
}

fn connector(s: &Slapd, base: &str, password: &str) -> Box<dyn Connector> {
    let mut v = admin_settings(
        s,
        base,
        json!({ "object_classes": { "person": "inetOrgPerson" }, "attributes": ["uid", "title"] }),
    );
    v["password"] = json!(password);
    build(types(), v)
}

fn person(base: &str, uid: &str, title: &str) -> String {
    format!(
        "dn: uid={uid},{base}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\ntitle: {title}\n"
    )
}

fn titles(items: &[ImportItem]) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        .map(|i| {
            let o = i.as_ref().unwrap();
            o.attributes
                .get("title")
                .map(|v| v.to_text())
                .unwrap_or_default()
        })
        .collect();
    out.sort();
    out
}

/// The local ports of this process's TCP connections to `port` on
/// loopback, read from procfs: the sockets among this process's open
/// files, matched in `/proc/net/tcp`.
fn connections_to(port: u16) -> Vec<u16> {
    let mine: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut out: Vec<u16> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let remote = u16::from_str_radix(f.get(2)?.rsplit(':').next()?, 16).ok()?;
            // 01: established.
            (remote == port && *f.get(3)? == "01" && mine.contains(*f.get(9)?)).then_some(local)
        })
        .collect();
    out.sort();
    out
}

fn port(s: &Slapd) -> u16 {
    s.url().rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_next_run_of_the_ma_should_use_the_same_connection_and_replace_one_the_server_closed() {
    let mut s = SlapdBuilder::new().start().unwrap();
    let base = s.new_ou("pool").unwrap();
    s.ldapadd(&person(&base, "ann", "first")).unwrap();
    let password = s.admin_password().to_owned();

    let mut a = connector(&s, &base, &password);
    let (batches, watermark) = drain(a.full_import(None).unwrap());
    assert_eq!(titles(&batches.concat()), ["first"]);
    drop(a);
    let kept = connections_to(port(&s));
    assert_eq!(kept.len(), 1, "the ended connector's session is kept open");

    // The next run: the same connection, and it sees what changed.
    s.ldapmodify(&format!(
        "dn: uid=ann,{base}\nchangetype: modify\nreplace: title\ntitle: second\n"
    ))
    .unwrap();
    let mut b = connector(&s, &base, &password);
    let (batches, _) = drain(b.delta_import(watermark.as_deref()).unwrap());
    assert_eq!(titles(&batches.concat()), ["second"]);
    assert_eq!(
        connections_to(port(&s)),
        kept,
        "the kept connection was used"
    );
    drop(b);

    // Settings with another bind never get the kept session.
    let mut wrong = connector(&s, &base, "not the password");
    let refused = match wrong.full_import(None) {
        Ok(_) => panic!("a wrong password imported"),
        Err(e) => e,
    };
    assert!(
        refused.message.contains("invalidCredentials"),
        "{}",
        refused.message
    );
    drop(wrong);

    // The server closed the kept connection: the next run connects again,
    // without an error.
    s.kill().unwrap();
    s.restart().unwrap();
    let mut c = connector(&s, &base, &password);
    let (batches, _) = drain(c.full_import(None).unwrap());
    assert_eq!(titles(&batches.concat()), ["second"]);
    let now = connections_to(port(&s));
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, kept, "a new connection replaced the closed one");
}
