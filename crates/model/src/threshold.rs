//! Thresholds that stop mass changes before they reach other systems: the
//! staging thresholds of an import (checked before the sync) and the
//! deletion threshold of an export. A limit is a count, a share of the
//! connector space, or off.
//!
//! A share is never applied below [`SHARE_FLOOR`] objects: on a connector
//! space of 30 objects "10%" would otherwise stop the deletion of a fourth
//! leaver, and a rule that stops ordinary work gets turned off.

use crate::run::ImportCounters;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A share limit never stops this many changes or fewer.
pub const SHARE_FLOOR: u64 = 10;

/// One limit: an absolute count, a percentage of the objects in the
/// connector space, or none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Count(u64),
    Percent(f64),
    Off,
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Count(n) => s.serialize_u64(*n),
            Limit::Percent(p) => s.serialize_str(&format!("{p}%")),
            Limit::Off => s.serialize_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LimitVisitor)
    }
}

struct LimitVisitor;

impl de::Visitor<'_> for LimitVisitor {
    type Value = Limit;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a count (e.g. 500), a percentage as a string (e.g. \"10%\") or \"off\"")
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
        Limit::parse(v).map_err(E::custom)
    }
}

impl Limit {
    /// `500`, `"10%"` or `"off"`.
    pub fn parse(text: &str) -> Result<Limit, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(Limit::Off);
        }
        let Some(number) = t.strip_suffix('%') else {
            return t.parse::<u64>().map(Limit::Count).map_err(|_| {
                "invalid threshold: write a count (500), a percentage (\"10%\") or \"off\""
                    .to_owned()
            });
        };
        match number.trim().parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Limit::Percent(p)),
            _ => {
                Err("invalid threshold: a percentage between 0% and 100%, e.g. \"10%\"".to_owned())
            }
        }
    }

    /// The most changes allowed on a connector space of `total` objects;
    /// `None` when there is no limit. A percentage of an empty connector
    /// space is no limit (the first import of a new MA adds everything),
    /// and a percentage never allows fewer than [`SHARE_FLOOR`].
    pub fn allowed(self, total: u64) -> Option<u64> {
        match self {
            Limit::Count(n) => Some(n),
            Limit::Percent(_) if total == 0 => None,
            Limit::Percent(p) => {
                let share = (p * total as f64 / 100.0).floor();
                // A share of a huge connector space saturates.
                let share = if share >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    share as u64
                };
                Some(share.max(SHARE_FLOOR))
            }
            Limit::Off => None,
        }
    }

    /// Whether `value` is over the limit for a connector space of `total`
    /// objects.
    pub fn exceeded(self, value: u64, total: u64) -> bool {
        self.allowed(total).is_some_and(|max| value > max)
    }

    pub fn is_off(self) -> bool {
        self == Limit::Off
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Percent(p) => write!(f, "{p}%"),
            Limit::Off => f.write_str("off"),
        }
    }
}

fn off() -> Limit {
    Limit::Off
}

fn ten_percent() -> Limit {
    Limit::Percent(10.0)
}

fn is_off(l: &Limit) -> bool {
    l.is_off()
}

/// An MA's staging thresholds (`[[ma]] staging_thresholds`): an import that
/// stages more than allowed stops before the sync, until an operator
/// approves or rejects. By default only deletes are limited, to 10% of the
/// connector space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagingThresholds {
    #[serde(default = "off", skip_serializing_if = "is_off")]
    pub adds: Limit,
    #[serde(default = "off", skip_serializing_if = "is_off")]
    pub updates: Limit,
    #[serde(default = "off", skip_serializing_if = "is_off")]
    pub renames: Limit,
    #[serde(default = "ten_percent")]
    pub deletes: Limit,
    #[serde(default = "off", skip_serializing_if = "is_off")]
    pub delete_adds: Limit,
    /// All staged changes together.
    #[serde(default = "off", skip_serializing_if = "is_off")]
    pub changes: Limit,
    /// Values removed from multi-valued references (a group's members)
    /// by the staged updates, less the values they add: a cut list
    /// removes values and adds none, a group whose members are replaced
    /// or people moved between groups add as many as they remove. A share
    /// is of the values the connector space holds.
    #[serde(default = "ten_percent")]
    pub values_removed: Limit,
}

impl Default for StagingThresholds {
    fn default() -> Self {
        StagingThresholds {
            adds: Limit::Off,
            updates: Limit::Off,
            renames: Limit::Off,
            deletes: ten_percent(),
            delete_adds: Limit::Off,
            changes: Limit::Off,
            values_removed: ten_percent(),
        }
    }
}

/// The name of the `values_removed` staging threshold.
pub const VALUES_REMOVED: &str = "values_removed";

