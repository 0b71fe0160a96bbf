//! The typed trigger configuration, as it appears under `[ma.controller]`:
//!
//! ```toml
//! triggers = [
//!   { type = "interval", every = "15m", jitter = "30s", profile = "delta-import" },
//!   { type = "schedule", name = "hr-nightly", cron = "0 2 * * *", timezone = "Europe/Paris", profile = "full-import", catch_up = true },
//! ]
//! ```
//!
//! Each trigger type's keys live in its own module (`IntervalConfig`, ...);
//! this module holds the tagged union, the keys every trigger shares, and the
//! validation error that names the MA, the trigger and the key.

use crate::TriggerRequest;
use crate::auto_import::AutoImportConfig;
use crate::change_notification::ChangeNotificationConfig;
use crate::change_poll::ChangePollConfig;
use crate::file_watch::FileWatchConfig;
use crate::interval::IntervalConfig;
use crate::schedule::ScheduleConfig;
use crate::script::ScriptConfig;
use serde::{Deserialize, Serialize};

/// One trigger of an MA; `type` picks the kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum TriggerConfig {
    Interval(IntervalConfig),
    Schedule(ScheduleConfig),
    AutoImport(AutoImportConfig),
    FileWatch(FileWatchConfig),
    ChangePoll(ChangePollConfig),
    ChangeNotification(ChangeNotificationConfig),
    Script(ScriptConfig),
}

impl TriggerConfig {
    /// The `type` key's value.
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerConfig::Interval(_) => "interval",
            TriggerConfig::Schedule(_) => "schedule",
            TriggerConfig::AutoImport(_) => "auto-import",
            TriggerConfig::FileWatch(_) => "file-watch",
            TriggerConfig::ChangePoll(_) => "change-poll",
            TriggerConfig::ChangeNotification(_) => "change-notification",
            TriggerConfig::Script(_) => "script",
        }
    }

    /// The file the trigger reads as it is built, relative to the
    /// configuration's folder (a script trigger's `file`): its text is
    /// part of what the trigger is, so a reload that finds it changed
    /// builds the trigger again.
    pub fn file_read_at_build(&self) -> Option<&std::path::Path> {
        match self {
            TriggerConfig::Script(s) => s.file.as_deref(),
            _ => None,
        }
    }
}

/// A trigger configuration that is wrong: which MA, which trigger, which key,
/// what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("MA `{ma}`, triggers[{index}] ({kind}): {}{message}", if key.is_empty() { String::new() } else { format!("key `{key}`: ") })]
pub struct TriggerConfigError {
    pub ma: String,
    /// Position in the MA's `triggers` list (0-based).
    pub index: usize,
    /// The trigger's `type` (or `?` when it could not be read).
    pub kind: String,
    /// The key at fault; empty when the whole entry is.
    pub key: String,
    pub message: String,
}

/// Reads the `triggers` array (e.g. from the raw `[ma.controller]` table),
/// reporting every bad entry, not only the first.
pub fn parse_triggers(
    ma: &str,
    triggers: &serde_json::Value,
) -> Result<Vec<TriggerConfig>, Vec<TriggerConfigError>> {
    let Some(items) = triggers.as_array() else {
        return Err(vec![TriggerConfigError {
            ma: ma.to_owned(),
            index: 0,
            kind: "?".into(),
            key: "triggers".into(),
            message: "must be an array of tables, e.g. triggers = [{ type = \"interval\", every = \"15m\" }]".into(),
        }]);
    };
    let mut configs = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match serde_json::from_value::<TriggerConfig>(item.clone()) {
            Ok(config) => configs.push(config),
            Err(e) => errors.push(TriggerConfigError {
                ma: ma.to_owned(),
                index,
                kind: item
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("?")
                    .to_owned(),
                key: String::new(),
                message: e.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(configs)
    } else {
        Err(errors)
    }
}

/// The default profile a trigger asks for.
pub fn default_profile() -> String {
    "delta-import".into()
}

/// What a validated trigger asks for, and how it names itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    pub ma: String,
    /// Stable identity of the trigger within its MA, for persisted state:
    /// its `name`, or its type and defining keys.
    pub key: String,
    /// Human description used as the request's `trigger`.
    pub trigger: String,
    pub profile: String,
    pub exclusive: bool,
    pub run_immediate: bool,
}

impl Ask {
    /// Builds the description `"{kind} {name} ({details})"` (name optional).
    pub fn new(ma: &str, kind: &str, name: Option<&str>, details: &str, common: Common<'_>) -> Ask {
        let trigger = match name {
            Some(n) => format!("{kind} {n} ({details})"),
            None => format!("{kind} ({details})"),
        };
        let key = match name {
            Some(n) => format!("{kind}:{n}"),
            None => format!("{kind}:{details}"),
        };
        Ask {
            ma: ma.to_owned(),
            key,
            trigger,
            profile: common.profile.to_owned(),
            exclusive: common.exclusive,
            run_immediate: common.run_immediate,
        }
    }

    /// The request this trigger makes.
    pub fn request(&self) -> TriggerRequest {
        TriggerRequest {
            ma: self.ma.clone(),
            profile: self.profile.clone(),
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
            trigger: self.trigger.clone(),
        }
    }

    /// The request, with a note appended to the trigger description.
    pub fn request_with_note(&self, note: &str) -> TriggerRequest {
        let mut request = self.request();
        request.trigger = format!("{} {note}", self.trigger);
        request
    }
}

/// The keys most triggers share, borrowed from their config.
#[derive(Clone, Copy, Debug)]
pub struct Common<'a> {
    pub profile: &'a str,
    pub exclusive: bool,
    pub run_immediate: bool,
}

