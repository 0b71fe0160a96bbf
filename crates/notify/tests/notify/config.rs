use autosync_notify::{KeySegment, NotifyConfig, Security};
use std::time::Duration;

fn parse(text: &str) -> Result<NotifyConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn an_empty_table_should_give_the_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.ignore_statuses, ["success", "completed-no-objects"]);
    assert_eq!(c.reminder_after.0, Duration::from_secs(24 * 3600));
    assert!(c.notify_recovered);
    assert!(c.smtp.is_none());
    assert!(c.webhooks.is_empty());
    assert!(c.validate().is_ok());
    let d = NotifyConfig::default();
    assert_eq!(d.ignore_statuses, c.ignore_statuses);
}

#[test]
fn the_documented_example_should_parse_with_defaults_filled_in() {
    let c = parse(
        r#"
        ignore_statuses = ["success", "completed-no-objects", "completed-warnings"]
        reminder_after = "1h30m"
        [smtp]
        host = "127.0.0.1"
        security = "none"
        username = "autosync"
        password = "s3cret-pw"
        from = "Autosync <autosync@example.org>"
        to = ["ops@example.org", "oncall@example.org"]
        [[webhooks]]
        url = "http://127.0.0.1:9000/hook"
        headers = { Authorization = "Bearer tok-123" }
        timeout = "2s"
        "#,
    )
    .unwrap();
    assert_eq!(c.reminder_after.0, Duration::from_secs(5400));
    let smtp = c.smtp.as_ref().unwrap();
    assert_eq!(smtp.security, Security::None);
    assert_eq!(smtp.port(), 25, "default port of security none");
    assert_eq!(smtp.timeout.0, Duration::from_secs(10));
    assert_eq!(c.webhooks[0].timeout.0, Duration::from_secs(2));
    assert!(c.validate().is_ok(), "{:?}", c.validate());

    let tls = parse("[smtp]\nhost = \"mx\"\nfrom = \"a@b.org\"\nto = [\"c@d.org\"]\n").unwrap();
    let smtp = tls.smtp.unwrap();
    assert_eq!(smtp.security, Security::Starttls, "STARTTLS by default");
    assert_eq!(smtp.port(), 587);
}

#[test]
fn unknown_keys_should_be_rejected_naming_the_key() {
    let top = parse("reminder = \"1h\"").unwrap_err().to_string();
    assert!(top.contains("reminder"), "{top}");
    let smtp =
        parse("[smtp]\nhost = \"mx\"\nfrom = \"a@b.org\"\nto = [\"c@d.org\"]\npasword = \"x\"\n")
            .unwrap_err()
            .to_string();
    assert!(smtp.contains("pasword"), "{smtp}");
    let hook = parse("[[webhooks]]\nurl = \"http://h/\"\nheader = {}\n")
        .unwrap_err()
        .to_string();
    assert!(hook.contains("header"), "{hook}");
}

#[test]
fn bad_durations_and_securities_should_be_rejected_with_the_reason() {
    let e = parse("reminder_after = \"4 hours ago\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid duration"), "{e}");
    let e = parse(
        "[smtp]\nhost = \"mx\"\nfrom = \"a@b.org\"\nto = [\"c@d.org\"]\nsecurity = \"ssl\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ssl") && e.contains("starttls"), "{e}");
}

#[test]
fn validate_should_name_every_bad_key_with_a_clear_message() {
    let c = parse(
        r#"
        ignore_statuses = ["sucess", "stopped-connectivity"]
        [smtp]
        host = "mx.example.org"
        username = "autosync"
        from = "not an address"
        to = []
        [[webhooks]]
        url = "ftp://files.example.org/x"
        [[webhooks]]
        url = "http://ok.example.org/hook"
        headers = { "Bad Name" = "v", Authorization = "tok-77\nx" }
        "#,
    )
    .unwrap();
    let problems = c.validate().unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let find = |key: &str| {
        text.iter()
            .find(|t| t.starts_with(&format!("`{key}`")))
            .unwrap_or_else(|| panic!("no problem at {key} in {text:#?}"))
            .clone()
    };
    let status = find("controller.notifications.ignore_statuses[0]");
    assert!(status.contains("unknown run status `sucess`"), "{status}");
    assert!(status.contains("did you mean `success`"), "{status}");
    assert!(find("controller.notifications.smtp.from").contains("not an email address"));
    assert!(find("controller.notifications.smtp.to").contains("no recipient"));
    assert!(find("controller.notifications.smtp.password").contains("no `password`"));
    assert!(find("controller.notifications.webhooks[0].url").contains("http://"));
    assert!(find("controller.notifications.webhooks[1].headers").contains("`Bad Name`"));
    let value = find("controller.notifications.webhooks[1].headers.Authorization");
    assert!(
        !value.contains("tok-77"),
        "the header value is secret: {value}"
    );
    assert_eq!(problems.len(), 7, "{text:#?}");
    assert_eq!(
        problems[0].path,
        vec![
            KeySegment::Key("ignore_statuses".into()),
            KeySegment::Index(0)
        ]
    );

    let bad_to =
        parse("[smtp]\nhost = \"mx\"\nfrom = \"a@b.org\"\nto = [\"ops@example.org\", \"oops\"]\n")
            .unwrap()
            .validate()
            .unwrap_err();
    assert_eq!(bad_to.len(), 1);
    assert_eq!(bad_to[0].key(), "controller.notifications.smtp.to[1]");
}