/// One threshold an import went over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exceeded {
    /// `adds`, `updates`, `renames`, `deletes`, `delete_adds`, `changes`
    /// or `values_removed`.
    pub what: String,
    pub value: u64,
    pub limit: Limit,
    /// Objects in the connector space before the import (for
    /// `values_removed`: the values its multi-valued references held).
    pub cs_total: u64,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} > {}", self.what, self.value, self.limit)?;
        if matches!(self.limit, Limit::Percent(_)) && self.cs_total > 0 {
            let pct = (self.value as f64) * 100.0 / (self.cs_total as f64);
            let unit = if self.what == VALUES_REMOVED {
                "values"
            } else {
                "objects"
            };
            write!(f, " ({pct:.1}% of {} {unit})", self.cs_total)?;
        }
        Ok(())
    }
}

impl StagingThresholds {
    /// No threshold at all.
    pub fn off() -> Self {
        StagingThresholds {
            deletes: Limit::Off,
            values_removed: Limit::Off,
            ..Default::default()
        }
    }

    /// Whether any threshold is set.
    pub fn is_set(&self) -> bool {
        [
            self.adds,
            self.updates,
            self.renames,
            self.deletes,
            self.delete_adds,
            self.changes,
            self.values_removed,
        ]
        .iter()
        .any(|l| !l.is_off())
    }

    /// The values `counters` (an import step's) remove, less those they
    /// add: what [`StagingThresholds::values_removed`] limits.
    pub fn values_removed_by(counters: &ImportCounters) -> u64 {
        let added = counters
            .stage_values
            .saturating_sub(counters.stage_values_removed);
        counters.stage_values_removed.saturating_sub(added)
    }

    /// The `values_removed` threshold, if `counters` go over it for a
    /// connector space whose multi-valued references hold `values_total`
    /// values before the import.
    pub fn evaluate_values(
        &self,
        counters: &ImportCounters,
        values_total: u64,
    ) -> Option<Exceeded> {
        let value = Self::values_removed_by(counters);
        self.values_removed
            .exceeded(value, values_total)
            .then(|| Exceeded {
                what: VALUES_REMOVED.to_owned(),
                value,
                limit: self.values_removed,
                cs_total: values_total,
            })
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
            .filter(|(_, limit, value)| limit.exceeded(*value, cs_total))
            .map(|(what, limit, value)| Exceeded {
                what: what.to_owned(),
                value,
                limit,
                cs_total,
            })
            .collect()
    }
}

/// The export deletion threshold (`[[ma]] export_deletion_threshold`): an
/// export that would delete more than a count, or more than a share of the
/// MA's connector space, stops until an operator approves or rejects. The
/// default is 500 objects or 10%, whichever is smaller (500 is Microsoft
/// Entra Connect's default).
///
/// In the file: `500` (a count only), `"10%"` (a share only), `"off"`, or
/// `{ count = 500, share = "10%" }` (both: whichever is smaller).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeletionThreshold {
    pub count: Limit,
    pub share: Limit,
}

impl Default for DeletionThreshold {
    fn default() -> Self {
        DeletionThreshold {
            count: Limit::Count(500),
            share: ten_percent(),
        }
    }
}

impl DeletionThreshold {
    /// The most deletes allowed on a connector space of `total` objects;
    /// `None` when there is no limit.
    pub fn allowed(&self, total: u64) -> Option<u64> {
        match (self.count.allowed(total), self.share.allowed(total)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn exceeded(&self, deletes: u64, total: u64) -> bool {
        self.allowed(total).is_some_and(|max| deletes > max)
    }

    pub fn is_off(&self) -> bool {
        self.count.is_off() && self.share.is_off()
    }
}

impl fmt::Display for DeletionThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.count, self.share) {
            (Limit::Off, Limit::Off) => f.write_str("off"),
            (c, Limit::Off) => write!(f, "{c} objects"),
            (Limit::Off, s) => write!(f, "{s} of the connector space"),
            (c, s) => write!(
                f,
                "{c} objects or {s} of the connector space, whichever is smaller"
            ),
        }
    }
}

/// The table form of [`DeletionThreshold`]. Each key checks its own
/// value, so that a wrong one is reported at that key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletionThresholdTable {
    #[serde(default = "off", deserialize_with = "count_only")]
    count: Limit,
    #[serde(default = "off", deserialize_with = "share_only")]
    share: Limit,
}

/// `count`: a number of objects or `"off"`, never a percentage.
fn count_only<'de, D: Deserializer<'de>>(d: D) -> Result<Limit, D::Error> {
    match Limit::deserialize(d)? {
        Limit::Percent(_) => Err(de::Error::custom(
            "`count` is a number of objects (e.g. 500); put a percentage under `share`",
        )),
        l => Ok(l),
    }
}

