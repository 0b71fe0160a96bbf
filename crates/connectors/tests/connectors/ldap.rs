//! The LDAP connector against the test binary's own slapd (the testkit's):
//! the compliance suite, then paging past the server's size limit,
//! export of people and groups (adds, value-level member changes, renames,
//! moves, deletes, replays), per-entry errors, TLS (ldaps and StartTLS
//! with the kit's CA, a wrong CA refused), SASL EXTERNAL over ldapi,
//! injection attempts in data, and settings.

use crate::ldap_support::*;
use autosync_connector::{
    ConnectorErrorKind, ConnectorFactory, ExportChange, ExportOutcome, ImportItem, ImportedObject,
};
use autosync_connectors::ldap::LdapFactory;
use autosync_model::{AttrChanges, ExportKind, ObjectTypeDef, Value, ValueDelta};
use serde_json::json;
use std::process::Command;

crate::common::compliance_suite!(compliance, compliance_target);

fn objects(items: Vec<ImportItem>) -> Vec<ImportedObject> {
    items
        .into_iter()
        .map(|i| i.unwrap_or_else(|e| panic!("record error: {e:?}")))
        .collect()
}

fn person_type() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "person".into(),
        anchor: "entryUUID".into(),
        dn: Some("dn".into()),
        references: Default::default(),
    }
}

fn group_type() -> ObjectTypeDef {
    ObjectTypeDef {
        name: "group".into(),
        ..person_type()
    }
}

fn change(
    kind: ExportKind,
    t: &str,
    anchor: &str,
    dn: &str,
    changes: &[(&str, Option<Value>)],
) -> ExportChange {
    ExportChange {
        object_type: t.into(),
        anchor: anchor.into(),
        dn: dn.into(),
        kind,
        changes: changes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<AttrChanges>(),
        values: Default::default(),
        new_dn: None,
    }
}

fn texts(vs: &[&str]) -> Value {
    Value::Multi(vs.iter().map(|v| Value::from(*v)).collect())
}

fn export(
    conn: &mut dyn autosync_connector::Connector,
    batch: &[ExportChange],
) -> Vec<ExportOutcome> {
    let mut session = conn.begin_export().unwrap();
    let out = session.apply(batch).unwrap();
    assert_eq!(out.len(), batch.len());
    assert!(session.durable_per_batch());
    session.commit().unwrap();
    out
}

fn assigned(o: &ExportOutcome) -> String {
    match o {
        ExportOutcome::Applied { anchor: Some(a) } => a.clone(),
        other => panic!("expected an applied add with a new anchor, got {other:?}"),
    }
}

fn add_accounts(base: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("dn: uid=a{i:04},{base}\nobjectClass: autosyncTest\nuid: a{i:04}\ndescription: entry {i}\n\n")
        })
        .collect()
}

#[test]
fn a_full_import_should_page_past_the_servers_size_limit() {
    let s = slapd();
    let base = s.new_ou("paging").unwrap();
    s.ldapadd(&add_accounts(&base, 130)).unwrap();
    // The limit is real: an unpaged search by that account stops at 50.
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-H",
            s.url(),
            "-D",
            LIMITED,
            "-w",
            ACCOUNT_PASSWORD,
            "-b",
            &base,
            "(uid=*)",
            "1.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    for page_size in [40, 500] {
        let mut conn = build(
            vec![uid_type("account")],
            json!({
                "url": s.url(), "bind_dn": LIMITED, "password": ACCOUNT_PASSWORD,
                "base_dns": [base], "page_size": page_size,
                "object_classes": { "account": "autosyncTest" },
            }),
        );
        let (batches, wm) = crate::common::drain(conn.full_import(None).unwrap());
        assert!(wm.is_some(), "a full import leaves a watermark");
        let all: Vec<ImportedObject> = objects(batches.iter().flatten().cloned().collect());
        assert_eq!(all.len(), 130, "page size {page_size}");
        assert!(batches.iter().all(|b| b.len() <= page_size));
        if page_size == 40 {
            assert_eq!(batches.len(), 4);
        }
        let o = all.iter().find(|o| o.anchor == "a0007").unwrap();
        assert_eq!(o.object_type, "account");
        assert_eq!(o.dn, format!("uid=a0007,{base}"));
        assert_eq!(o.attributes["description"], Value::from("entry 7"));
        assert_eq!(o.attributes["dn"], Value::from(o.dn.as_str()));
        assert_eq!(o.attributes["uid"], Value::from("a0007"));
        assert!(
            !o.attributes
                .keys()
                .any(|k| k.eq_ignore_ascii_case("entryCSN")),
            "the change stamp read for the watermark is not an attribute"
        );
    }
    // An account that may not page past its limit: the import stops
    // rather than return part of the directory.
    let mut strict = build(
        vec![uid_type("account")],
        json!({
            "url": s.url(), "bind_dn": STRICT, "password": ACCOUNT_PASSWORD,
            "base_dns": [base], "page_size": 20,
        }),
    );
    let mut stream = strict.full_import(None).unwrap();
    let err = loop {
        match stream.next_batch() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the import ended although the server cut it short"),
            Err(e) => break e,
        }
    };
    assert!(err.message.contains("sizeLimitExceeded"), "{err}");
}

