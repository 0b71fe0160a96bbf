//! Bit operations for flag attributes such as `userAccountControl`, and the
//! hexadecimal literals that go with them.

use super::{eval, eval0, object};
use autosync_expr::compile_expr;
use autosync_model::{Attributes, Value};

/// `NORMAL_ACCOUNT` (0x200) | `DONT_EXPIRE_PASSWORD` (0x10000).
const ENABLED: i64 = 0x10200;

fn o() -> Attributes {
    object(&[
        ("uac", Value::Integer(ENABLED)),
        ("uac_text", " 66050 ".into()),
        ("blank", "".into()),
        ("name", "Ada".into()),
        ("flag", Value::Boolean(true)),
    ])
}

fn i(v: i64) -> Option<Value> {
    Some(Value::Integer(v))
}

fn b(v: bool) -> Option<Value> {
    Some(Value::Boolean(v))
}

fn err(src: &str) -> String {
    compile_expr(src).unwrap().eval(&o()).unwrap_err().message
}

#[test]
fn hexadecimal_literals_are_integers() {
    assert_eq!(eval0("0x2"), i(2));
    assert_eq!(eval0("0X10200"), i(0x10200));
    assert_eq!(eval0("0xff + 1"), i(256));
    assert_eq!(eval0("-0x10"), i(-16));
    assert_eq!(eval0("0x7fffffffffffffff"), i(i64::MAX));
    assert_eq!(eval0("0"), i(0));
    assert_eq!(eval0("042"), i(42));
}

#[test]
fn a_malformed_hexadecimal_literal_is_a_compile_error() {
    let e = compile_expr("set_bits(uac, 0x)").unwrap_err();
    assert_eq!(e.message, "`0x` must be followed by hexadecimal digits");
    assert_eq!(e.offset, Some(14));
    let e = compile_expr("0x2g").unwrap_err();
    assert_eq!(e.message, "`g` is not a hexadecimal digit");
    assert_eq!(e.offset, Some(3));
    let e = compile_expr("0x8000000000000000").unwrap_err();
    assert_eq!(e.message, "integer 0x8000000000000000 is too large");
}

#[test]
fn set_clear_and_test_bits_of_user_account_control() {
    let o = o();
    // Disable the account: set ACCOUNTDISABLE (0x2).
    assert_eq!(eval("set_bits(uac, 0x2)", &o), i(ENABLED | 0x2));
    assert_eq!(eval("has_bits(set_bits(uac, 0x2), 0x2)", &o), b(true));
    assert_eq!(eval("has_bits(uac, 0x2)", &o), b(false));
    // Enable it again: clear the bit; clearing a clear bit changes nothing.
    assert_eq!(eval("clear_bits(set_bits(uac, 0x2), 0x2)", &o), i(ENABLED));
    assert_eq!(eval("clear_bits(uac, 0x2)", &o), i(ENABLED));
    // Every bit of the mask must be set.
    assert_eq!(eval("has_bits(uac, 0x10200)", &o), b(true));
    assert_eq!(eval("has_bits(uac, 0x10202)", &o), b(false));
    assert_eq!(
        eval(r#"has_bits(uac, 0x2) ? "disabled" : "enabled""#, &o),
        Some("enabled".into())
    );
}

#[test]
fn and_or_xor_and_not_work_on_64_bit_integers() {
    assert_eq!(eval0("bit_and(0xF, 0xF7)"), i(7));
    assert_eq!(eval0("bit_or(0x200, 0x2)"), i(0x202));
    assert_eq!(eval0("bit_xor(0x202, 0x2)"), i(0x200));
    assert_eq!(eval0("bit_not(0)"), i(-1));
    assert_eq!(eval0("bit_and(0x202, bit_not(0x2))"), i(0x200));
    assert_eq!(
        eval0("bit_or(-9223372036854775807 + -1, 1)"),
        i(i64::MIN + 1)
    );
}

#[test]
fn integers_given_as_text_are_read_as_to_int_reads_them() {
    let o = o();
    assert_eq!(eval("set_bits(uac_text, 0x2)", &o), i(66050));
    assert_eq!(eval("has_bits(uac_text, 0x2)", &o), b(true));
    assert_eq!(eval(r#"bit_or("512", "2")"#, &o), i(514));
    assert_eq!(eval("set_bits(blank, 0x2)", &o), None);
}

#[test]
fn absent_in_absent_out_and_false_when_testing_nothing() {
    let o = o();
    assert_eq!(eval("set_bits(missing, 0x2)", &o), None);
    assert_eq!(eval("bit_and(uac, missing)", &o), None);
    assert_eq!(eval("bit_not(missing)", &o), None);
    assert_eq!(eval("has_bits(missing, 0x2)", &o), b(false));
    assert_eq!(
        eval("set_bits(coalesce(missing, 0x200), 0x2)", &o),
        i(0x202)
    );
}

#[test]
fn values_that_are_not_integers_are_errors_naming_the_value() {
    assert_eq!(
        err("set_bits(name, 0x2)"),
        r#"set_bits: expects an integer (got string "Ada")"#
    );
    assert_eq!(
        err("has_bits(uac, flag)"),
        "has_bits: expects an integer (got boolean true)"
    );
    assert!(compile_expr(r#"bit_and("0x2", 1)"#).is_err());
}
