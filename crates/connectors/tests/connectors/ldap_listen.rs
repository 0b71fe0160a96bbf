//! Change notification of the LDAP connector against the kit's slapd:
//! its listener tells a change within milliseconds (measured from the
//! server's answer to the event), with the attributes it touched when
//! asked (the entries read page by page, past the server's size limit,
//! and no change made meanwhile lost); the `change-notification` trigger
//! built on it asks at once, coalesces a burst, asks nothing for ignored
//! attributes, and after
//! slapd is killed and restarted listens again and asks for a catch-up
//! import that misses nothing.

use crate::common::{ctx, settings};
use crate::ldap_support::*;
use autosync_connector::{ChangeListener, ChangeSource, Connector, ConnectorFactory};
use autosync_connectors::ldap::LdapFactory;
use autosync_model::ObjectTypeDef;
use autosync_testkit::{Slapd, SlapdBuilder};
use autosync_triggers::{
    BuildContext, NoScriptHost, SystemClock, TriggerDeps, TriggerEvent, TriggerRequest, TriggerSet,
    parse_triggers,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

fn types() -> Vec<ObjectTypeDef> {
    vec![ObjectTypeDef {
        name: "person".into(),
        anchor: "entryUUID".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    }]
}

fn connector_settings(s: &Slapd, base: &str) -> serde_json::Value {
    admin_settings(
        s,
        base,
        json!({ "object_classes": { "person": "inetOrgPerson" }, "attributes": ["uid", "title", "description"] }),
    )
}

/// The connector's notification channel.
fn source(s: &Slapd, base: &str) -> Arc<dyn ChangeSource> {
    let detection = LdapFactory.change_detection(
        &settings(connector_settings(s, base)),
        &serde_json::Map::new(),
        &ctx(Path::new("."), types()),
    );
    let offer = detection.proposed().expect("a proposed offer");
    assert!(
        offer.sentence.contains("persistent search"),
        "{}",
        offer.sentence
    );
    detection
        .notification()
        .expect("a notification")
        .source
        .clone()
}

fn people(base: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("dn: uid={n},{base}\nobjectClass: inetOrgPerson\nuid: {n}\ncn: {n}\nsn: {n}\ntitle: t\n\n"))
        .collect()
}

fn modify(s: &Slapd, base: &str, uid: &str, attr: &str, value: &str) {
    s.ldapmodify(&format!(
        "dn: uid={uid},{base}\nchangetype: modify\nreplace: {attr}\n{attr}: {value}\n"
    ))
    .unwrap();
}

/// Whether an event names an entry by its UUID only: a delete of the
/// refresh's syncIdSet, which slapd's session log may send for an entry
/// another test deleted elsewhere (the server is shared).
fn by_uuid(e: &autosync_connector::ChangeEvent) -> bool {
    !e.object.contains('=')
}

/// The next change (deletes by UUID skipped), waiting at most a few
/// seconds.
fn next(l: &mut dyn ChangeListener) -> autosync_connector::ChangeEvent {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(e) = l.next_change(Duration::from_millis(200)).unwrap()
            && !by_uuid(&e)
        {
            return e;
        }
    }
    panic!("no change told within 5 s");
}

#[test]
fn a_change_should_be_told_within_milliseconds() {
    let s = slapd();
    let base = s.new_ou("listen").unwrap();
    s.ldapadd(&people(&base, &["ann", "bob"])).unwrap();
    let mut l = source(s, &base).listen(false).unwrap();
    let mut latencies = Vec::new();
    for i in 0..5 {
        modify(s, &base, "ann", "title", &format!("t{i}"));
        let answered = Instant::now();
        let e = next(l.as_mut());
        latencies.push(answered.elapsed());
        assert_eq!(e.object, format!("uid=ann,{base}"));
        assert_eq!(e.attributes, None, "not asked for");
    }
    latencies.sort();
    assert!(
        latencies[2] < Duration::from_millis(50),
        "median {:?} of {latencies:?}",
        latencies[2]
    );
    // Adds, renames and deletes are told too.
    s.ldapadd(&people(&base, &["cid"])).unwrap();
    assert_eq!(next(l.as_mut()).object, format!("uid=cid,{base}"));
    s.ldapmodify(&format!(
        "dn: uid=cid,{base}\nchangetype: modrdn\nnewrdn: uid=cyd\ndeleteoldrdn: 1\n"
    ))
    .unwrap();
    assert_eq!(next(l.as_mut()).object, format!("uid=cyd,{base}"));
    s.delete_tree(&format!("uid=bob,{base}")).unwrap();
    assert_eq!(next(l.as_mut()).object, format!("uid=bob,{base}"));
    assert!(l.next_change(Duration::from_millis(50)).unwrap().is_none());
}