/// People and groups, anchored by entryUUID, with the classes of each.
fn directory_settings(s: &autosync_testkit::Slapd, base: &str) -> serde_json::Value {
    admin_settings(
        s,
        base,
        json!({ "object_classes": { "person": "inetOrgPerson", "group": "groupOfNames" } }),
    )
}

#[test]
fn export_should_add_change_members_by_value_rename_move_and_delete() {
    let s = slapd();
    let base = s.new_ou("export").unwrap();
    s.ldapadd(&format!(
        "dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=leavers,{base}\nobjectClass: organizationalUnit\nou: leavers\n"
    ))
    .unwrap();
    let types = vec![person_type(), group_type()];
    let mut conn = build(types.clone(), directory_settings(s, &base));
    let dn = |cn: &str| format!("cn={cn},ou=people,{base}");
    let person = |cn: &str, mail: &str| {
        change(
            ExportKind::Add,
            "person",
            &format!("tmp-{cn}"),
            &dn(cn),
            &[
                ("sn", Some(Value::from(cn))),
                ("mail", Some(Value::from(mail))),
                ("dn", Some(Value::from(dn(cn)))),
            ],
        )
    };
    let out = export(
        conn.as_mut(),
        &[
            person("Ann", "ann@example.org"),
            person("Bob", "bob@example.org"),
            person("Cy", "cy@example.org"),
        ],
    );
    let anchors: Vec<String> = out.iter().map(assigned).collect();
    // The anchors are the entries' entryUUIDs.
    for (i, cn) in ["Ann", "Bob", "Cy"].iter().enumerate() {
        let e = &search(s, &dn(cn), "(objectClass=*)", &["entryUUID", "cn", "sn"])[0];
        assert_eq!(e.texts("entryUUID"), vec![anchors[i].clone()]);
        assert_eq!(
            e.texts("cn"),
            vec![(*cn).to_owned()],
            "the RDN's value is in the entry"
        );
    }
    let group_dn = format!("cn=staff,{base}");
    let out = export(
        conn.as_mut(),
        &[change(
            ExportKind::Add,
            "group",
            "tmp-staff",
            &group_dn,
            &[
                ("member", Some(texts(&[&dn("Ann"), &dn("Bob")]))),
                ("description", Some(Value::from("all staff"))),
            ],
        )],
    );
    let group = assigned(&out[0]);
    let members = || search(s, &group_dn, "(objectClass=*)", &["member"])[0].texts("member");
    assert_eq!(members(), vec![dn("Ann"), dn("Bob")]);

    // One member in, one out: sent as values; sent twice (a replay).
    let mut by_value = change(ExportKind::Update, "group", &group, &group_dn, &[]);
    by_value.values.insert(
        "member".into(),
        ValueDelta {
            add: vec![Value::from(dn("Cy"))],
            remove: vec![Value::from(dn("Ann").to_uppercase())],
        },
    );
    for _ in 0..2 {
        let out = export(conn.as_mut(), std::slice::from_ref(&by_value));
        assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }]);
        assert_eq!(members(), vec![dn("Bob"), dn("Cy")]);
    }

    // A single-valued replacement and a removal.
    let update = change(
        ExportKind::Update,
        "person",
        &anchors[1],
        &dn("Bob"),
        &[
            ("mail", Some(Value::from("robert@example.org"))),
            ("description", None),
            ("sn", Some(Value::from("Roberts"))),
        ],
    );
    assert_eq!(
        export(conn.as_mut(), &[update]),
        vec![ExportOutcome::Applied { anchor: None }]
    );
    let bob = &search(s, &dn("Bob"), "(objectClass=*)", &["mail", "sn"])[0];
    assert_eq!(bob.texts("mail"), vec!["robert@example.org"]);
    assert_eq!(bob.texts("sn"), vec!["Roberts"]);

    // A rename (same parent) and a move (another parent).
    let mut rename = change(ExportKind::Rename, "person", &anchors[1], &dn("Bob"), &[]);
    rename.new_dn = Some(dn("Robert"));
    let mut moved = change(
        ExportKind::Update,
        "person",
        &anchors[2],
        &dn("Cy"),
        &[("title", Some(Value::from("gone")))],
    );
    moved.new_dn = Some(format!("cn=Cy,ou=leavers,{base}"));
    let out = export(conn.as_mut(), &[rename.clone(), moved.clone()]);
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }; 2]);
    assert!(
        search(s, &base, "(cn=Bob)", &["cn"]).is_empty(),
        "the old RDN value is gone"
    );
    let robert = &search(s, &dn("Robert"), "(objectClass=*)", &["entryUUID", "cn"])[0];
    assert_eq!(robert.texts("entryUUID"), vec![anchors[1].clone()]);
    let cy = &search(
        s,
        &format!("cn=Cy,ou=leavers,{base}"),
        "(objectClass=*)",
        &["title", "entryUUID"],
    )[0];
    assert_eq!(cy.texts("title"), vec!["gone"]);
    assert_eq!(cy.texts("entryUUID"), vec![anchors[2].clone()]);
    // Replayed: the entries are found by their anchors where they are now.
    let out = export(conn.as_mut(), &[rename, moved]);
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }; 2]);
    // A rename onto another entry's DN fails whole: its other attributes
    // are not written, and the error names the entry in the way.
    let mut onto = change(
        ExportKind::Update,
        "person",
        &anchors[1],
        &dn("Robert"),
        &[("title", Some(Value::from("taken")))],
    );
    onto.new_dn = Some(dn("Ann"));
    let out = export(conn.as_mut(), &[onto]);
    match &out[0] {
        ExportOutcome::Failed { error_type, detail } => {
            assert_eq!(error_type, "already-exists");
            assert!(detail.contains(&dn("Ann")), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let robert = &search(s, &dn("Robert"), "(objectClass=*)", &["title"])[0];
    assert!(robert.texts("title").is_empty(), "nothing of it was sent");

    // The import sees it all, typed and anchored.
    let all = objects(import(conn.as_mut()));
    assert_eq!(all.len(), 4, "{all:?}");
    let g = all.iter().find(|o| o.anchor == group).unwrap();
    assert_eq!(g.object_type, "group");
    assert_eq!(g.dn, group_dn);
    let p = all.iter().find(|o| o.anchor == anchors[2]).unwrap();
    assert_eq!(p.object_type, "person");
    assert_eq!(p.dn, format!("cn=Cy,ou=leavers,{base}"));
    assert_eq!(p.attributes["entryUUID"], Value::from(anchors[2].as_str()));
    assert_eq!(p.attributes["objectClass"], Value::from("inetOrgPerson"));

    // A replayed add (the export stopped after the server took it, before
    // the engine recorded it) finds the entry holding what it sends: the
    // add's own entry, whose anchor it gives.
    let mail = || search(s, &dn("Ann"), "(objectClass=*)", &["mail"])[0].texts("mail");
    let now = mail();
    let mut again = person("Ann", &now[0].to_uppercase());
    again.anchor = "tmp-again".into();
    let out = export(conn.as_mut(), &[again]);
    assert_eq!(assigned(&out[0]), anchors[0]);
    let now = mail();
    assert_eq!(now, [now[0].to_uppercase()], "the replay's values are kept");
    // Another object's add at the same DN (a namesake, an entry made
    // outside) fails and never touches the entry there.
    let mut namesake = person("Ann", "another.ann@example.org");
    namesake.anchor = "tmp-namesake".into();
    let out = export(conn.as_mut(), &[namesake]);
    assert!(
        matches!(&out[0], ExportOutcome::Failed { error_type, detail }
            if error_type == "already-exists" && detail.contains("`mail` differs")),
        "{out:?}"
    );
    assert_eq!(mail(), now);

    // Deletes; deleting what is gone is done.
    let del = change(ExportKind::Delete, "person", &anchors[0], &dn("Ann"), &[]);
    for _ in 0..2 {
        assert_eq!(
            export(conn.as_mut(), std::slice::from_ref(&del)),
            vec![ExportOutcome::Applied { anchor: None }]
        );
    }
    assert!(search(s, &base, "(cn=Ann)", &["cn"]).is_empty());
}

#[test]
fn refused_changes_should_fail_alone_with_their_ldap_error() {
    let s = slapd();
    let base = s.new_ou("errors").unwrap();
    let mut conn = build(
        vec![person_type(), group_type()],
        directory_settings(s, &base),
    );
    let dn = |cn: &str| format!("cn={cn},{base}");
    let add = |cn: &str, attrs: &[(&str, Option<Value>)]| {
        change(ExportKind::Add, "person", cn, &dn(cn), attrs)
    };
    let sn = ("sn", Some(Value::from("x")));
    let batch = vec![
        add(
            "NoSuchAttribute",
            &[sn.clone(), ("favouriteColour", Some(Value::from("blue")))],
        ),
        add("MissingSn", &[("mail", Some(Value::from("m@example.org")))]),
        add("Good", std::slice::from_ref(&sn)),
        change(
            ExportKind::Update,
            "person",
            "00000000-0000-0000-0000-000000000000",
            "cn=ghost",
            std::slice::from_ref(&sn),
        ),
        add(
            "TwoSurnames",
            &[
                sn.clone(),
                ("preferredLanguage", Some(texts(&["en", "fr"]))),
            ],
        ),
        change(
            ExportKind::Add,
            "person",
            "out",
            "cn=Out,dc=elsewhere,dc=org",
            std::slice::from_ref(&sn),
        ),
        change(
            ExportKind::Add,
            "robot",
            "r",
            &dn("Robot"),
            std::slice::from_ref(&sn),
        ),
        add("AlsoGood", std::slice::from_ref(&sn)),
    ];
    let out = export(conn.as_mut(), &batch);
    let kinds: Vec<&str> = out
        .iter()
        .map(|o| match o {
            ExportOutcome::Applied { .. } => "applied",
            ExportOutcome::Failed { error_type, detail } => {
                assert!(!detail.is_empty());
                error_type
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "schema-violation",
            "object-class-violation",
            "applied",
            "object-not-found",
            "constraint-violation",
            "dn-out-of-scope",
            "unknown-object-type",
            "applied",
        ]
    );
    let ExportOutcome::Failed { detail, .. } = &out[0] else {
        unreachable!()
    };
    assert!(detail.contains("undefinedAttributeType (17)"), "{detail}");
    let names: Vec<String> = objects(import(conn.as_mut()))
        .into_iter()
        .map(|o| o.dn)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

fn tls_settings(
    s: &autosync_testkit::Slapd,
    url: &str,
    base: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut v = admin_settings(s, base, extra);
    v["url"] = json!(url);
    v["object_classes"] = json!({ "account": "autosyncTest" });
    v
}

#[test]
fn tls_should_trust_the_configured_ca_and_refuse_another() {
    let s = slapd();
    let base = s.new_ou("tls").unwrap();
    s.ldapadd(&add_accounts(&base, 3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, autosync_testkit::tls::other_ca_pem().unwrap()).unwrap();
    let ca = s.ca_file().display().to_string();
    let wrong = wrong.display().to_string();
    let types = vec![uid_type("account")];
    for (url, start_tls) in [(s.ldaps_url(), false), (s.url(), true)] {
        let good = tls_settings(
            s,
            url,
            &base,
            json!({ "ca_file": ca, "start_tls": start_tls }),
        );
        assert_eq!(
            objects(import(build(types.clone(), good).as_mut())).len(),
            3,
            "{url}"
        );
        let bad = tls_settings(
            s,
            url,
            &base,
            json!({ "ca_file": wrong, "start_tls": start_tls }),
        );
        let err = match build(types.clone(), bad).full_import(None) {
            Ok(_) => panic!("{url}: a server whose CA is not trusted must be refused"),
            Err(e) => e,
        };
        assert_eq!(err.kind, ConnectorErrorKind::ServerDown, "{err}");
        assert!(err.message.to_lowercase().contains("certificate"), "{err}");
        assert!(!err.message.contains(s.admin_password()));
        // Without verification (an explicit choice), it connects.
        let off = tls_settings(
            s,
            url,
            &base,
            json!({ "tls_verify": false, "start_tls": start_tls }),
        );
        assert_eq!(
            objects(import(build(types.clone(), off).as_mut())).len(),
            3,
            "{url}"
        );
    }
    // The system's CAs alone do not know the kit's.
    let none = tls_settings(s, s.ldaps_url(), &base, json!({}));
    assert!(build(types, none).full_import(None).is_err());
}

#[test]
fn sasl_external_over_ldapi_should_bind_as_the_socket_peer() {
    let s = slapd();
    let base = s.new_ou("external").unwrap();
    let mut conn = build(
        vec![uid_type("account")],
        json!({ "url": s.ldapi_url(), "sasl": "external", "base_dns": [base], "scope": "one" }),
    );
    let add = change(
        ExportKind::Add,
        "account",
        "ext1",
        &format!("uid=ext1,{base}"),
        &[("objectClass", Some(Value::from("autosyncTest")))],
    );
    // The kit maps the peer to the administrator: it may write.
    assert_eq!(
        export(conn.as_mut(), &[add]),
        vec![ExportOutcome::Applied { anchor: None }]
    );
    let all = objects(import(conn.as_mut()));
    assert_eq!(
        all.iter().map(|o| o.anchor.as_str()).collect::<Vec<_>>(),
        ["ext1"]
    );
}

#[test]
fn data_should_never_become_filter_or_dn_syntax() {
    let s = slapd();
    let base = s.new_ou("injection").unwrap();
    s.ldapadd(&add_accounts(&base, 3)).unwrap();
    let mut conn = build(
        vec![uid_type("account")],
        admin_settings(
            s,
            &base,
            json!({ "object_classes": { "account": "autosyncTest" } }),
        ),
    );
    // An anchor that would match every entry if pasted into a filter.
    let evil = "*)(uid=*";
    let touch = change(
        ExportKind::Update,
        "account",
        evil,
        "uid=x",
        &[("description", Some(Value::from("pwned")))],
    );
    let out = export(
        conn.as_mut(),
        &[
            touch.clone(),
            change(ExportKind::Delete, "account", evil, "uid=x", &[]),
        ],
    );
    assert!(
        matches!(&out[0], ExportOutcome::Failed { error_type, .. } if error_type == "object-not-found"),
        "{out:?}"
    );
    assert_eq!(out[1], ExportOutcome::Applied { anchor: None });
    assert!(search(s, &base, "(description=pwned)", &["uid"]).is_empty());
    assert_eq!(search(s, &base, "(uid=*)", &["uid"]).len(), 3);

    // An entry whose anchor is that text, and whose DN holds every
    // character a DN escapes, built with dn_escape.
    let cn = "Doe, Jane \"JD\" + <x>;=#\\ ";
    let dn = format!("cn={},{base}", ldap3::dn_escape(cn));
    let add = change(
        ExportKind::Add,
        "account",
        evil,
        &dn,
        &[
            ("objectClass", Some(Value::from("autosyncTest"))),
            ("description", Some(Value::from("mine"))),
        ],
    );
    assert_eq!(
        export(conn.as_mut(), &[add]),
        vec![ExportOutcome::Applied { anchor: None }]
    );
    let found = search(
        s,
        &base,
        &format!("(uid={})", ldap3::ldap_escape(evil)),
        &["cn", "uid"],
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].texts("cn"), vec![cn.to_owned()]);
    // Now the update finds exactly that entry, and the delete deletes it
    // alone.
    assert_eq!(
        export(conn.as_mut(), &[touch]),
        vec![ExportOutcome::Applied { anchor: None }]
    );
    let pwned = search(s, &base, "(description=pwned)", &["uid"]);
    assert_eq!(
        pwned
            .iter()
            .flat_map(|e| e.texts("uid"))
            .collect::<Vec<_>>(),
        vec![evil.to_owned()]
    );
    let all = objects(import(conn.as_mut()));
    let mine = all.iter().find(|o| o.anchor == evil).unwrap();
    assert_eq!(mine.attributes["description"], Value::from("pwned"));
    let del = change(ExportKind::Delete, "account", evil, &mine.dn, &[]);
    assert_eq!(
        export(conn.as_mut(), &[del]),
        vec![ExportOutcome::Applied { anchor: None }]
    );
    assert_eq!(search(s, &base, "(uid=*)", &["uid"]).len(), 3);
}

#[test]
fn binary_values_should_round_trip() {
    let s = slapd();
    let base = s.new_ou("binary").unwrap();
    let mut conn = build(
        vec![uid_type("person")],
        admin_settings(
            s,
            &base,
            json!({ "object_classes": { "person": "inetOrgPerson" }, "binary_attributes": ["jpegPhoto"] }),
        ),
    );
    let photo: Vec<u8> = (0..=255u8).rev().collect();
    let dn = format!("uid=pic,{base}");
    let add = change(
        ExportKind::Add,
        "person",
        "pic",
        &dn,
        &[
            ("cn", Some(Value::from("Pic"))),
            ("sn", Some(Value::from("Pic"))),
            ("jpegPhoto", Some(Value::Binary(photo.clone()))),
        ],
    );
    assert_eq!(
        export(conn.as_mut(), &[add]),
        vec![ExportOutcome::Applied { anchor: None }]
    );
    let all = objects(import(conn.as_mut()));
    assert_eq!(all[0].attributes["jpegPhoto"], Value::Binary(photo.clone()));
    assert_eq!(all[0].anchor, "pic");

    // The base64 text of a photo (a CSV column) is that photo, not its
    // characters (an LDAP review: the entry got the text); text that is
    // no base64 is refused, naming the attribute.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&photo[..100]);
    let update = change(
        ExportKind::Update,
        "person",
        "pic",
        &dn,
        &[("jpegPhoto", Some(Value::from(b64.as_str())))],
    );
    assert_eq!(
        export(conn.as_mut(), &[update]),
        vec![ExportOutcome::Applied { anchor: None }]
    );
    let all = objects(import(conn.as_mut()));
    assert_eq!(
        all[0].attributes["jpegPhoto"],
        Value::Binary(photo[..100].to_vec())
    );
    let bad = change(
        ExportKind::Update,
        "person",
        "pic",
        &dn,
        &[("jpegPhoto", Some(Value::from("not a photo!")))],
    );
    match &export(conn.as_mut(), &[bad])[0] {
        ExportOutcome::Failed { error_type, detail } => {
            assert_eq!(error_type, "value-not-representable");
            assert!(detail.contains("jpegPhoto"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connection_problems_should_stop_the_step_with_the_right_kind() {
    let s = slapd();
    let base = s.new_ou("down").unwrap();
    let types = vec![uid_type("account")];
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut v = admin_settings(s, &base, json!({ "connect_timeout_ms": 2000 }));
    v["url"] = json!(format!("ldap://127.0.0.1:{port}"));
    let err = build(types.clone(), v).full_import(None).err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::ServerDown, "{err}");
    // A wrong password: a configuration problem, and not in the message.
    let mut v = admin_settings(s, &base, json!({}));
    v["password"] = json!("not-the-password-qzxwv");
    let err = build(types.clone(), v).begin_export().err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::Configuration, "{err}");
    assert!(err.message.contains("invalidCredentials"), "{err}");
    assert!(!err.message.contains("qzxwv"), "{err}");
    // A base DN that does not exist: nothing imported rather than all
    // staged for deletion.
    let v = admin_settings(s, &format!("ou=nowhere,{base}"), json!({}));
    let mut conn = build(types, v);
    let err = conn.full_import(None).unwrap().next_batch().err().unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::Configuration, "{err}");
}

/// A `ca_file` that cannot be read, or holds no certificate, fails every
/// connection: it is an error of the settings at `ca_file`, naming the
/// file (it was found at the first run, `check` only warning that the
/// schema could not be read).
#[test]
fn a_ca_file_that_cannot_be_read_or_holds_no_certificate_should_be_an_error_at_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        autosync_testkit::tls::other_ca_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let ctx = crate::common::ctx(dir.path(), vec![uid_type("account")]);
    let errors = |ca: &str, tls: serde_json::Value| -> Vec<(String, String)> {
        let mut v = json!({ "ca_file": ca, "base_dns": ["dc=example,dc=org"] });
        for (k, x) in tls.as_object().unwrap() {
            v[k] = x.clone();
        }
        match LdapFactory.validate(&crate::common::settings(v), &ctx) {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.key, e.message)).collect(),
        }
    };
    let ldaps = json!({ "url": "ldaps://ldap.example.org" });
    let start_tls = json!({ "url": "ldap://ldap.example.org", "start_tls": true });
    for tls in [&ldaps, &start_tls] {
        assert_eq!(errors("ca.pem", tls.clone()), Vec::new(), "{tls}");
        let absolute = dir.path().join("ca.pem").display().to_string();
        assert_eq!(errors(&absolute, tls.clone()), Vec::new(), "{tls}");
        for (file, says) in [
            ("missing.pem", "cannot read ca_file `missing.pem`"),
            ("junk.pem", "ca_file `junk.pem`"),
            ("certs", "cannot read ca_file `certs`"),
        ] {
            if file == "certs" {
                std::fs::create_dir_all(dir.path().join("certs")).unwrap();
            }
            let got = errors(file, tls.clone());
            assert_eq!(got.len(), 1, "{file} {tls}: {got:?}");
            assert_eq!(got[0].0, "ca_file", "{got:?}");
            assert!(got[0].1.contains(says), "{file}: {got:?}");
            let full = dir.path().join(file).display().to_string();
            assert!(got[0].1.contains(&full), "names the file read: {got:?}");
        }
    }
    let got = errors("junk.pem", ldaps);
    assert!(got[0].1.contains("holds no PEM certificate"), "{got:?}");
}

#[test]
fn settings_should_be_checked_with_a_message_at_each_key() {
    // `ca_file = "ca.pem"` below is read, relative to the configuration.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        autosync_testkit::tls::other_ca_pem().unwrap(),
    )
    .unwrap();
    let ctx = crate::common::ctx(dir.path(), vec![person_type(), group_type()]);
    let errors = |v: serde_json::Value| -> Vec<(String, String)> {
        match LdapFactory.validate(&crate::common::settings(v), &ctx) {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.key, e.message)).collect(),
        }
    };
    // Keys and types first (each at its key, "did you mean")...
    let got =
        errors(json!({ "url": "ldap://x", "base_dns": ["dc=x"], "scope": "deep", "pasword": "x" }));
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["pasword", "scope"], "{got:?}");
    // ... then what the values mean together.
    let got = errors(json!({
        "url": "ldaps://ldap.example.org",
        "start_tls": true,
        "bind_dn": "cn=sync,dc=example,dc=org",
        "base_dns": ["dc=example,dc=org", "ou=people,dc=example,dc=org"],
        "filter": "(objectClass=person",
        "object_classes": { "persn": "inetOrgPerson", "group": "groupOfNames" },
        "page_size": 0,
    }));
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    for key in [
        "start_tls",
        "password",
        "base_dns",
        "filter",
        "object_classes",
        "page_size",
    ] {
        assert!(keys.contains(&key), "no error at `{key}`: {got:?}");
    }
    assert!(got.iter().any(|(_, m)| m.contains("persn")), "{got:?}");
    // A valid table; and a password never shows in an error.
    let ok = json!({
        "url": "ldap://127.0.0.1:389", "start_tls": true, "ca_file": "ca.pem",
        "bind_dn": "cn=sync,dc=example,dc=org", "password": "hunter2-secret",
        "base_dns": ["ou=people,dc=example,dc=org", "ou=groups,dc=example,dc=org"],
        "object_classes": { "person": ["inetOrgPerson", "posixAccount"], "group": "groupOfNames" },
        "scope": "one", "attributes": ["cn", "mail"], "binary_attributes": ["jpegPhoto"],
    });
    assert_eq!(errors(ok.clone()), Vec::new());
    // A port that is none is an error at `url` (a review: `check` passed
    // it, then every run was `stopped-server-down`); IPv6 and no port pass.
    for url in [
        "ldap://127.0.0.1:99999",
        "ldaps://ldap.example.org:abc/",
        "ldap://[::1]:0",
    ] {
        let mut bad = ok.clone();
        bad["url"] = json!(url);
        let got = errors(bad);
        assert!(
            got.iter()
                .any(|(k, m)| k == "url" && m.contains("is not a port")),
            "{url}: {got:?}"
        );
    }
    for url in [
        "ldap://[::1]:389",
        "ldap://[::1]",
        "ldaps://ldap.example.org",
    ] {
        let mut good = ok.clone();
        good["url"] = json!(url);
        assert!(!errors(good).iter().any(|(k, _)| k == "url"), "{url}");
    }
    let mut bad = ok;
    bad["ca_file"] = json!(42);
    let got = errors(bad);
    assert!(!format!("{got:?}").contains("hunter2"), "{got:?}");
    let mut sasl = json!({ "url": "ldapi:///run/slapd/ldapi", "sasl": "external", "base_dns": ["dc=x"],
        "object_classes": { "person": "inetOrgPerson", "group": "groupOfNames" } });
    assert_eq!(errors(sasl.clone()), Vec::new());
    sasl["password"] = json!("p");
    assert!(errors(sasl).iter().any(|(k, _)| k == "sasl"));
}

