//! Any text as an expression and as a script: compiled, and evaluated when
//! it compiles; errors of expressions are located inside the source.
#![no_main]

use autosync_expr::{ScriptLimits, compile_expr, compile_script};
use autosync_model::{Attributes, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|src: &str| {
    let mut attrs = Attributes::new();
    attrs.insert("first".into(), Value::from("Ada"));
    attrs.insert("age".into(), Value::Integer(36));
    attrs.insert("groups".into(), Value::Multi(vec!["a".into(), Value::Integer(1)]));
    match compile_expr(src) {
        Ok(p) => {
            let _ = p.eval(&attrs);
        }
        Err(e) => {
            let offset = e.offset.expect("an unlocated expression error");
            assert!(offset <= src.len());
            let _ = e.render(src);
        }
    }
    let limits = ScriptLimits {
        max_operations: 10_000,
        ..ScriptLimits::default()
    };
    if let Ok(p) = compile_script(src, &limits) {
        let _ = p.eval(&attrs);
    }
});
