//! Discovery and the default triggers come from the connector contract
//! (`ConnectorFactory::change_detection`), never from a connector's type
//! name or settings: each shipped connector type, registered with another
//! offer, gets what that offer says; a new connector type needs nothing but
//! its factory in the registry.

use super::*;
use autosync_connector::{
    BuildContext, ChangeDetection, ChangeOffer, ChangeOfferKind, ChangeProbe, Connector,
    ConnectorError, ConnectorErrorKind, ConnectorFactory, PollOffer, ScriptFunction, ScriptValue,
    SettingError,
};
use autosync_triggers::TriggerSet;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A probe whose token is a file's text.
#[derive(Debug)]
struct FileProbe(PathBuf);

impl ChangeProbe for FileProbe {
    fn token(&self) -> Result<Option<String>, ConnectorError> {
        std::fs::read_to_string(&self.0)
            .map(Some)
            .map_err(|e| ConnectorError::new(ConnectorErrorKind::ServerDown, e.to_string()))
    }
}

/// A poll of `token.txt` in the configuration's folder, as a connector
/// would offer it.
fn poll_offer(sentence: String, ctx: &BuildContext) -> ChangeDetection {
    ChangeDetection {
        offers: vec![ChangeOffer {
            kind: ChangeOfferKind::Poll(PollOffer {
                probe: Arc::new(FileProbe(ctx.base_dir.join("token.txt"))),
            }),
            proposed: true,
            sentence,
        }],
        why_none: None,
    }
}

/// A shipped factory whose change detection is replaced by a poll.
struct Polling(Box<dyn ConnectorFactory>);

impl ConnectorFactory for Polling {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn validate(
        &self,
        s: &Map<String, Value>,
        ctx: &BuildContext,
    ) -> Result<(), Vec<SettingError>> {
        self.0.validate(s, ctx)
    }
    fn build(
        &self,
        s: &Map<String, Value>,
        ctx: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        self.0.build(s, ctx)
    }
    fn change_detection(
        &self,
        _settings: &Map<String, Value>,
        _shown: &Map<String, Value>,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        poll_offer(format!("{} offer under test", self.kind()), ctx)
    }
}

fn polling_registry() -> Registry {
    let mut r = Registry::new();
    r.register(Box::new(Polling(Box::new(
        autosync_connectors::csv::CsvFactory,
    ))));
    r.register(Box::new(Polling(Box::new(
        autosync_connectors::jsonl::JsonlFactory,
    ))));
    r.register(Box::new(Polling(Box::new(
        autosync_connectors::sqlite::SqliteFactory,
    ))));
    r
}

/// A JSON-lines source: the SQLite source's MA on a `people.jsonl` file.
fn jsonl_source() -> String {
    SQLITE_SOURCE.replace(
        r#"{ type = "sqlite", path = "people.db", table = "people", create_table = true, columns = ["id", "name", "updated_at"], DELTA }"#,
        r#"{ type = "jsonl", path = "people.jsonl" }"#,
    )
}

#[test]
fn each_shipped_connector_should_get_what_its_offer_says() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_source(r#"{ kind = "column", column = "updated_at" }"#);
    let cases = [
        ("csv", "hr", quickstart_text()),
        ("jsonl", "people", jsonl_source()),
        ("sqlite", "people", sqlite),
    ];
    for (kind, name, text) in cases {
        let loaded = load(dir.path(), &text);
        // The shipped offers: a file watch for the files, a poll for SQLite.
        let p = propose(&loaded, &registry(), &History::default());
        let expected = if kind == "sqlite" {
            "change-poll"
        } else {
            "file-watch"
        };
        let proposed = ma(&p, name).triggers[0].fields()[0].1.to_owned();
        assert_eq!(proposed, expected, "{kind}");
        assert!(
            ma(&p, name)
                .triggers_why
                .starts_with(&format!("{kind} connector")),
            "{kind}: {}",
            ma(&p, name).triggers_why
        );

        // Another offer under the same type name: discovery follows it.
        let p = propose(&loaded, &polling_registry(), &History::default());
        let m = ma(&p, name);
        assert_eq!(
            m.triggers,
            vec![ProposedTrigger::ChangePoll {
                every: "30s".into(),
                profile: "delta-import".into()
            }],
            "{kind}"
        );
        assert!(
            m.triggers_why
                .starts_with(&format!("{kind} offer under test every 30s")),
            "{kind}: {}",
            m.triggers_why
        );
        // So do the default triggers, and the poll is given the probe.
        let config = autosync_service::controller_config(&loaded, &polling_registry()).unwrap();
        let m = &config.mas[name];
        assert!(m.default_triggers, "{kind}");
        assert!(
            matches!(m.triggers.as_slice(), [TriggerConfig::ChangePoll(c)] if c.probe.get().is_some()),
            "{kind}: {:?}",
            m.triggers
        );
        assert_eq!(m.connector_path, None, "{kind}: no file offered");
    }
}