#[test]
fn an_entry_that_cannot_be_read_should_be_a_record_error_and_the_import_go_on() {
    let s = slapd();
    let base = s.new_ou("records").unwrap();
    s.ldapadd(&add_accounts(&base, 2)).unwrap();
    s.ldapadd(&format!(
        "dn: ou=sub,{base}\nobjectClass: organizationalUnit\nou: sub\n"
    ))
    .unwrap();
    // One type, no classes: every entry is an account, and the units
    // have no uid.
    let mut conn = build(
        vec![uid_type("account")],
        admin_settings(s, &base, json!({})),
    );
    let items = import(conn.as_mut());
    let (ok, errors): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 2);
    let errors: Vec<_> = errors.into_iter().map(Result::unwrap_err).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for e in &errors {
        assert_eq!(e.error_type, "missing-anchor");
        assert_eq!(e.anchor, None);
        assert!(e.location.starts_with("ou="), "{e:?}");
    }
}

/// Two object types whose classes are the same set, as LDAP compares
/// classes (case, repeats and order do not count), are refused at
/// `object_classes`, naming the MA and both types: the import could not
/// tell their entries apart (a review: `pgroup` groups read back as
/// `group`, then were disconnected for ever, every run a success).
#[test]
fn two_object_types_with_the_same_classes_should_be_refused() {
    let pgroup = ObjectTypeDef {
        name: "pgroup".into(),
        ..person_type()
    };
    let ctx = crate::common::ctx(
        std::path::Path::new("."),
        vec![person_type(), group_type(), pgroup],
    );
    let errors = |group: serde_json::Value, pgroup: serde_json::Value| {
        let v = json!({
            "url": "ldap://x", "base_dns": ["dc=x"],
            "object_classes": { "person": "inetOrgPerson", "group": group, "pgroup": pgroup },
        });
        match LdapFactory.validate(&crate::common::settings(v), &ctx) {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.key, e.message)).collect(),
        }
    };
    let got = errors(json!("groupOfNames"), json!("groupOfNames"));
    assert_eq!(got.len(), 1, "{got:?}");
    let (key, message) = &got[0];
    assert_eq!(key, "object_classes");
    assert!(
        message.starts_with(
            "object types `group` and `pgroup` of MA `test` have the same classes (groupOfNames): an entry read from the directory cannot be told to be one or the other"
        ),
        "{message}"
    );
    assert!(
        message.contains(r#"pgroup = ["groupOfNames", "extensibleObject"]"#),
        "{message}"
    );
    for (group, pgroup) in [
        (json!("groupOfNames"), json!(["GROUPOFNAMES"])),
        (
            json!("groupOfNames"),
            json!(["groupOfNames", "groupofnames"]),
        ),
        (
            json!(["groupOfNames", "posixGroup"]),
            json!(["posixgroup", "groupOfNames"]),
        ),
    ] {
        let got = errors(group.clone(), pgroup.clone());
        assert!(
            got.iter()
                .any(|(k, m)| k == "object_classes" && m.contains("the same classes")),
            "{group} and {pgroup}: {got:?}"
        );
    }
    // Sets that differ pass: the type with the most classes an entry has
    // is its type, and a tie is the import's record error.
    for (group, pgroup) in [
        (
            json!("groupOfNames"),
            json!(["groupOfNames", "extensibleObject"]),
        ),
        (
            json!(["groupOfNames", "posixGroup"]),
            json!(["groupOfNames", "extensibleObject"]),
        ),
    ] {
        assert_eq!(
            errors(group.clone(), pgroup.clone()),
            Vec::new(),
            "{group} and {pgroup}"
        );
    }
}