#[test]
fn debug_output_should_not_show_secrets() {
    let c = parse(
        r#"
        [smtp]
        host = "mx"
        username = "autosync"
        password = "s3cret-pw"
        from = "a@b.org"
        to = ["c@d.org"]
        [[webhooks]]
        url = "https://user:urlpass@hooks.example.org/services/T0/B0/tokpath?key=qsecret"
        headers = { Authorization = "Bearer tok-123" }
        "#,
    )
    .unwrap();
    let debug = format!("{c:?} {:?}", c.webhooks[0]);
    for secret in ["s3cret-pw", "tok-123", "urlpass", "tokpath", "qsecret"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("hooks.example.org"), "{debug}");
    assert!(debug.contains("Authorization"), "{debug}");
    assert_eq!(c.webhooks[0].target(), "https://hooks.example.org/…");
}

#[test]
fn a_ca_file_should_exist_hold_certificates_and_need_tls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    crate::peers::write_certificates(dir.path());
    let smtp = |security: &str, ca: &str| {
        let mut c = parse(&format!(
            "[smtp]\nhost = \"mx\"\nfrom = \"a@b.org\"\nto = [\"c@d.org\"]\n\
             security = \"{security}\"\nca_file = \"{ca}\"\n"
        ))
        .unwrap();
        c.resolve_paths(dir.path());
        c
    };
    let ok = smtp("tls", "ca.pem");
    assert_eq!(
        ok.smtp.as_ref().unwrap().ca_file.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    assert!(ok.validate().is_ok(), "{:?}", ok.validate());
    for (security, file, expected) in [
        ("none", "ca.pem", "only used with"),
        ("starttls", "missing.pem", "cannot be read"),
        ("starttls", "junk.pem", "no PEM certificate"),
    ] {
        let problems = smtp(security, file).validate().unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key(), "controller.notifications.smtp.ca_file");
        assert!(problems[0].message.contains(expected), "{}", problems[0]);
    }
}

#[test]
fn a_webhook_timeout_should_be_at_most_five_minutes() {
    let hook = |timeout: &str| {
        parse(&format!(
            "[[webhooks]]\nurl = \"http://ok.example.org/hook\"\ntimeout = \"{timeout}\"\n"
        ))
        .unwrap()
        .validate()
    };
    assert!(hook("5m").is_ok());
    assert!(hook("30s").is_ok());
    for long in ["365d", "5m1s", "1h"] {
        let problems = hook(long).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].key(),
            "controller.notifications.webhooks[0].timeout"
        );
        let text = problems[0].to_string();
        assert!(text.contains(long) && text.contains("`5m`"), "{text}");
    }
}

/// A decode error names the key it is at, not the table: a bad duration,
/// a wrong type, an unknown key (with the closest one), a bad value.
#[test]
fn decode_errors_should_name_the_key_they_are_at() {
    let decode = |text: &str| {
        let table: toml::Table = toml::from_str(text).unwrap();
        let value = serde_json::to_value(table).unwrap();
        let problem = NotifyConfig::decode(&value).unwrap_err();
        (problem.key(), problem.message)
    };
    let hook = "[[webhooks]]\nurl = \"https://hooks.example.org/x\"\n";
    let smtp = "[smtp]\nhost = \"mx\"\nfrom = \"a@b.org\"\nto = [\"c@d.org\"]\n";
    for (text, key, message) in [
        (
            format!("{hook}[[webhooks]]\nurl = \"https://h/y\"\ntimeout = \"abc\"\n"),
            "controller.notifications.webhooks[1].timeout",
            "invalid duration `abc`",
        ),
        (
            format!("{hook}timeout = 5\n"),
            "controller.notifications.webhooks[0].timeout",
            "wrong type of value: found integer `5`, expected a string",
        ),
        (
            format!("{hook}timout = \"5s\"\n"),
            "controller.notifications.webhooks[0].timout",
            "unknown key `timout` (did you mean `timeout`?)",
        ),
        (
            format!("{hook}headers = 3\n"),
            "controller.notifications.webhooks[0].headers",
            "expected a table",
        ),
        (
            format!("{smtp}port = \"x\"\n"),
            "controller.notifications.smtp.port",
            "wrong type of value: found string \"x\", expected a whole number from 1 to 65535",
        ),
        (
            format!("{smtp}security = \"ssl\"\n"),
            "controller.notifications.smtp.security",
            "unknown value `ssl`",
        ),
        (
            format!("{smtp}timeout = \"10\"\n"),
            "controller.notifications.smtp.timeout",
            "10",
        ),
        (
            "[smtp]\nhost = \"mx\"\n".to_owned(),
            "controller.notifications.smtp",
            "missing key `from`",
        ),
        (
            "ignore_status = []\n".to_owned(),
            "controller.notifications.ignore_status",
            "unknown key `ignore_status` (did you mean `ignore_statuses`?)",
        ),
        (
            "reminder_after = \"1x\"\n".to_owned(),
            "controller.notifications.reminder_after",
            "1x",
        ),
        (
            "ignore_statuses = \"success\"\n".to_owned(),
            "controller.notifications.ignore_statuses",
            "expected an array",
        ),
    ] {
        let (got_key, got_message) = decode(&text);
        assert_eq!(got_key, key, "{text}: {got_message}");
        assert!(got_message.contains(message), "{text}: {got_message}");
    }
    let ok: toml::Table = toml::from_str(&format!("{smtp}\n{hook}")).unwrap();
    assert!(NotifyConfig::decode(&serde_json::to_value(ok).unwrap()).is_ok());
}
