//! The built-in functions of the expression language: their names, argument
//! counts and signatures (used at compile time), and the "did you mean"
//! suggestion for misspelt names.

use crate::shared::Shared;
use autosync_model::suggest::closest;

/// A built-in function, resolved at compile time so that evaluation never
/// looks a function up by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Lower,
    Upper,
    Trim,
    Concat,
    Coalesce,
    Left,
    Right,
    Substring,
    Replace,
    Split,
    Join,
    Len,
    IsPresent,
    IsEmpty,
    ToString,
    ToInt,
    StartsWith,
    EndsWith,
    Contains,
    If,
    First,
    /// A function shared with scripts (DN, regular expressions, dates,
    /// bits): see `shared`.
    Shared(Shared),
}

/// Name, minimum and maximum argument count (`None`: any number), signature.
struct Spec {
    func: Func,
    name: &'static str,
    min: usize,
    max: Option<usize>,
    signature: &'static str,
}

const SPECS: &[Spec] = &[
    spec(Func::Lower, "lower", 1, Some(1), "lower(text)"),
    spec(Func::Upper, "upper", 1, Some(1), "upper(text)"),
    spec(Func::Trim, "trim", 1, Some(1), "trim(text)"),
    spec(Func::Concat, "concat", 1, None, "concat(a, b, ...)"),
    spec(Func::Coalesce, "coalesce", 1, None, "coalesce(a, b, ...)"),
    spec(Func::Left, "left", 2, Some(2), "left(text, count)"),
    spec(Func::Right, "right", 2, Some(2), "right(text, count)"),
    spec(
        Func::Substring,
        "substring",
        3,
        Some(3),
        "substring(text, start, length)",
    ),
    spec(
        Func::Replace,
        "replace",
        3,
        Some(3),
        "replace(text, from, to)",
    ),
    spec(Func::Split, "split", 2, Some(2), "split(text, separator)"),
    spec(Func::Join, "join", 2, Some(2), "join(values, separator)"),
    spec(Func::Len, "len", 1, Some(1), "len(value)"),
    spec(
        Func::IsPresent,
        "is_present",
        1,
        Some(1),
        "is_present(value)",
    ),
    spec(Func::IsEmpty, "is_empty", 1, Some(1), "is_empty(value)"),
    spec(Func::ToString, "to_string", 1, Some(1), "to_string(value)"),
    spec(Func::ToInt, "to_int", 1, Some(1), "to_int(value)"),
    spec(
        Func::StartsWith,
        "starts_with",
        2,
        Some(2),
        "starts_with(text, prefix)",
    ),
    spec(
        Func::EndsWith,
        "ends_with",
        2,
        Some(2),
        "ends_with(text, suffix)",
    ),
    spec(
        Func::Contains,
        "contains",
        2,
        Some(2),
        "contains(text, part)",
    ),
    spec(Func::If, "if", 3, Some(3), "if(condition, then, else)"),
    spec(Func::First, "first", 1, Some(1), "first(values)"),
    shared(Shared::EscapeDn, "escape_dn", 1, 1, "escape_dn(value)"),
    shared(
        Shared::EscapeDnComponent,
        "escape_dn_component",
        1,
        1,
        "escape_dn_component(\"CN=\" + value)",
    ),
    shared(
        Shared::UnescapeDn,
        "unescape_dn",
        1,
        1,
        "unescape_dn(value)",
    ),
    shared(
        Shared::DnComponent,
        "dn_component",
        2,
        2,
        "dn_component(dn, n)",
    ),
    shared(
        Shared::DnComponentRev,
        "dn_component_rev",
        2,
        3,
        "dn_component_rev(dn, n) or dn_component_rev(dn, n, \"DC\")",
    ),
    shared(
        Shared::RegexMatch,
        "regex_match",
        2,
        2,
        "regex_match(text, pattern)",
    ),
    shared(
        Shared::RegexReplace,
        "regex_replace",
        3,
        3,
        "regex_replace(text, pattern, replacement)",
    ),
    shared(
        Shared::RegexExtract,
        "regex_extract",
        2,
        3,
        "regex_extract(text, pattern) or regex_extract(text, pattern, group)",
    ),
    shared(
        Shared::ParseDate,
        "parse_date",
        1,
        2,
        "parse_date(text) or parse_date(text, format)",
    ),
    shared(
        Shared::FormatDate,
        "format_date",
        2,
        2,
        "format_date(date, format)",
    ),
    shared(
        Shared::IsDate,
        "is_date",
        1,
        2,
        "is_date(text) or is_date(text, format)",
    ),
    shared(Shared::AddDays, "add_days", 2, 2, "add_days(date, days)"),
    shared(
        Shared::AddHours,
        "add_hours",
        2,
        2,
        "add_hours(date, hours)",
    ),
    shared(
        Shared::AddMinutes,
        "add_minutes",
        2,
        2,
        "add_minutes(date, minutes)",
    ),
    shared(
        Shared::AddMonths,
        "add_months",
        2,
        2,
        "add_months(date, months)",
    ),
    shared(
        Shared::FromFiletime,
        "from_filetime",
        1,
        1,
        "from_filetime(filetime)",
    ),
    shared(Shared::ToFiletime, "to_filetime", 1, 1, "to_filetime(date)"),
    shared(Shared::FromUnix, "from_unix", 1, 1, "from_unix(seconds)"),
    shared(Shared::ToUnix, "to_unix", 1, 1, "to_unix(date)"),
    shared(Shared::BitAnd, "bit_and", 2, 2, "bit_and(a, b)"),
    shared(Shared::BitOr, "bit_or", 2, 2, "bit_or(a, b)"),
    shared(Shared::BitXor, "bit_xor", 2, 2, "bit_xor(a, b)"),
    shared(Shared::BitNot, "bit_not", 1, 1, "bit_not(n)"),
    shared(Shared::SetBits, "set_bits", 2, 2, "set_bits(value, mask)"),
    shared(
        Shared::ClearBits,
        "clear_bits",
        2,
        2,
        "clear_bits(value, mask)",
    ),
    shared(Shared::HasBits, "has_bits", 2, 2, "has_bits(value, mask)"),
];