/// Shorthand to build a [`TriggerConfigError`] for one key.
pub(crate) fn key_error(
    ma: &str,
    index: usize,
    kind: &str,
    key: &str,
    message: impl Into<String>,
) -> TriggerConfigError {
    TriggerConfigError {
        ma: ma.to_owned(),
        index,
        kind: kind.to_owned(),
        key: key.to_owned(),
        message: message.into(),
    }
}

/// Checks the shared `profile` key.
pub(crate) fn check_profile(
    ma: &str,
    index: usize,
    kind: &str,
    profile: &str,
) -> Result<(), TriggerConfigError> {
    if profile.trim().is_empty() {
        return Err(key_error(
            ma,
            index,
            kind,
            "profile",
            "must name a run profile",
        ));
    }
    Ok(())
}

/// Checks that the duration at `key` is longer than zero.
pub(crate) fn check_positive(
    ma: &str,
    index: usize,
    kind: &str,
    key: &str,
    value: std::time::Duration,
) -> Result<(), TriggerConfigError> {
    if value.is_zero() {
        return Err(key_error(ma, index, kind, key, "must be longer than 0s"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Vec<TriggerConfig>, Vec<TriggerConfigError>> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let json = serde_json::to_value(&table["triggers"]).unwrap();
        parse_triggers("hr", &json)
    }

    #[test]
    fn triggers_should_read_from_the_toml_form_with_defaults() {
        let configs = from_toml(
            r#"triggers = [
                { type = "interval", every = "15m", jitter = "30s", profile = "delta-import" },
                { type = "schedule", name = "hr-nightly", cron = "0 2 * * *", timezone = "Europe/Paris", profile = "full-import" },
                { type = "auto-import" },
                { type = "file-watch", path = "data/hr.csv" },
                { type = "script", script = "()" },
                { type = "change-poll", every = "1m" },
                { type = "change-notification", ignore_attributes = ["lastLogon"] },
            ]"#,
        )
        .unwrap();
        assert_eq!(configs.len(), 7);
        let TriggerConfig::ChangeNotification(n) = &configs[6] else {
            panic!("not a change notification")
        };
        assert_eq!(
            (n.profile.as_str(), n.ignore_attributes.as_slice()),
            ("delta-import", &["lastLogon".to_owned()][..])
        );
        let TriggerConfig::ChangePoll(poll) = &configs[5] else {
            panic!("not a change poll")
        };
        assert_eq!(poll.every, HumanDurationOf::mins(1));
        assert_eq!(poll.profile, "delta-import");
        let TriggerConfig::Interval(interval) = &configs[0] else {
            panic!("not an interval")
        };
        assert_eq!(interval.every, HumanDurationOf::mins(15));
        let TriggerConfig::AutoImport(auto) = &configs[2] else {
            panic!("not auto-import")
        };
        assert_eq!(auto.every, HumanDurationOf::mins(60));
        assert_eq!(auto.profile, "delta-import");
    }

    struct HumanDurationOf;
    impl HumanDurationOf {
        fn mins(m: u64) -> crate::HumanDuration {
            crate::HumanDuration::from_secs(m * 60)
        }
    }

    #[test]
    fn unknown_keys_should_be_rejected_naming_the_trigger_and_the_key() {
        let errors = from_toml(r#"triggers = [{ type = "interval", every = "15m" }, { type = "interval", evry = "15m" }]"#)
            .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].index, 1);
        let text = errors[0].to_string();
        assert!(text.contains("MA `hr`, triggers[1] (interval)"), "{text}");
        assert!(text.contains("unknown field `evry`"), "{text}");
    }

    #[test]
    fn unknown_trigger_types_and_bad_durations_should_be_rejected_with_what_is_wrong() {
        let errors = from_toml(r#"triggers = [{ type = "sometimes" }, { type = "interval", every = "15 minutes please" }]"#)
            .unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0]
                .to_string()
                .contains("unknown variant `sometimes`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].to_string().contains("invalid duration"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn a_triggers_value_that_is_not_an_array_should_be_rejected() {
        let errors = parse_triggers("hr", &serde_json::json!({"type": "interval"})).unwrap_err();
        assert_eq!(errors[0].key, "triggers");
    }
}