#[test]
fn asked_for_attributes_a_change_should_name_those_it_touched() {
    let s = slapd();
    let base = s.new_ou("listen-attrs").unwrap();
    s.ldapadd(&people(&base, &["ann"])).unwrap();
    let mut l = source(s, &base).listen(true).unwrap();
    modify(s, &base, "ann", "description", "d1");
    assert_eq!(
        next(l.as_mut()).attributes,
        Some(vec!["description".to_owned()])
    );
    s.ldapmodify(&format!(
        "dn: uid=ann,{base}\nchangetype: modify\nreplace: title\ntitle: t2\n-\ndelete: description\n"
    ))
    .unwrap();
    assert_eq!(
        next(l.as_mut()).attributes,
        Some(vec!["description".to_owned(), "title".to_owned()])
    );
    s.ldapadd(&people(&base, &["bob"])).unwrap();
    assert_eq!(next(l.as_mut()).attributes, None, "an add: unknown");
    modify(s, &base, "bob", "title", "t3");
    assert_eq!(next(l.as_mut()).attributes, Some(vec!["title".to_owned()]));
}

/// The notification channel of an account whose size limit (50) only a
/// paged search passes, anchored by `uid`, paging by `page_size`.
fn limited_source(s: &Slapd, base: &str, page_size: usize) -> Arc<dyn ChangeSource> {
    let detection = LdapFactory.change_detection(
        &settings(json!({
            "url": s.url(), "bind_dn": LIMITED, "password": ACCOUNT_PASSWORD,
            "base_dns": [base], "page_size": page_size,
            "object_classes": { "person": "inetOrgPerson" },
            "attributes": ["uid", "title", "description"],
        })),
        &serde_json::Map::new(),
        &ctx(Path::new("."), vec![uid_type("person")]),
    );
    detection
        .notification()
        .expect("a notification")
        .source
        .clone()
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("p{i:04}")).collect()
}

#[test]
fn asked_for_attributes_a_listener_should_read_past_the_size_limit() {
    let s = slapd();
    let base = s.new_ou("listen-paged").unwrap();
    let names = numbered(120);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    s.ldapadd(&people(&base, &names)).unwrap();
    // An unpaged read of every entry stops at 50 (sizeLimitExceeded).
    let mut l = limited_source(s, &base, 40).listen(true).unwrap();
    for uid in ["p0110", "p0003"] {
        modify(s, &base, uid, "description", "ignored");
        let e = next(l.as_mut());
        assert_eq!(e.object, format!("uid={uid},{base}"));
        assert_eq!(e.attributes, Some(vec!["description".to_owned()]));
        modify(s, &base, uid, "title", "relevant");
        assert_eq!(next(l.as_mut()).attributes, Some(vec!["title".to_owned()]));
    }
    let rest = l.next_change(Duration::from_millis(50)).unwrap();
    assert!(rest.as_ref().is_none_or(by_uuid), "{rest:?}");
}