/// An entry with the classes of two types that have as many classes each
/// (`{a, b}` and `{a, c}`, which validation cannot rule out, for an entry
/// of `a`, `b` and `c`) is an `ambiguous-object-type` record error that
/// names both, not a guess by the MA's order; the other entries are read.
#[test]
fn an_entry_with_the_classes_of_two_types_alike_should_be_an_ambiguous_record_error() {
    let s = slapd();
    let base = s.new_ou("ambiguous").unwrap();
    let entry = |uid: &str, classes: &[&str]| {
        let classes: String = classes
            .iter()
            .map(|c| format!("objectClass: {c}\n"))
            .collect();
        format!("dn: uid={uid},{base}\n{classes}uid: {uid}\n\n")
    };
    s.ldapadd(
        &[
            entry("plain", &["autosyncTest"]),
            entry("ext", &["autosyncTest", "extensibleObject"]),
            entry("both", &["autosyncTest", "extensibleObject", "uidObject"]),
        ]
        .concat(),
    )
    .unwrap();
    let mut conn = build(
        vec![uid_type("plain"), uid_type("ext"), uid_type("uidobj")],
        admin_settings(
            s,
            &base,
            json!({ "object_classes": {
                "plain": "autosyncTest",
                "ext": ["autosyncTest", "extensibleObject"],
                "uidobj": ["autosyncTest", "uidObject"],
            } }),
        ),
    );
    let items = import(conn.as_mut());
    let (ok, errors): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    let mut typed: Vec<(String, String)> = objects(ok)
        .into_iter()
        .map(|o| (o.anchor, o.object_type))
        .collect();
    typed.sort();
    assert_eq!(
        typed,
        [
            ("ext".into(), "ext".into()),
            ("plain".into(), "plain".into())
        ]
    );
    let errors: Vec<_> = errors.into_iter().map(Result::unwrap_err).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.error_type, "ambiguous-object-type", "{e:?}");
    assert_eq!(e.anchor.as_deref(), Some("both"));
    assert!(
        e.detail.contains(
            "`ext` (autosyncTest+extensibleObject) and `uidobj` (autosyncTest+uidObject)"
        ),
        "{e:?}"
    );
}