/// `share`: a percentage of the connector space or `"off"`, never a count.
fn share_only<'de, D: Deserializer<'de>>(d: D) -> Result<Limit, D::Error> {
    match Limit::deserialize(d)? {
        Limit::Count(_) => Err(de::Error::custom(
            "`share` is a percentage of the connector space (e.g. \"10%\"); put a number under `count`",
        )),
        l => Ok(l),
    }
}

impl Serialize for DeletionThreshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DeletionThresholdTable {
            count: self.count,
            share: self.share,
        }
        .serialize(s)
    }
}

/// Not an untagged enum: serde's untagged enums replay a buffered copy of
/// the value and drop the error of each form, so an unknown key in the
/// table (`shar`) could only be reported as "none of the forms", without
/// the key or where it is. Reading the table straight from the
/// deserializer keeps the table's own errors, located at their key.
impl<'de> Deserialize<'de> for DeletionThreshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DeletionThresholdVisitor)
    }
}

/// Every form of the threshold, said when a count, share or "off" is wrong.
const DELETION_THRESHOLD_FORMS: &str = "expected a count (500), a share (\"10%\"), \"off\", \
     or a table `{ count = 500, share = \"10%\" }`";

struct DeletionThresholdVisitor;

impl DeletionThresholdVisitor {
    /// A single limit: a count limits the count, a share the share.
    fn one<E: de::Error>(limit: Result<Limit, E>) -> Result<DeletionThreshold, E> {
        let (count, share) = match limit.map_err(|_| E::custom(DELETION_THRESHOLD_FORMS))? {
            l @ Limit::Count(_) => (l, Limit::Off),
            l @ Limit::Percent(_) => (Limit::Off, l),
            Limit::Off => (Limit::Off, Limit::Off),
        };
        Ok(DeletionThreshold { count, share })
    }
}

