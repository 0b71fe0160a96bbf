//! Durations as people write them in the configuration: `"90s"`, `"15m"`,
//! `"1h30m"`, `"500ms"`, `"2d"`. The one parser of every duration autosync
//! reads (triggers, notifications, hooks, controller settings, blackout
//! windows): a tiny parser (no dependency) with errors that say what was
//! wrong, the writer of the same form, and a serde newtype that reads and
//! writes it. Callers that know where the text came from name it in their
//! own message (e.g. a blackout's `duration` key) around
//! [`DurationError::reason`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration read from and written as a human string (`"1h30m"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// Why a duration string was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration `{input}`: {reason} (write e.g. \"90s\", \"15m\", \"1h30m\", \"500ms\", \"2d\")"
)]
pub struct DurationError {
    pub input: String,
    pub reason: String,
}

/// Parses `"1h30m"`-style durations: one or more `<integer><unit>` parts,
/// units `ms`, `s`, `m`, `h`, `d` (also `sec`, `min`, `hour(s)`, `day(s)`),
/// spaces allowed between parts.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason: String| DurationError {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(err("it is empty".into()));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err(format!("expected a number at `{rest}`")));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| err(format!("number `{}` is too large", &rest[..digits])))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" | "sec" | "secs" => Duration::from_secs(value),
            "m" | "min" | "mins" => Duration::from_secs(value.saturating_mul(60)),
            "h" | "hour" | "hours" => Duration::from_secs(value.saturating_mul(3600)),
            "d" | "day" | "days" => Duration::from_secs(value.saturating_mul(86_400)),
            "" => return Err(err(format!("`{value}` has no unit (ms, s, m, h or d)"))),
            other => {
                return Err(err(format!(
                    "unknown unit `{other}` (use ms, s, m, h or d)"
                )));
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it (`"1h30m"`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs == 0 && millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if millis > 0 {
        out.push_str(&format!("{millis}ms"));
    }
    out
}

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_should_parse_single_and_compound_units() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
    }

    #[test]
    fn durations_without_unit_or_with_unknown_unit_should_be_rejected_with_the_reason() {
        let no_unit = parse_duration("15").unwrap_err();
        assert!(no_unit.to_string().contains("has no unit"), "{no_unit}");
        let bad_unit = parse_duration("15x").unwrap_err();
        assert!(
            bad_unit.to_string().contains("unknown unit `x`"),
            "{bad_unit}"
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m5").is_err());
    }

    #[test]
    fn durations_should_be_written_back_in_the_form_they_are_read() {
        for text in ["90s", "15m", "1h30m", "2d", "500ms", "1m30s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
