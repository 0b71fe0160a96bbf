//! Tests of the script trigger: return values, state, sandbox, host API,
//! error handling.

use super::*;
use crate::sink::TriggerEvent;
use autosync_model::{RunReason, RunStatus};
use chrono::{DateTime, Utc};
use std::io::{Read, Write};
use tokio::sync::mpsc;

struct FixedClock(DateTime<Utc>);
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn config(source: &str) -> ScriptConfig {
    ScriptConfig {
        name: Some("hr-poll".into()),
        every: "30s".parse().unwrap(),
        script: Some(source.into()),
        file: None,
        on_error: OnError::Continue,
        max_operations: 100_000,
        time_budget: "10s".parse().unwrap(),
    }
}

fn compile(source: &str) -> ScriptTrigger {
    config(source).validate("hr", 0, Path::new(".")).unwrap()
}

fn runner_with(trigger: &ScriptTrigger, host: Arc<dyn ScriptHost>) -> ScriptRunner {
    ScriptRunner::new(
        trigger,
        host,
        Arc::new(FixedClock(at("2024-05-01T10:00:00Z"))),
    )
}

fn call(source: &str) -> Result<Vec<TriggerRequest>, String> {
    let trigger = compile(source);
    let value = runner_with(&trigger, Arc::new(NoScriptHost)).call()?;
    requests_from(value, &trigger.ask)
}

#[test]
fn a_script_returning_nothing_should_ask_for_nothing() {
    assert_eq!(call("()").unwrap(), vec![]);
    assert_eq!(call("let x = 1;").unwrap(), vec![]);
}