const fn spec(
    func: Func,
    name: &'static str,
    min: usize,
    max: Option<usize>,
    signature: &'static str,
) -> Spec {
    Spec {
        func,
        name,
        min,
        max,
        signature,
    }
}

/// A shared function takes a fixed range of arguments.
const fn shared(
    shared: Shared,
    name: &'static str,
    min: usize,
    max: usize,
    signature: &'static str,
) -> Spec {
    spec(Func::Shared(shared), name, min, Some(max), signature)
}

/// The shared functions: each one's name and least and most arguments.
pub(crate) fn shared_functions() -> impl Iterator<Item = (Shared, &'static str, usize, usize)> {
    SPECS.iter().filter_map(|s| match s.func {
        Func::Shared(shared) => Some((shared, s.name, s.min, s.max.unwrap_or(s.min))),
        _ => None,
    })
}

impl Func {
    /// The function of that name.
    pub(crate) fn by_name(name: &str) -> Option<Func> {
        SPECS.iter().find(|s| s.name == name).map(|s| s.func)
    }

    fn spec(self) -> Option<&'static Spec> {
        SPECS.iter().find(|s| s.func == self)
    }

    pub(crate) fn name(self) -> &'static str {
        self.spec().map_or("?", |s| s.name)
    }

    /// `None` when `n` arguments are fine, else the error message and help.
    pub(crate) fn check_arity(self, n: usize) -> Option<(String, String)> {
        let spec = self.spec()?;
        let ok = n >= spec.min && spec.max.is_none_or(|max| n <= max);
        if ok {
            return None;
        }
        let expected = match spec.max {
            Some(max) if max == spec.min => format!(
                "{} argument{}",
                spec.min,
                if spec.min == 1 { "" } else { "s" }
            ),
            Some(max) => format!("{} to {max} arguments", spec.min),
            None => format!(
                "at least {} argument{}",
                spec.min,
                if spec.min == 1 { "" } else { "s" }
            ),
        };
        Some((
            format!("`{}` takes {expected}, but {n} were given", spec.name),
            format!("use {}", spec.signature),
        ))
    }
}

/// All function names, for documentation and suggestions.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|s| s.name)
}

/// The help text for an unknown function name.
pub(crate) fn unknown_function_help(name: &str) -> String {
    match name {
        "now" | "today" | "utc_now" | "utcnow" | "random" | "rand" | "random_num" | "uuid"
        | "guid" => {
            return format!(
                "`{name}()` is not provided: flows must give the same result every time they run"
            );
        }
        _ => {}
    }
    match closest(name, function_names()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!(
            "the functions are: {}",
            function_names().collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_typos_of_function_names_are_suggested_and_far_names_are_not() {
        assert_eq!(closest("lowr", function_names()), Some("lower"));
        assert_eq!(closest("UPPER", function_names()), Some("upper"));
        assert_eq!(closest("startswith", function_names()), Some("starts_with"));
        assert_eq!(closest("frobnicate", function_names()), None);
        assert_eq!(closest("trmi", function_names()), Some("trim"));
    }

    #[test]
    fn every_function_resolves_by_its_own_name() {
        for name in function_names() {
            let f = Func::by_name(name).unwrap();
            assert_eq!(f.name(), name);
        }
    }

    #[test]
    fn shared_functions_take_at_most_the_arguments_scripts_are_registered_for() {
        let shared: Vec<_> = shared_functions().collect();
        assert_eq!(shared.len(), 26);
        for (_, name, min, max) in shared {
            assert!(min >= 1 && min <= max, "{name}");
            assert!(max <= crate::shared::MAX_ARGS, "{name}");
        }
    }
}
