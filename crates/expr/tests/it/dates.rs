//! Dates: RFC 3339 text in UTC, parsed and formatted with strftime
//! formats, shifted by days, hours, minutes and months, and converted to and
//! from AD's FILETIME and Unix seconds; bad dates, bad formats and overflow.

use super::{eval, eval0, multi, object, s};
use autosync_expr::compile_expr;
use autosync_model::{Attributes, Value};

fn o() -> Attributes {
    object(&[
        ("hired", "2024-03-01".into()),
        ("start", "01/09/2023".into()),
        ("stamp", "2024-03-01T09:30:00+02:00".into()),
        ("format", "%d.%m.%Y".into()),
        ("bad_format", "%Y-%Q".into()),
        ("pwdLastSet", Value::Integer(129_699_324_000_000_000)),
        ("accountExpires", "9223372036854775807".into()),
        ("never", Value::Integer(0)),
        ("unix", Value::Integer(1_709_285_400)),
        ("dates", multi(&["2024-01-31", "2024-02-29"])),
        ("blank", "".into()),
        ("feb31", "31/02/2024".into()),
        ("before_1601", "1600-12-31".into()),
        ("negative", Value::Integer(-5)),
        ("huge", Value::Integer(i64::MAX)),
    ])
}

fn err(src: &str) -> String {
    compile_expr(src).unwrap().eval(&o()).unwrap_err().message
}

fn i(v: i64) -> Option<Value> {
    Some(Value::Integer(v))
}