/// A rename that changes only the case of the entry's RDN value is sent
/// (the directory keeps the case: an LDAP review saw `Hopper` to `HOPPER`
/// reported done, and the entry never changed, for ever); a parent's case
/// is the parent's own: left as the directory has it.
#[test]
fn a_case_only_rename_should_change_the_entrys_case() {
    let s = slapd();
    let base = s.new_ou("case").unwrap();
    s.ldapadd(&format!(
        "dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n"
    ))
    .unwrap();
    let mut conn = build(
        vec![person_type(), group_type()],
        directory_settings(s, &base),
    );
    let dn = |cn: &str| format!("cn={cn},ou=people,{base}");
    let add = change(
        ExportKind::Add,
        "person",
        "tmp-grace",
        &dn("Grace Hopper"),
        &[("sn", Some(Value::from("Hopper")))],
    );
    let anchor = assigned(&export(conn.as_mut(), &[add])[0]);
    let mut rename = change(
        ExportKind::Rename,
        "person",
        &anchor,
        &dn("Grace Hopper"),
        &[],
    );
    rename.new_dn = Some(dn("Grace HOPPER"));
    let out = export(conn.as_mut(), &[rename]);
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }]);
    let e = &search(s, &dn("Grace HOPPER"), "(objectClass=*)", &["cn"])[0];
    assert!(e.dn.starts_with("cn=Grace HOPPER,"), "{}", e.dn);
    assert_eq!(e.texts("cn"), vec!["Grace HOPPER"]);

    let mut parent = change(
        ExportKind::Rename,
        "person",
        &anchor,
        &dn("Grace HOPPER"),
        &[],
    );
    parent.new_dn = Some(format!("cn=Grace HOPPER,OU=PEOPLE,{base}"));
    let out = export(conn.as_mut(), &[parent]);
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }]);
    // The entry's own case changes, its parent's written in another case
    // (an HR department `SALES` for `ou=Sales`): the RDN is renamed, the
    // parent stays as the directory has it (it failed for ever: a review).
    let mut both = change(
        ExportKind::Rename,
        "person",
        &anchor,
        &dn("Grace HOPPER"),
        &[],
    );
    both.new_dn = Some(format!("cn=GRACE HOPPER,OU=PEOPLE,{base}"));
    let out = export(conn.as_mut(), &[both]);
    assert_eq!(out, vec![ExportOutcome::Applied { anchor: None }]);
    let e = &search(s, &dn("GRACE HOPPER"), "(objectClass=*)", &["cn"])[0];
    assert!(e.dn.starts_with("cn=GRACE HOPPER,ou=people,"), "{}", e.dn);
}
