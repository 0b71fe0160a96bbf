//! Where the schema cannot be known before the run (JSON lines, a script),
//! a full import in which no object has the attribute an import flow reads
//! ends `completed-warnings`, naming the flow and the attribute, and logs it
//! at WARN, instead of silently blanking that metaverse attribute
//! everywhere; where it can (a CSV header), a column renamed since `check`
//! stops the import before it stages anything.

use crate::fixture::*;
use autosync_model::{RunRecord, RunStatus};
use std::io::Write;
use std::sync::{Arc, Mutex};

const PEOPLE: &str = r#"[store]
path = "state.db"

[metaverse.person]
attributes = ["employeeId", "title", "email", "displayName"]

[[ma]]
name = "people"
connector = { type = "jsonl", path = "people.jsonl" }
object_types = [{ name = "person", anchor = "id" }]
join = [{ on = [{ cs = "id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "id" },
  { mv = "title", from = "titel" },
  { mv = "email", expr = "lower(mail)" },
  { mv = "displayName", script = 'attr("nickname")' },
]
"#;

const LINES: &str = r#"{"id": "1", "title": "Countess", "mail": "Ada@Example.com"}
{"id": "2", "title": "Mathematician", "mail": ""}
{"id": "3", "title": "Admiral"}
"#;

fn message(r: &RunRecord) -> String {
    r.steps[0].message.clone().unwrap_or_default()
}

#[test]
fn a_full_import_in_which_no_object_has_a_flows_attribute_should_end_completed_warnings() {
    let w = World::new(PEOPLE, &[("people.jsonl", LINES)]);
    let r = w.run_ok("people", "full-import", RunStatus::CompletedWarnings);
    assert_eq!(r.steps[0].status, RunStatus::CompletedWarnings);
    assert_eq!(
        message(&r),
        "import flow to `title` reads `titel`, which none of the 3 objects read had (a renamed or empty column, or a misspelt flow?)",
        "`mail` is read by one object; a script's reads are not watched"
    );
    assert_eq!(
        import_counters(&r).stage_add,
        3,
        "every object is still staged"
    );
}

#[test]
fn an_attribute_only_some_objects_have_should_not_be_a_warning() {
    let config = PEOPLE.replace(r#"from = "titel""#, r#"from = "title""#);
    let lines = LINES.replace(r#""title": "Countess", "#, "");
    let w = World::new(&config, &[("people.jsonl", &lines)]);
    let r = w.run_ok("people", "full-import", RunStatus::Success);
    assert_eq!(r.steps[0].message, None);
}

#[test]
fn an_expression_reading_an_attribute_no_object_has_should_be_named() {
    let config = PEOPLE
        .replace(r#"from = "titel""#, r#"from = "title""#)
        .replace("lower(mail)", "lower(mial)");
    let w = World::new(&config, &[("people.jsonl", LINES)]);
    let r = w.run_ok("people", "full-import", RunStatus::CompletedWarnings);
    assert!(
        message(&r).starts_with(
            "import flow to `email` reads `mial`, which none of the 3 objects read had"
        ),
        "{}",
        message(&r)
    );
}

#[test]
fn an_empty_source_should_not_be_a_warning() {
    let w = World::new(PEOPLE, &[("people.jsonl", "")]);
    let r = w.run_ok("people", "full-import", RunStatus::CompletedNoObjects);
    assert_eq!(r.steps[0].message, None);
}

#[test]
fn a_csv_column_renamed_since_check_should_stop_the_import_before_it_stages_anything() {
    let w = World::new(HR_DIR, &[("hr.csv", HR_CSV)]);
    w.run_ok("hr", "full-import", RunStatus::Success);
    w.run_ok("hr", "full-sync", RunStatus::Success);
    let before = w.mv_all();
    w.write("hr.csv", &HR_CSV.replacen("first", "given", 1));
    let r = w.run_ok("hr", "full-import", RunStatus::StoppedConfiguration);
    assert_eq!(
        message(&r),
        "import flow to `firstName` reads `first`, which hr.csv does not have: nothing was imported (reading on would blank those attributes on every object); a renamed column, or a misspelt flow? `autosync check` lists what hr.csv has"
    );
    assert_eq!(import_counters(&r).staged(), 0);
    w.run_ok("hr", "delta-sync", RunStatus::CompletedNoObjects);
    assert_eq!(w.mv_all(), before, "no first name was blanked");
    // The header put back: read as before.
    w.write("hr.csv", HR_CSV);
    w.run_ok("hr", "full-import", RunStatus::Success);
}

#[test]
fn an_empty_column_of_a_csv_file_should_not_be_a_warning() {
    let w = World::new(
        HR_DIR,
        &[(
            "hr.csv",
            "id,first,last,dept\n1,Ada,Lovelace,\n2,Alan,Turing,\n",
        )],
    );
    let r = w.run_ok("hr", "full-import", RunStatus::Success);
    assert_eq!(
        r.steps[0].message, None,
        "the header has `dept`: an optional column"
    );
}

/// Log lines captured from the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_warning_should_be_logged_at_warn() {
    let w = World::new(PEOPLE, &[("people.jsonl", LINES)]);
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        w.run_ok("people", "full-import", RunStatus::CompletedWarnings);
    });
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("import flow to `title` reads `titel`"),
        "{text}"
    );
    assert!(text.contains("ma=\"people\""), "{text}");
}
