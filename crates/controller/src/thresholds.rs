//! Staging thresholds: an import that stages more adds, updates, renames,
//! deletes, delete-adds or changes in total than allowed (a count, or a
//! percentage of the connector space) stops the cycle of its MA before the
//! sync, until an operator approves or rejects. Pure.

use autosync_model::ImportCounters;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One limit: an absolute count or a percentage of the objects in the
/// connector space before the import.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Limit {
    Count(u64),
    Percent(f64),
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a count (e.g. 500) or a percentage as a string (e.g. \"10%\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit, E> {
                Ok(Limit::Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
                u64::try_from(v)
                    .map(Limit::Count)
                    .map_err(|_| E::custom(format!("a threshold cannot be negative ({v})")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Limit, E> {
                let t = v.trim();
                let Some(number) = t.strip_suffix('%') else {
                    return t.parse::<u64>().map(Limit::Count).map_err(|_| {
                        E::custom(format!(
                            "invalid threshold `{v}`: write a count (500) or a percentage (\"10%\")"
                        ))
                    });
                };
                match number.trim().parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => Ok(Limit::Percent(p)),
                    _ => Err(E::custom(format!(
                        "invalid threshold `{v}`: a percentage between 0% and 100%, e.g. \"10%\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Limit {
    /// Whether `value` is over the limit for a connector space of `total`
    /// objects. A percentage of an empty connector space is never exceeded
    /// (the first import of a new MA adds everything).
    pub fn exceeded(self, value: u64, total: u64) -> bool {
        match self {
            Limit::Count(n) => value > n,
            Limit::Percent(p) => total > 0 && (value as f64) * 100.0 > p * (total as f64),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// An MA's staging thresholds (`[ma.controller.staging_thresholds]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagingThresholds {
    #[serde(default)]
    pub adds: Option<Limit>,
    #[serde(default)]
    pub updates: Option<Limit>,
    #[serde(default)]
    pub renames: Option<Limit>,
    #[serde(default)]
    pub deletes: Option<Limit>,
    #[serde(default)]
    pub delete_adds: Option<Limit>,
    /// All staged changes together.
    #[serde(default)]
    pub changes: Option<Limit>,
}

/// One threshold an import went over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exceeded {
    /// `adds`, `updates`, `renames`, `deletes`, `delete_adds` or `changes`.
    pub what: String,
    pub value: u64,
    pub limit: Limit,
    /// Objects in the connector space before the import.
    pub cs_total: u64,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} > {}", self.what, self.value, self.limit)?;
        if matches!(self.limit, Limit::Percent(_)) && self.cs_total > 0 {
            let pct = (self.value as f64) * 100.0 / (self.cs_total as f64);
            write!(f, " ({pct:.1}% of {} objects)", self.cs_total)?;
        }
        Ok(())
    }
}

impl StagingThresholds {
    /// Whether any threshold is set.
    pub fn is_set(&self) -> bool {
        self.adds.is_some()
            || self.updates.is_some()
            || self.renames.is_some()
            || self.deletes.is_some()
            || self.delete_adds.is_some()
            || self.changes.is_some()
    }

    /// Every threshold that `counters` (an import step's) go over, for a
    /// connector space of `cs_total` objects before the import.
    pub fn evaluate(&self, counters: &ImportCounters, cs_total: u64) -> Vec<Exceeded> {
        let checks = [
            ("adds", self.adds, counters.stage_add),
            ("updates", self.updates, counters.stage_update),
            ("renames", self.renames, counters.stage_rename),
            ("deletes", self.deletes, counters.stage_delete),
            ("delete_adds", self.delete_adds, counters.stage_delete_add),
            ("changes", self.changes, counters.staged()),
        ];
        checks
            .into_iter()
            .filter_map(|(what, limit, value)| {
                let limit = limit?;
                limit.exceeded(value, cs_total).then(|| Exceeded {
                    what: what.to_owned(),
                    value,
                    limit,
                    cs_total,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<StagingThresholds, String> {
        let v: serde_json::Value = match toml_text {
            "" => serde_json::json!({}),
            _ => serde_json::from_str(toml_text).map_err(|e| e.to_string())?,
        };
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_should_parse_counts_and_percentages() {
        let t = parse(r#"{"adds": 100, "deletes": "10%", "changes": "250"}"#).unwrap();
        assert_eq!(t.adds, Some(Limit::Count(100)));
        assert_eq!(t.deletes, Some(Limit::Percent(10.0)));
        assert_eq!(t.changes, Some(Limit::Count(250)));
        let e = parse(r#"{"deletes": "110%"}"#).unwrap_err();
        assert!(e.contains("between 0% and 100%"), "{e}");
        let e = parse(r#"{"deletes": -3}"#).unwrap_err();
        assert!(e.contains("cannot be negative"), "{e}");
        let e = parse(r#"{"delets": 3}"#).unwrap_err();
        assert!(e.contains("unknown field `delets`"), "{e}");
    }

    #[test]
    fn an_import_over_a_count_or_a_percentage_should_be_reported_with_both_figures() {
        let t = parse(r#"{"adds": 100, "deletes": "10%"}"#).unwrap();
        let counters = ImportCounters {
            stage_add: 100,
            stage_delete: 120,
            ..ImportCounters::default()
        };
        let over = t.evaluate(&counters, 1000);
        assert_eq!(over.len(), 1, "{over:?}");
        assert_eq!(over[0].what, "deletes");
        assert_eq!(
            over[0].to_string(),
            "deletes 120 > 10% (12.0% of 1000 objects)"
        );
        let counters = ImportCounters {
            stage_add: 101,
            ..ImportCounters::default()
        };
        assert_eq!(t.evaluate(&counters, 1000)[0].to_string(), "adds 101 > 100");
    }

    #[test]
    fn a_percentage_of_an_empty_connector_space_should_never_be_exceeded() {
        let t = parse(r#"{"adds": "5%"}"#).unwrap();
        let counters = ImportCounters {
            stage_add: 500,
            ..ImportCounters::default()
        };
        assert!(t.evaluate(&counters, 0).is_empty());
        assert!(!t.is_set() || t.adds.is_some());
    }

    #[test]
    fn the_total_should_count_every_kind_of_change() {
        let t = parse(r#"{"changes": 10}"#).unwrap();
        let counters = ImportCounters {
            stage_add: 3,
            stage_update: 3,
            stage_rename: 2,
            stage_delete: 2,
            stage_delete_add: 1,
            stage_no_change: 1000,
            ..ImportCounters::default()
        };
        assert_eq!(t.evaluate(&counters, 1000)[0].value, 11);
    }
}
