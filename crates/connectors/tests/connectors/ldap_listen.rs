//! Change notification of the LDAP connector against the kit's slapd:
//! its listener tells a change within milliseconds (measured from the
//! server's answer to the event), with the attributes it touched when
//! asked; the `change-notification` trigger built on it asks at once,
//! coalesces a burst, asks nothing for ignored attributes, and after
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
use std::path::Path;
use std::sync::Arc;
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

/// The next change, waiting at most a few seconds.
fn next(l: &mut dyn ChangeListener) -> autosync_connector::ChangeEvent {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(e) = l.next_change(Duration::from_millis(200)).unwrap() {
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