#[test]
fn parse_date_reads_text_in_a_format_into_rfc_3339_in_utc() {
    let o = o();
    assert_eq!(
        eval(r#"parse_date(start, "%d/%m/%Y")"#, &o),
        s("2023-09-01T00:00:00Z")
    );
    assert_eq!(
        eval0(r#"parse_date("1.3.2024 14:05", "%d.%m.%Y %H:%M")"#),
        s("2024-03-01T14:05:00Z")
    );
    assert_eq!(
        eval0(r#"parse_date("2024-03-01 09:30 +0200", "%Y-%m-%d %H:%M %z")"#),
        s("2024-03-01T07:30:00Z")
    );
    assert_eq!(eval("parse_date(stamp)", &o), s("2024-03-01T07:30:00Z"));
    assert_eq!(eval("parse_date(hired)", &o), s("2024-03-01T00:00:00Z"));
    assert_eq!(
        eval0(r#"parse_date("2024-03-01 09:30:15.25")"#),
        s("2024-03-01T09:30:15.250Z")
    );
    assert_eq!(eval(r#"parse_date(missing, "%Y")"#, &o), None);
    assert_eq!(eval(r#"parse_date(blank, "%Y-%m-%d")"#, &o), None);
    assert_eq!(
        eval("parse_date(dates)", &o),
        Some(multi(&["2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z"]))
    );
}

#[test]
fn a_text_that_is_not_a_date_is_an_error_naming_the_text_and_the_format() {
    let o = o();
    assert_eq!(
        err(r#"parse_date(start, "%Y-%m-%d")"#),
        r#"parse_date: string "01/09/2023" is not a date in the format "%Y-%m-%d": input contains invalid characters"#
    );
    assert_eq!(
        err(r#"parse_date(feb31, "%d/%m/%Y")"#),
        r#"parse_date: string "31/02/2024" is not a date in the format "%d/%m/%Y": input is out of range"#
    );
    assert!(err("parse_date(start)").starts_with("parse_date: expects a date such as"));
    assert!(err("format_date(start, \"%Y\")").contains(r#"(got string "01/09/2023")"#));
    assert!(err("add_days(unix, 1)").contains("not a number"));
    // A literal that can never be a date is caught when the expression compiles.
    assert!(compile_expr(r#"parse_date("2024-13-01")"#).is_err());
    assert_eq!(
        eval(r#"is_date(start, "%d/%m/%Y")"#, &o),
        Some(Value::Boolean(true))
    );
    assert_eq!(eval("is_date(start)", &o), Some(Value::Boolean(false)));
    assert_eq!(eval("is_date(stamp)", &o), Some(Value::Boolean(true)));
    assert_eq!(eval("is_date(missing)", &o), Some(Value::Boolean(false)));
}

#[test]
fn a_bad_literal_format_is_a_compile_error_and_a_computed_one_an_object_error() {
    let e = compile_expr(r#"format_date(hired, "%Y-%Q")"#).unwrap_err();
    assert_eq!(
        e.message,
        r#"format_date: invalid date format "%Y-%Q" (bad or unsupported format string)"#
    );
    assert_eq!(e.offset, Some(19));
    assert!(e.help.unwrap().contains("%Y year"));
    assert!(compile_expr(r#"parse_date(start, "%")"#).is_err());
    assert_eq!(
        err("format_date(hired, bad_format)"),
        r#"format_date: invalid date format "%Y-%Q" (bad or unsupported format string)"#
    );
    assert_eq!(eval("format_date(hired, format)", &o()), s("01.03.2024"));
}

#[test]
fn format_date_writes_a_date_in_utc_with_a_format() {
    let o = o();
    assert_eq!(
        eval(r#"format_date(hired, "%d/%m/%Y")"#, &o),
        s("01/03/2024")
    );
    assert_eq!(
        eval(r#"format_date(stamp, "%Y%m%d%H%M%S.0Z")"#, &o),
        s("20240301073000.0Z")
    );
    assert_eq!(
        eval(
            r#"format_date(parse_date(start, "%d/%m/%Y"), "%Y-%m-%d")"#,
            &o
        ),
        s("2023-09-01")
    );
    assert_eq!(eval(r#"format_date(missing, "%Y")"#, &o), None);
    assert_eq!(eval(r#"format_date(blank, "%Y")"#, &o), None);
    assert_eq!(eval(r#"format_date(hired, null)"#, &o), None);
}

#[test]
fn add_functions_shift_a_date_and_overflow_is_an_error() {
    let o = o();
    assert_eq!(eval("add_days(hired, 30)", &o), s("2024-03-31T00:00:00Z"));
    assert_eq!(eval("add_days(hired, -1)", &o), s("2024-02-29T00:00:00Z"));
    assert_eq!(eval("add_hours(stamp, 24)", &o), s("2024-03-02T07:30:00Z"));
    assert_eq!(
        eval("add_minutes(stamp, -31)", &o),
        s("2024-03-01T06:59:00Z")
    );
    assert_eq!(
        eval("add_months(dates, 1)", &o),
        Some(multi(&["2024-02-29T00:00:00Z", "2024-03-29T00:00:00Z"]))
    );
    assert_eq!(
        eval("add_months(hired, -12)", &o),
        s("2023-03-01T00:00:00Z")
    );
    assert_eq!(
        eval(r#"add_days(hired, "7")"#, &o),
        s("2024-03-08T00:00:00Z")
    );
    assert_eq!(eval("add_days(missing, 1)", &o), None);
    assert_eq!(eval("add_days(hired, missing)", &o), None);
    assert_eq!(
        err("add_days(hired, 9223372036854775807)"),
        r#"add_days: adding 9223372036854775807 gives a date out of range (got string "2024-03-01")"#
    );
    assert!(err("add_days(hired, 100000000)").contains("out of range"));
    assert!(err("add_months(hired, 5000000000)").contains("out of range"));
    assert!(err(r#"add_days(hired, "soon")"#).contains("add_days: expects an integer"));
}

#[test]
fn filetime_converts_both_ways_and_zero_and_max_mean_never() {
    let o = o();
    assert_eq!(
        eval("from_filetime(pwdLastSet)", &o),
        s("2012-01-01T23:00:00Z")
    );
    assert_eq!(
        eval(r#"to_filetime("2012-01-01 23:00:00")"#, &o),
        i(129_699_324_000_000_000)
    );
    assert_eq!(eval("from_filetime(accountExpires)", &o), None);
    assert_eq!(eval("from_filetime(never)", &o), None);
    assert_eq!(eval("from_filetime(missing)", &o), None);
    assert_eq!(
        eval0("from_filetime(1)"),
        s("1601-01-01T00:00:00.000000100Z")
    );
    assert_eq!(eval0("to_filetime(from_filetime(1))"), i(1));
    assert_eq!(
        eval(r#"coalesce(to_filetime(missing), 9223372036854775807)"#, &o),
        i(i64::MAX)
    );
    assert_eq!(
        err("from_filetime(negative)"),
        "from_filetime: a FILETIME cannot be negative (got integer -5)"
    );
    assert_eq!(
        err("to_filetime(before_1601)"),
        r#"to_filetime: FILETIME cannot hold dates before 1601 (got string "1600-12-31")"#
    );
    assert!(err("to_filetime(add_months(hired, 400000))").contains("after 30828"));
    // Literals that can never work are caught when the expression compiles.
    assert!(compile_expr("from_filetime(-5)").is_err());
}

#[test]
fn unix_seconds_convert_both_ways() {
    let o = o();
    assert_eq!(eval("from_unix(unix)", &o), s("2024-03-01T09:30:00Z"));
    assert_eq!(eval("to_unix(stamp)", &o), i(1_709_278_200));
    assert_eq!(eval("to_unix(from_unix(unix))", &o), i(1_709_285_400));
    assert_eq!(eval0(r#"from_unix("-86400")"#), s("1969-12-31T00:00:00Z"));
    assert_eq!(eval("to_unix(missing)", &o), None);
    assert!(err("from_unix(huge)").contains("from_unix: the date is out of range"));
}

#[test]
fn there_is_no_clock_to_read() {
    for name in ["now", "today", "utc_now"] {
        let e = compile_expr(&format!("{name}()")).unwrap_err();
        assert!(e.help.unwrap().contains("same result every time"), "{name}");
    }
}