impl<'de> de::Visitor<'de> for DeletionThresholdVisitor {
    type Value = DeletionThreshold;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a count (500), a share (\"10%\"), \"off\", or a table \
             `{ count = 500, share = \"10%\" }`",
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeletionThreshold, E> {
        Self::one(de::Visitor::visit_u64(LimitVisitor, v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DeletionThreshold, E> {
        Self::one(de::Visitor::visit_i64(LimitVisitor, v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DeletionThreshold, E> {
        Self::one(de::Visitor::visit_str(LimitVisitor, v))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<DeletionThreshold, A::Error> {
        let t = DeletionThresholdTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(DeletionThreshold {
            count: t.count,
            share: t.share,
        })
    }
}

/// What `approve` and `reject` say when no threshold stopped anything on
/// `ma` (one sentence, from the service and from the store).
pub fn nothing_waits(ma: &str) -> String {
    format!(
        "management agent `{ma}` waits for no approval or rejection: no import went over a \
         staging threshold and no export stopped at the deletion threshold"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staging(json: &str) -> Result<StagingThresholds, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn deletion(json: &str) -> Result<DeletionThreshold, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    /// What the engine relies on to skip counting the connector space:
    /// a limit allows its least on a connector space of one object.
    #[test]
    fn no_limit_should_allow_less_on_a_larger_connector_space_than_on_one_object() {
        let limits = [
            Limit::Count(0),
            Limit::Count(7),
            Limit::Percent(0.0),
            Limit::Percent(0.5),
            Limit::Percent(10.0),
            Limit::Percent(100.0),
            Limit::Off,
        ];
        for limit in limits {
            for value in [0, 1, 9, 10, 11, 50, 1_000, 1_000_000] {
                if limit.exceeded(value, 1) {
                    continue;
                }
                for total in [0, 1, 2, 9, 10, 99, 100, 101, 10_000, 1_000_000, u64::MAX] {
                    assert!(
                        !limit.exceeded(value, total),
                        "{limit} exceeded by {value} of {total} but not of 1"
                    );
                }
            }
        }
    }

    #[test]
    fn limits_should_parse_counts_percentages_and_off() {
        let t = staging(r#"{"adds": 100, "deletes": "10%", "changes": "250"}"#).unwrap();
        assert_eq!(t.adds, Limit::Count(100));
        assert_eq!(t.deletes, Limit::Percent(10.0));
        assert_eq!(t.changes, Limit::Count(250));
        // One key off leaves the others at their defaults.
        assert_eq!(
            staging(r#"{"deletes": "off"}"#).unwrap(),
            StagingThresholds {
                values_removed: Limit::Percent(10.0),
                ..StagingThresholds::off()
            }
        );
        assert_eq!(
            staging(r#"{"deletes": "off", "values_removed": "off"}"#).unwrap(),
            StagingThresholds::off()
        );
        let e = staging(r#"{"deletes": "110%"}"#).unwrap_err();
        assert!(e.contains("between 0% and 100%"), "{e}");
        let e = staging(r#"{"deletes": -3}"#).unwrap_err();
        assert!(e.contains("cannot be negative"), "{e}");
        let e = staging(r#"{"delets": 3}"#).unwrap_err();
        assert!(e.contains("unknown field `delets`"), "{e}");
    }

    #[test]
    fn by_default_only_deletes_should_be_limited_to_a_tenth() {
        let t = staging("{}").unwrap();
        assert_eq!(t, StagingThresholds::default());
        assert_eq!(t.deletes, Limit::Percent(10.0));
        let all_deleted = ImportCounters {
            stage_delete: 288,
            ..ImportCounters::default()
        };
        let over = t.evaluate(&all_deleted, 288);
        assert_eq!(over.len(), 1, "{over:?}");
        assert_eq!(
            over[0].to_string(),
            "deletes 288 > 10% (100.0% of 288 objects)"
        );
        let one_leaver = ImportCounters {
            stage_delete: 1,
            stage_add: 5000,
            ..ImportCounters::default()
        };
        assert!(t.evaluate(&one_leaver, 288).is_empty());
    }

    #[test]
    fn a_share_should_never_stop_ten_changes_or_fewer() {
        let l = Limit::Percent(10.0);
        assert!(!l.exceeded(SHARE_FLOOR, 20));
        assert!(l.exceeded(SHARE_FLOOR + 1, 20));
        assert!(!l.exceeded(28, 288));
        assert!(l.exceeded(29, 288));
        assert!(!l.exceeded(500, 0), "a share of an empty connector space");
        assert!(!Limit::Off.exceeded(u64::MAX, 1));
        assert!(Limit::Count(0).exceeded(1, 0));
    }

    #[test]
    fn a_deletion_threshold_should_take_the_smaller_of_count_and_share() {
        let d = DeletionThreshold::default();
        assert_eq!(d.allowed(288), Some(28));
        assert_eq!(d.allowed(1_000_000), Some(500));
        assert_eq!(d.allowed(0), Some(500));
        assert!(d.exceeded(288, 288));
        assert!(!d.exceeded(28, 288));
        assert_eq!(deletion("500").unwrap().allowed(288), Some(500));
        assert_eq!(deletion(r#""5%""#).unwrap().allowed(1000), Some(50));
        assert!(deletion(r#""off""#).unwrap().is_off());
        let both = deletion(r#"{"count": 100, "share": "20%"}"#).unwrap();
        assert_eq!(both.allowed(200), Some(40));
        assert_eq!(both.allowed(10_000), Some(100));
        let e = deletion(r#"{"count": "10%"}"#).unwrap_err();
        assert!(e.contains("`count` is a number"), "{e}");
        let e = deletion(r#""lots""#).unwrap_err();
        assert!(e.contains("expected a count"), "{e}");
    }

    /// The table's own errors, not "none of the forms": the configuration
    /// turns them into "unknown key, did you mean" at the key.
    #[test]
    fn a_deletion_threshold_table_should_name_its_unknown_key_and_its_wrong_value() {
        let e = deletion(r#"{"count": 500, "shar": "10%"}"#).unwrap_err();
        assert!(
            e.contains("unknown field `shar`, expected `count` or `share`"),
            "{e}"
        );
        let e = deletion(r#"{"share": 20}"#).unwrap_err();
        assert!(e.contains("`share` is a percentage"), "{e}");
        let e = deletion(r#"{"count": true}"#).unwrap_err();
        assert!(e.contains("invalid type: boolean `true`"), "{e}");
        assert_eq!(
            deletion(r#"{"count": "off"}"#).unwrap(),
            deletion(r#""off""#).unwrap()
        );
    }

    #[test]
    fn thresholds_should_round_trip_through_their_file_form() {
        for d in [
            DeletionThreshold::default(),
            deletion("7").unwrap(),
            deletion(r#""off""#).unwrap(),
        ] {
            let text = serde_json::to_string(&d).unwrap();
            assert_eq!(deletion(&text).unwrap(), d, "{text}");
        }
        for t in [StagingThresholds::default(), StagingThresholds::off()] {
            let text = serde_json::to_string(&t).unwrap();
            assert_eq!(staging(&text).unwrap(), t, "{text}");
        }
    }

    #[test]
    fn the_total_should_count_every_kind_of_change() {
        let t = staging(r#"{"changes": 10, "deletes": "off"}"#).unwrap();
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
