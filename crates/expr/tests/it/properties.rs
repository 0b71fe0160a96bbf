//! Property tests: compiling and evaluating arbitrary text never panics.

use super::object;
use autosync_expr::{compile_expr, function_names};
use autosync_model::Value;
use proptest::prelude::*;

/// Text built from the language's own pieces, so that much of it parses.
fn expression_like() -> impl Strategy<Value = String> {
    let names: Vec<String> = function_names().map(str::to_owned).collect();
    let piece = prop_oneof![
        proptest::sample::select(names),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(",".to_owned()),
        Just(" + ".to_owned()),
        Just(" - ".to_owned()),
        Just(" == ".to_owned()),
        Just(" < ".to_owned()),
        Just(" >= ".to_owned()),
        Just(" && ".to_owned()),
        Just(" || ".to_owned()),
        Just("!".to_owned()),
        Just(" ? ".to_owned()),
        Just(" : ".to_owned()),
        Just("a".to_owned()),
        Just("n".to_owned()),
        Just("m".to_owned()),
        Just("e".to_owned()),
        Just("`x-y`".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("\"é;x\"".to_owned()),
        Just("'\\n'".to_owned()),
        Just("\"".to_owned()),
        Just("-3".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("0".to_owned()),
        "[ -~]{0,3}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

fn check(src: &str) {
    let attrs = object(&[
        ("a", "Ab;c".into()),
        ("n", Value::Integer(i64::MAX)),
        ("m", Value::Multi(vec!["x".into(), Value::Integer(1)])),
        ("e", "".into()),
        ("x-y", Value::Binary(vec![0])),
        ("b", Value::Boolean(false)),
    ]);
    match compile_expr(src) {
        Ok(p) => {
            let _ = p.eval(&attrs);
            let _ = p.eval_bool(&attrs);
            let _ = p.eval(&());
        }
        Err(e) => {
            if let Some(offset) = e.offset {
                assert!(offset <= src.len(), "offset {offset} beyond {src:?}");
            }
            let _ = e.render(src);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiling_and_evaluating_random_text_never_panics(src in ".{0,80}") {
        check(&src);
    }

    #[test]
    fn compiling_and_evaluating_expression_like_text_never_panics(src in expression_like()) {
        check(&src);
    }
}
