//! Metaverse lookups in scripts (`mv_find`, `mv_connectors`), the `mv` an
//! import flow script reads, and rules scripts with variables.

use super::object;
use autosync_expr::{
    Arg, Context, EvalError, FoundMv, Metaverse, MvConnector, ScriptLimits, compile_rule_script,
    compile_script,
};
use autosync_model::Value;
use serde_json::json;

/// A metaverse of people by account name, counting the questions asked.
struct People {
    names: Vec<&'static str>,
    asked: usize,
}

impl Metaverse for People {
    fn find(&mut self, ty: &str, attr: &str, value: &Value) -> Result<Vec<FoundMv>, EvalError> {
        self.asked += 1;
        assert_eq!((ty, attr), ("person", "accountName"));
        Ok(self
            .names
            .iter()
            .enumerate()
            .filter(|(_, n)| Value::from(**n) == *value)
            .map(|(i, n)| FoundMv {
                id: i as i64 + 1,
                object_type: "person".into(),
                attributes: vec![("accountName".into(), Value::from(*n))],
            })
            .collect())
    }

    fn connectors(&mut self, id: i64) -> Result<Vec<MvConnector>, EvalError> {
        self.asked += 1;
        Ok(vec![MvConnector {
            ma: "hr".into(),
            anchor: format!("E{id}"),
            dn: format!("E{id}"),
            object_type: "person".into(),
        }])
    }
}

const UNIQUE: &str = r#"
    if mv.accountName != () { return mv.accountName; }
    let base = (attr("first").sub_string(0, 1) + attr("last")).to_lower();
    let name = base;
    let n = 1;
    while mv_find("person", "accountName", name).len() > 0 { n += 1; name = base + n; }
    name
"#;

#[test]
fn a_script_should_find_a_free_name_by_looking_the_metaverse_up() {
    let program = compile_script(UNIQUE, &ScriptLimits::default()).unwrap();
    assert!(program.needs_context());
    assert_eq!(
        program.mv_finds(),
        [("person".to_owned(), "accountName".to_owned())]
    );
    let john = object(&[("first", "John".into()), ("last", "Smith".into())]);
    let mut people = People {
        names: vec!["jsmith", "jsmith2"],
        asked: 0,
    };
    let empty = object(&[]);
    let mut ctx = Context {
        mv: Some(&empty),
        metaverse: Some(&mut people),
    };
    assert_eq!(
        program.eval_in(&john, &mut ctx).unwrap(),
        Some(Value::from("jsmith3"))
    );
    assert_eq!(people.asked, 3, "each name is looked up once");
}

#[test]
fn a_name_the_metaverse_object_has_should_be_kept_without_a_lookup() {
    let program = compile_script(UNIQUE, &ScriptLimits::default()).unwrap();
    let john = object(&[("first", "John".into()), ("last", "Smith".into())]);
    let current = object(&[("accountName", "jsmith".into())]);
    let mut people = People {
        names: vec!["jsmith"],
        asked: 0,
    };
    let mut ctx = Context {
        mv: Some(&current),
        metaverse: Some(&mut people),
    };
    assert_eq!(
        program.eval_in(&john, &mut ctx).unwrap(),
        Some(Value::from("jsmith"))
    );
    assert_eq!(people.asked, 0);
}

#[test]
fn a_lookup_should_be_answered_even_inside_try_catch() {
    let src = r#"let found = [];
        try { found = mv_find("person", "accountName", "jsmith"); } catch { found = []; }
        found.len()"#;
    let program = compile_script(src, &ScriptLimits::default()).unwrap();
    let mut people = People {
        names: vec!["jsmith"],
        asked: 0,
    };
    let mut ctx = Context {
        mv: None,
        metaverse: Some(&mut people),
    };
    assert_eq!(
        program.eval_in(&object(&[]), &mut ctx).unwrap(),
        Some(Value::Integer(1))
    );
}

#[test]
fn connectors_and_attributes_of_found_objects_should_be_readable() {
    let src = r#"let found = mv_find("person", "accountName", "jsmith");
        let c = mv_connectors(found[0].id);
        found[0].attrs.accountName + "@" + c[0].ma + "/" + c[0].anchor"#;
    let program = compile_script(src, &ScriptLimits::default()).unwrap();
    let mut people = People {
        names: vec!["jsmith"],
        asked: 0,
    };
    let mut ctx = Context {
        mv: None,
        metaverse: Some(&mut people),
    };
    assert_eq!(
        program.eval_in(&object(&[]), &mut ctx).unwrap(),
        Some(Value::from("jsmith@hr/E1"))
    );
}

#[test]
fn a_lookup_outside_a_sync_should_be_a_clear_error() {
    let program = compile_script(
        r#"mv_find("person", "accountName", "x").len()"#,
        &ScriptLimits::default(),
    )
    .unwrap();
    let err = program.eval(&object(&[])).unwrap_err();
    assert!(err.message.contains("only while a sync runs"), "{err}");
}

#[test]
fn a_script_looking_up_without_end_should_stop_at_the_lookup_limit() {
    let src = r#"let n = 0; loop { mv_find("person", "accountName", "x" + n); n += 1; }"#;
    let program = compile_script(src, &ScriptLimits::default()).unwrap();
    let mut people = People {
        names: vec![],
        asked: 0,
    };
    let mut ctx = Context {
        mv: None,
        metaverse: Some(&mut people),
    };
    let err = program.eval_in(&object(&[]), &mut ctx).unwrap_err();
    assert!(
        err.message.contains("more than 100 metaverse lookups"),
        "{err}"
    );
    assert!(err.script);
}

#[test]
fn a_lookup_of_a_computed_attribute_should_not_compile() {
    let err = compile_script(
        r#"let a = "mail"; mv_find("person", a, "x")"#,
        &ScriptLimits::default(),
    )
    .unwrap_err();
    assert!(err.message.contains("literal strings"), "{}", err.message);
    assert_eq!(err.offset, Some(16));
}

#[test]
fn a_rules_script_should_read_its_variables_and_return_a_map() {
    let script = compile_rule_script(
        r#"let c = candidates.filter(|m| m.attrs.dept == attrs.dept); if c.len() == 1 { c[0].id }"#,
        &["candidates"],
        &ScriptLimits::default(),
    )
    .unwrap();
    let a = object(&[("dept", "R&D".into())]);
    let b = object(&[("dept", "Navy".into())]);
    let candidate = |id: i64, attrs: &'static autosync_model::Attributes| {
        Arg::Map(vec![
            ("id", Arg::Json(json!(id))),
            ("attrs", Arg::Attrs(attrs)),
        ])
    };
    let a: &'static _ = Box::leak(Box::new(a));
    let b: &'static _ = Box::leak(Box::new(b));
    let run = |me: &autosync_model::Attributes| {
        script
            .run(
                me,
                &[(
                    "candidates",
                    Arg::List(vec![candidate(7, a), candidate(9, b)]),
                )],
                &mut Context::default(),
            )
            .unwrap()
    };
    assert_eq!(run(&object(&[("dept", "Navy".into())])), json!(9));
    assert_eq!(run(&object(&[("dept", "Sales".into())])), json!(null));
    let err =
        compile_rule_script("candidate", &["candidates"], &ScriptLimits::default()).unwrap_err();
    assert!(err.help.unwrap().contains("`candidates`"));
}