#[test]
fn a_script_returning_a_profile_name_should_ask_for_that_profile() {
    let requests = call(r#""delta-import""#).unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].profile, "delta-import");
    assert_eq!(requests[0].ma, "hr");
    assert_eq!(requests[0].trigger, "script hr-poll (every 30s, inline)");
    assert!(!requests[0].exclusive && !requests[0].run_immediate);
}

#[test]
fn a_script_returning_maps_and_names_should_ask_for_each_with_its_flags() {
    let requests = call(
        r#"["delta-import", #{ profile: "full-sync", exclusive: true, run_immediate: true }]"#,
    )
    .unwrap();
    let got: Vec<_> = requests
        .iter()
        .map(|r| (r.profile.as_str(), r.exclusive, r.run_immediate))
        .collect();
    assert_eq!(
        got,
        [("delta-import", false, false), ("full-sync", true, true)]
    );
}

#[test]
fn a_script_returning_something_else_should_be_an_error_saying_what_to_return() {
    let err = call("42").unwrap_err();
    assert!(err.contains("returned a i64"), "{err}");
    let err = call(r#"#{ profil: "x" }"#).unwrap_err();
    assert!(err.contains("unknown key `profil`"), "{err}");
    let err = call(r#"["delta-import", 3]"#).unwrap_err();
    assert!(err.starts_with("item 1 of the returned array"), "{err}");
}

#[test]
fn the_state_map_should_persist_between_calls_while_other_variables_start_afresh() {
    let trigger = compile(
        r#"
        let calls = 0;
        calls += 1;
        state.n = if state.contains("n") { state.n + 1 } else { 1 };
        if state.n == 3 && calls == 1 { "full-import" }
        "#,
    );
    let mut runner = runner_with(&trigger, Arc::new(NoScriptHost));
    assert!(runner.call().unwrap().is_unit());
    assert!(runner.call().unwrap().is_unit());
    let third = runner.call().unwrap();
    assert_eq!(third.into_string().unwrap(), "full-import");
}

#[test]
fn eval_should_be_refused_when_the_script_is_validated() {
    let err = config(r#"eval("40 + 2")"#)
        .validate("hr", 2, Path::new("."))
        .unwrap_err();
    assert_eq!((err.index, err.key.as_str()), (2, "script"));
    assert!(err.message.contains("does not compile"), "{err}");
}

#[test]
fn a_syntax_error_should_be_reported_with_its_position() {
    let err = config("let x = ;")
        .validate("hr", 0, Path::new("."))
        .unwrap_err();
    assert!(err.message.contains("line 1"), "{err}");
}

#[test]
fn importing_modules_should_fail_in_the_sandbox() {
    let err = call(r#"import "secrets" as s; ()"#).unwrap_err();
    assert!(err.to_lowercase().contains("module"), "{err}");
}

#[test]
fn an_endless_loop_should_be_stopped_by_the_operation_limit() {
    let err = call("loop { }").unwrap_err();
    assert!(err.contains("Too many operations"), "{err}");
}

#[test]
fn an_endless_loop_should_be_stopped_by_the_time_budget() {
    let mut c = config("loop { }");
    c.max_operations = u64::MAX;
    c.time_budget = "50ms".parse().unwrap();
    let trigger = c.validate("hr", 0, Path::new(".")).unwrap();
    let err = runner_with(&trigger, Arc::new(NoScriptHost))
        .call()
        .unwrap_err();
    assert!(err.contains("time budget of 50ms exceeded"), "{err}");
}

#[test]
fn now_should_read_the_injected_clock() {
    let trigger = compile("now()");
    let value = runner_with(&trigger, Arc::new(NoScriptHost))
        .call()
        .unwrap();
    assert_eq!(
        value.as_int().unwrap(),
        at("2024-05-01T10:00:00Z").timestamp()
    );
}

struct OneRun(RunRecord);
impl ScriptHost for OneRun {
    fn last_run(&self, ma: &str) -> Option<RunRecord> {
        (ma == self.0.ma).then(|| self.0.clone())
    }
}

use autosync_model::RunRecord;

#[test]
fn last_run_should_give_the_hosts_run_as_a_map_or_unit() {
    let run = RunRecord {
        id: 7,
        ma: "hr".into(),
        profile: "delta-import".into(),
        status: RunStatus::CompletedExportErrors,
        started_at: at("2024-05-01T09:00:00Z"),
        ended_at: Some(at("2024-05-01T09:05:00Z")),
        reason: RunReason::Manual { by: "test".into() },
        steps: vec![],
    };
    let trigger = compile(
        r#"
        let r = last_run("hr");
        if last_run("directory") != () { throw "unknown MA should give ()"; }
        `${r.id} ${r.profile} ${r.status} ${r.ended_at - r.started_at}`
        "#,
    );
    let value = runner_with(&trigger, Arc::new(OneRun(run))).call().unwrap();
    assert_eq!(
        value.into_string().unwrap(),
        "7 delta-import completed-export-errors 300"
    );
}

/// A host lending `file_text(path)` (a file's text, relative to the
/// configuration's folder) and `join3(a, b, c)`, as connector types lend
/// functions.
struct Lending(Vec<autosync_connector::ScriptFunction>);
impl ScriptHost for Lending {
    fn last_run(&self, _ma: &str) -> Option<RunRecord> {
        None
    }
    fn functions(&self) -> &[autosync_connector::ScriptFunction] {
        &self.0
    }
}

fn lending() -> Arc<dyn ScriptHost> {
    use autosync_connector::{ScriptFunction, ScriptValue};
    Arc::new(Lending(vec![
        ScriptFunction {
            name: "file_text",
            params: &["path"],
            doc: "a file's text",
            call: |base, args| {
                std::fs::read_to_string(base.join(args[0]))
                    .map(ScriptValue::Text)
                    .map_err(|e| format!("file_text({}): {e}", args[0]))
            },
        },
        ScriptFunction {
            name: "join3",
            params: &["a", "b", "c"],
            doc: "three texts joined",
            call: |_, args| Ok(ScriptValue::Text(args.join("+"))),
        },
    ]))
}

#[test]
fn functions_lent_by_the_host_should_be_callable_with_paths_from_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flag"), "delta-import").unwrap();
    let mut c = config(r#"file_text("flag")"#);
    let trigger = c.validate("hr", 0, dir.path()).unwrap();
    let value = runner_with(&trigger, lending()).call().unwrap();
    assert_eq!(value.into_string().unwrap(), "delta-import");

    c.script = Some(r#"join3("a", "b", "c")"#.into());
    let trigger = c.validate("hr", 0, dir.path()).unwrap();
    let value = runner_with(&trigger, lending()).call().unwrap();
    assert_eq!(value.into_string().unwrap(), "a+b+c");

    c.script = Some(r#"file_text("missing")"#.into());
    let trigger = c.validate("hr", 0, dir.path()).unwrap();
    let err = runner_with(&trigger, lending()).call().unwrap_err();
    assert!(err.contains("file_text(missing)"), "{err}");

    let err = runner_with(&trigger, Arc::new(NoScriptHost))
        .call()
        .unwrap_err();
    assert!(
        err.contains("file_text"),
        "not lent: unknown function: {err}"
    );
}

#[test]
fn http_get_should_return_the_body_from_a_loopback_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nyes")
            .unwrap();
    });
    let source =
        format!(r#"if http_get("http://127.0.0.1:{port}/changed") == "yes" {{ "delta-import" }}"#);
    let requests = call(&source).unwrap();
    assert_eq!(requests[0].profile, "delta-import");
    server.join().unwrap();
}

#[test]
fn on_error_should_read_from_its_toml_form() {
    let c: ScriptConfig = toml::from_str("script = \"()\"\non_error = \"stop\"").unwrap();
    assert_eq!(c.on_error, OnError::Stop);
    assert!(toml::from_str::<ScriptConfig>("script = \"()\"\non_error = \"retry\"").is_err());
}

fn spawn(
    c: ScriptConfig,
) -> (
    mpsc::UnboundedReceiver<TriggerEvent>,
    tokio::task::JoinHandle<()>,
) {
    let trigger = c.validate("hr", 0, Path::new(".")).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let clock = Arc::new(FixedClock(at("2024-05-01T10:00:00Z")));
    let task = tokio::spawn(trigger.run(
        Arc::new(NoScriptHost),
        clock,
        Arc::new(tx),
        CancellationToken::new(),
    ));
    (rx, task)
}

#[tokio::test(start_paused = true)]
async fn a_failing_script_with_on_error_stop_should_report_once_and_stop() {
    let mut c = config(r#"throw "source unreachable""#);
    c.on_error = OnError::Stop;
    let (mut rx, task) = spawn(c);
    let Some(TriggerEvent::Error(e)) = rx.recv().await else {
        panic!("expected an error")
    };
    assert!(e.stopped);
    assert!(e.message.contains("source unreachable"), "{}", e.message);
    task.await.unwrap();
    assert!(rx.recv().await.is_none(), "nothing after it stopped");
}

#[tokio::test(start_paused = true)]
async fn a_failing_script_with_on_error_continue_should_report_and_run_again_next_tick() {
    let source = r#"
        state.n = if state.contains("n") { state.n + 1 } else { 1 };
        if state.n == 1 { throw "first call fails"; }
        "delta-import"
    "#;
    let (mut rx, task) = spawn(config(source));
    let start = tokio::time::Instant::now();
    let Some(TriggerEvent::Error(e)) = rx.recv().await else {
        panic!("expected an error")
    };
    assert!(!e.stopped);
    let Some(TriggerEvent::Request(r)) = rx.recv().await else {
        panic!("expected a request")
    };
    assert_eq!(r.profile, "delta-import");
    assert_eq!(start.elapsed(), Duration::from_secs(60), "second tick");
    task.abort();
}