/// A connector type that ships nowhere: its system is a feed whose version
/// is in `token.txt`; it lends `feed_version()` to scripts.
struct Feed;

impl ConnectorFactory for Feed {
    fn kind(&self) -> &'static str {
        "feed"
    }
    fn validate(&self, _: &Map<String, Value>, _: &BuildContext) -> Result<(), Vec<SettingError>> {
        Ok(())
    }
    fn build(
        &self,
        _: &Map<String, Value>,
        _: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        Err(ConnectorError::new(
            ConnectorErrorKind::Other,
            "not needed by discovery",
        ))
    }
    fn change_detection(
        &self,
        _settings: &Map<String, Value>,
        shown: &Map<String, Value>,
        ctx: &BuildContext,
    ) -> ChangeDetection {
        let url = shown.get("url").and_then(Value::as_str).unwrap_or("?");
        poll_offer(
            format!("feed connector: a change poll asks {url} for its version"),
            ctx,
        )
    }
    fn script_functions(&self) -> Vec<ScriptFunction> {
        vec![ScriptFunction {
            name: "feed_version",
            params: &["folder"],
            doc: "the feed's version",
            call: |base, args| {
                std::fs::read_to_string(base.join(args[0]).join("token.txt"))
                    .map(ScriptValue::Text)
                    .map_err(|e| e.to_string())
            },
        }]
    }
}

#[test]
fn a_new_connector_type_should_need_nothing_but_its_factory_in_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.txt"), "v1").unwrap();
    let mut registry = registry();
    registry.register(Box::new(Feed));
    let text = SQLITE_SOURCE.replace(
        r#"{ type = "sqlite", path = "people.db", table = "people", create_table = true, columns = ["id", "name", "updated_at"], DELTA }"#,
        r#"{ type = "feed", url = "${FEED_URL}" }"#,
    );
    let env = |name: &str| (name == "FEED_URL").then(|| "https://feed.example/secret".to_owned());
    let file = dir.path().join("autosync.toml");
    let loaded = autosync_config::load_str_with_env(&text, &file, &registry, &env).unwrap();

    let p = propose(&loaded, &registry, &History::default());
    let people = ma(&p, "people");
    assert!(matches!(
        people.triggers.as_slice(),
        [ProposedTrigger::ChangePoll { .. }]
    ));
    assert_eq!(
        people.triggers_why,
        "feed connector: a change poll asks ${FEED_URL} for its version every 30s \
         and asks for `delta-import` when the answer moved",
        "the setting as written, never its value"
    );

    let config = autosync_service::controller_config(&loaded, &registry).unwrap();
    let people = &config.mas["people"];
    assert!(people.default_triggers);
    let ctx = autosync_triggers::BuildContext {
        ma: "people",
        base_dir: &config.base_dir,
        default_watch_path: people.connector_path.as_deref(),
        profiles: &[],
    };
    let set = TriggerSet::build(&ctx, &people.triggers, &BTreeMap::new()).unwrap();
    let [autosync_triggers::Trigger::ChangePoll(poll)] = set.triggers() else {
        panic!("{set:?}");
    };
    assert_eq!(poll.probe.token().unwrap().as_deref(), Some("v1"));
    let lent: Vec<&str> = config.script_functions.iter().map(|f| f.name).collect();
    assert_eq!(lent, ["sql_scalar", "feed_version"]);

    // A file watch needs a file the connector offers, or a `path`.
    let text = text.replace(
        "import_flows =",
        "controller = { triggers = [{ type = \"file-watch\" }] }\nimport_flows =",
    );
    let loaded = autosync_config::load_str_with_env(&text, &file, &registry, &env).unwrap();
    let errors = autosync_service::controller_config(&loaded, &registry).unwrap_err();
    let text = loaded.error(errors).to_string();
    assert!(text.contains("no file to default to"), "{text}");
}

#[test]
fn a_file_watch_should_read_with_the_connectors_reader_only_the_connectors_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = quickstart_text().replace(
        "  { mv_type = \"person\", mv = \"source\", constant = \"hr\" },\n]\n",
        "  { mv_type = \"person\", mv = \"source\", constant = \"hr\" },\n]\n[ma.controller]\ntriggers = [\n  { type = \"file-watch\", ignore_attributes = [\"title\"] },\n  { type = \"file-watch\", path = \"./data/hr.csv\" },\n  { type = \"file-watch\", path = \"data/other.csv\" },\n]\n",
    );
    let config =
        autosync_service::controller_config(&load(dir.path(), &text), &registry()).unwrap();
    let hr = &config.mas["hr"];
    let read: Vec<bool> = hr
        .triggers
        .iter()
        .map(|t| match t {
            TriggerConfig::FileWatch(c) => c.content.get().is_some(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(read, [true, true, false]);
    assert_eq!(
        hr.connector_path.as_deref(),
        Some(config.base_dir.join("data/hr.csv").as_path())
    );
}
