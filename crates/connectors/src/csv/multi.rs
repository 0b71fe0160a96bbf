//! The cells of multi-valued columns: values joined by the
//! `multi_value_separator`, with a backslash before every backslash and
//! every character that starts the separator inside a value
//! (`semi\;colon`, `C:\\dir`), so that any value reads back as it was
//! exported. A backslash before anything else is kept as it is, so a file
//! written by hand (`C:\dir`) reads as before.

use std::borrow::Cow;

/// The values of a cell, empty ones left out.
pub fn split<'a>(cell: &'a str, sep: &str) -> Vec<Cow<'a, str>> {
    if !cell.contains('\\') {
        return cell
            .split(sep)
            .filter(|v| !v.is_empty())
            .map(Cow::Borrowed)
            .collect();
    }
    let lead = sep.chars().next();
    let mut values = Vec::new();
    let mut current = String::new();
    let mut rest = cell;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix(sep) {
            values.push(std::mem::take(&mut current));
            rest = after;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        match rest.chars().next() {
            Some(next) if c == '\\' && (next == '\\' || Some(next) == lead) => {
                current.push(next);
                rest = &rest[next.len_utf8()..];
            }
            _ => current.push(c),
        }
    }
    values.push(current);
    values
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(Cow::Owned)
        .collect()
}

/// One value, escaped for a multi-valued cell.
pub fn escape<'a>(value: &'a str, sep: &str) -> Cow<'a, str> {
    let lead = sep.chars().next();
    let special = |c: char| c == '\\' || Some(c) == lead;
    if !value.contains(special) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if special(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_escaped_separator_should_stay_inside_its_value() {
        assert_eq!(escape("semi;colon", ";"), r"semi\;colon");
        assert_eq!(
            split(r"a;semi\;colon;C:\\dir", ";"),
            ["a", "semi;colon", r"C:\dir"]
        );
    }

    #[test]
    fn a_backslash_before_anything_else_should_be_kept() {
        assert_eq!(split(r"C:\dir;x", ";"), [r"C:\dir", "x"]);
        assert_eq!(split(r"end\", ";"), [r"end\"]);
    }

    #[test]
    fn a_separator_of_several_characters_should_be_escaped_by_its_first() {
        assert_eq!(escape("a||b|", "||"), r"a\|\|b\|");
        assert_eq!(split(r"a\|\|b\|||c", "||"), ["a||b|", "c"]);
    }

    proptest! {
        #[test]
        fn escaped_values_should_split_back_into_themselves(
            values in proptest::collection::vec("[a-c;|\\\\]{1,6}", 0..5),
            sep in prop_oneof![Just(";".to_owned()), Just("||".to_owned()), Just("|".to_owned())],
        ) {
            let cell: Vec<String> = values.iter().map(|v| escape(v, &sep).into_owned()).collect();
            let back: Vec<String> = split(&cell.join(&sep), &sep)
                .into_iter()
                .map(Cow::into_owned)
                .collect();
            prop_assert_eq!(back, values);
        }
    }
}