#[test]
fn a_change_made_while_the_entries_are_read_should_be_told() {
    let s = slapd();
    let base = s.new_ou("listen-during").unwrap();
    let names = numbered(1000);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    s.ldapadd(&people(&base, &refs)).unwrap();
    // Two changes of each entry in turn, from the last (the read pages
    // from the first), by one ldapmodify given them each millisecond,
    // before, while and after the listener reads the entries (page by
    // page of 2: 500 reads): the title, then the description
    // (ignored: a read that holds both must not tell the first as that).
    let order: Vec<String> = names.iter().rev().cloned().collect();
    let mut tool = Command::new("ldapmodify")
        .args([
            "-x",
            "-H",
            s.url(),
            "-D",
            s.admin_dn(),
            "-w",
            s.admin_password(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = tool.stdin.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, base, order) = (stop.clone(), base.clone(), order.clone());
        std::thread::spawn(move || {
            for name in &order {
                if stop.load(SeqCst) {
                    break;
                }
                let change = ["title", "description"].map(|a| {
                    format!(
                        "dn: uid={name},{base}\nchangetype: modify\nreplace: {a}\n{a}: changed\n\n"
                    )
                });
                input.write_all(change.concat().as_bytes()).unwrap();
                input.flush().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let changed = || {
        s.ldapsearch(&base, "(description=changed)", &["1.1"])
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("dn:"))
            .count()
    };
    while changed() == 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut l = limited_source(s, &base, 2).listen(true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, SeqCst);
    writer.join().unwrap();
    assert!(tool.wait().unwrap().success());
    let made = changed();
    assert!(
        made < names.len(),
        "the changes ended before the listener read the entries"
    );
    let mut told = Vec::new();
    while let Some(e) = l.next_change(Duration::from_millis(500)).unwrap() {
        if !by_uuid(&e) {
            told.push(e);
        }
    }
    let at = |e: &autosync_connector::ChangeEvent| {
        order
            .iter()
            .position(|n| e.object == format!("uid={n},{base}"))
            .unwrap_or_else(|| panic!("told {e:?}"))
    };
    let mut seen: Vec<usize> = told.iter().map(at).collect();
    seen.sort();
    seen.dedup();
    // Every change since the cookie the listener starts from is told (the
    // first told is the first after it), none after the last made.
    let first = *seen.first().expect("changes told");
    assert_eq!(seen, (first..made).collect::<Vec<_>>(), "{told:?}");
    // An entry's first change told (its title: the first entry's may be
    // its description) asks: told naming the title, or none (the read
    // may hold it), or no attribute.
    for i in first + 1..made {
        let e = told.iter().find(|e| at(e) == i).unwrap();
        let asks = match &e.attributes {
            None => true,
            Some(a) => a.is_empty() || a.contains(&"title".to_owned()),
        };
        assert!(asks, "{e:?} of {told:?}");
    }
    assert!(
        told.iter().any(|e| e.attributes.is_none()),
        "no change was made while the entries were read: {told:?}"
    );
    assert!(
        told.iter()
            .any(|e| e.attributes == Some(vec!["description".to_owned()])),
        "no change was made once listening: {told:?}"
    );
}

/// A change-notification trigger on `base`, started; its events.
fn trigger(
    s: &Slapd,
    base: &str,
    config: serde_json::Value,
) -> (TriggerSet, mpsc::UnboundedReceiver<TriggerEvent>) {
    let mut configs = parse_triggers("dir", &json!([config])).unwrap();
    let source = source(s, base);
    for c in &mut configs {
        if let autosync_triggers::TriggerConfig::ChangeNotification(n) = c {
            n.source = autosync_triggers::Provided::new(source.clone());
        }
    }
    let ctx = BuildContext {
        ma: "dir",
        base_dir: Path::new("."),
        default_watch_path: None,
        profiles: &[],
    };
    let mut set = TriggerSet::build(&ctx, &configs, &BTreeMap::new()).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    set.start(&TriggerDeps {
        sink: Arc::new(tx),
        clock: Arc::new(SystemClock),
        host: Arc::new(NoScriptHost),
        rng_seed: None,
    });
    (set, rx)
}

/// The next request (errors skipped), or `None` after `quiet` without one.
async fn request(
    rx: &mut mpsc::UnboundedReceiver<TriggerEvent>,
    quiet: Duration,
) -> Option<TriggerRequest> {
    loop {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(TriggerEvent::Request(r))) => return Some(r),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Changes `uid`'s title until the trigger asks (it listens from then),
/// then lets what that asked for pass.
async fn listening(
    s: &Slapd,
    base: &str,
    uid: &str,
    rx: &mut mpsc::UnboundedReceiver<TriggerEvent>,
) {
    for i in 0..100 {
        modify(s, base, uid, "title", &format!("warm {i}"));
        if request(rx, Duration::from_millis(200)).await.is_some() {
            while request(rx, Duration::from_millis(200)).await.is_some() {}
            return;
        }
    }
    panic!("the trigger never asked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_should_ask_at_once_and_be_covered_by_few_requests() {
    let s = slapd();
    let base = s.new_ou("burst").unwrap();
    s.ldapadd(&people(&base, &["ann"])).unwrap();
    let (mut set, mut rx) = trigger(s, &base, json!({ "type": "change-notification" }));
    listening(s, &base, "ann", &mut rx).await;

    // One change asks at once.
    modify(s, &base, "ann", "title", "one");
    let answered = Instant::now();
    let r = request(&mut rx, Duration::from_secs(5)).await.unwrap();
    assert!(
        answered.elapsed() < Duration::from_millis(100),
        "{:?}",
        answered.elapsed()
    );
    assert_eq!((r.ma.as_str(), r.profile.as_str()), ("dir", "delta-import"));

    // A burst of 300 changes: a request at its start, few more.
    let ldif: String = (0..300)
        .map(|i| format!("dn: uid=ann,{base}\nchangetype: modify\nreplace: title\ntitle: b{i}\n\n"))
        .collect();
    let started = Instant::now();
    s.ldapmodify(&ldif).unwrap();
    let took = started.elapsed();
    let mut n = 0;
    while request(&mut rx, Duration::from_millis(300)).await.is_some() {
        n += 1;
    }
    let bound = 2 + (took.as_millis() / 25) as usize;
    assert!(
        (1..=bound).contains(&n),
        "{n} requests for 300 changes in {took:?}"
    );
    set.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_of_ignored_attributes_only_should_ask_nothing() {
    let s = slapd();
    let base = s.new_ou("ignored").unwrap();
    s.ldapadd(&people(&base, &["ann"])).unwrap();
    let (mut set, mut rx) = trigger(
        s,
        &base,
        json!({ "type": "change-notification", "ignore_attributes": ["description"] }),
    );
    listening(s, &base, "ann", &mut rx).await;
    for i in 0..3 {
        modify(s, &base, "ann", "description", &format!("d{i}"));
    }
    // Told in order: had those asked, this would be the second request.
    modify(s, &base, "ann", "title", "relevant");
    assert!(request(&mut rx, Duration::from_secs(5)).await.is_some());
    assert!(
        request(&mut rx, Duration::from_millis(300)).await.is_none(),
        "the description changes asked for an import"
    );
    set.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_should_be_listened_to_again_with_a_catch_up_that_misses_nothing() {
    let mut s = SlapdBuilder::new().start().unwrap();
    let base = s.new_ou("killed").unwrap();
    s.ldapadd(&people(&base, &["ann", "bob"])).unwrap();
    let mut conn: Box<dyn Connector> = build(types(), connector_settings(&s, &base));
    // The connector blocks on a runtime of its own: off this one's workers.
    let watermark =
        tokio::task::block_in_place(|| crate::common::drain(conn.full_import(None).unwrap()).1);
    let (mut set, mut rx) = trigger(&s, &base, json!({ "type": "change-notification" }));
    listening(&s, &base, "ann", &mut rx).await;
    let watermark = {
        // The warm-up changed ann: start after it.
        tokio::task::block_in_place(|| {
            crate::common::drain(conn.delta_import(watermark.as_deref()).unwrap()).1
        })
    };

    s.kill().unwrap();
    // Told it is not listening.
    let down = match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(TriggerEvent::Error(e))) => e,
        other => panic!("the trigger did not say it stopped listening: {other:?}"),
    };
    assert!(!down.stopped, "{down:?}");
    s.restart().unwrap();
    // A change made before the trigger listens again.
    modify(&s, &base, "bob", "title", "while away");
    let catch_up = loop {
        let r = request(&mut rx, Duration::from_secs(10))
            .await
            .expect("a catch-up request");
        if r.trigger.ends_with("(catch-up after listening again)") {
            break r;
        }
    };
    assert_eq!(catch_up.profile, "delta-import");
    // The delta import it asks for (a run builds its connector) reads it.
    // (A connector's runtime is dropped off this runtime's workers too.)
    let old = std::mem::replace(&mut conn, build(types(), connector_settings(&s, &base)));
    tokio::task::block_in_place(|| drop(old));
    let (batches, _) = tokio::task::block_in_place(|| {
        crate::common::drain(conn.delta_import(watermark.as_deref()).unwrap())
    });
    let titles: Vec<String> = batches
        .iter()
        .flatten()
        .filter_map(|i| i.as_ref().ok())
        .filter_map(|o| o.attributes.get("title").map(|v| v.to_text()))
        .collect();
    assert!(titles.contains(&"while away".to_owned()), "{titles:?}");
    // And changes ask again.
    while request(&mut rx, Duration::from_millis(200)).await.is_some() {}
    modify(&s, &base, "ann", "title", "back");
    assert!(request(&mut rx, Duration::from_secs(5)).await.is_some());
    set.stop().await;
    tokio::task::block_in_place(|| drop(conn));
}
