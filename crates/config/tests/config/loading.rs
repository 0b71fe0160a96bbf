//! Configurations that load: defaults, `${ENV}`, `*_file` secrets, relative
//! paths, warnings, and locating keys for other crates' diagnostics.

use crate::support::{ENV, VALID, load, registry};
use autosync_config::{PathSegment, Severity, load_str_with_env, parse_key_path};
use autosync_model::{DeprovisionAction, StepType};
use std::fs;
use std::path::Path;

#[test]
fn a_valid_configuration_should_load_with_its_definitions_and_no_warnings() {
    let loaded = load(VALID).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let hr = loaded.system.ma("hr").unwrap();
    assert_eq!(hr.connector.kind, "csv");
    assert_eq!(hr.import_flows.len(), 3);
    assert_eq!(hr.profile("delta-sync"), Some(vec![StepType::DeltaSync]));
    let dir = loaded.system.ma("directory").unwrap();
    assert_eq!(dir.export_deletion_threshold.allowed(10_000), Some(200));
    assert_eq!(dir.deprovisioning, DeprovisionAction::Disconnect);
    assert_eq!(
        hr.export_deletion_threshold,
        autosync_model::DeletionThreshold::default()
    );
    assert_eq!(
        hr.staging_thresholds,
        autosync_model::StagingThresholds::default()
    );
    assert_eq!(hr.max_value_size, 1 << 20, "1 MiB by default");
}

#[test]
fn load_should_resolve_the_store_path_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("quickstart");
    fs::create_dir(&folder).unwrap();
    let file = folder.join("autosync.toml");
    fs::write(&file, VALID).unwrap();
    let loaded = autosync_config::load(&file, &registry()).unwrap();
    let base = folder.canonicalize().unwrap();
    assert_eq!(loaded.system.base_dir, base);
    assert_eq!(loaded.system.store.path, base.join("state/autosync.db"));
    assert_eq!(loaded.path, file);
}

#[test]
fn an_absolute_store_path_should_be_kept_as_it_is() {
    let text = VALID.replace("state/autosync.db", "/var/lib/autosync/state.db");
    let loaded = load(&text).unwrap();
    assert_eq!(
        loaded.system.store.path,
        Path::new("/var/lib/autosync/state.db")
    );
}

#[test]
fn a_missing_file_should_be_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nope.toml");
    let err = autosync_config::load(&file, &registry()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(&file.display().to_string()), "{text}");
    assert!(
        text.contains("cannot read the configuration file"),
        "{text}"
    );
    assert!(text.contains("help: check the path"), "{text}");
}

#[test]
fn env_variables_should_be_interpolated_with_defaults_and_escapes() {
    let text = VALID
        .replace("\"data/hr.csv\"", "\"${HR_FILE}\"")
        .replace(
            "\"data/directory.jsonl\"",
            "\"${DIR_FILE:-data/dir.jsonl}\"",
        )
        .replace("\"state/autosync.db\"", "\"state/$${literal}.db\"");
    let loaded = load(&text).unwrap();
    let settings = &loaded.system.ma("hr").unwrap().connector.settings;
    assert_eq!(settings["path"], "data/hr.csv");
    let settings = &loaded.system.ma("directory").unwrap().connector.settings;
    assert_eq!(settings["path"], "data/dir.jsonl");
    assert!(loaded.system.store.path.ends_with("state/${literal}.db"));
}

#[test]
fn a_secret_file_should_replace_the_file_key_with_its_trimmed_contents() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    fs::write(dir.path().join("secrets/hr-password"), "s3cr3t-value\n").unwrap();
    let text = VALID.replace(
        "{ type = \"csv\", path = \"data/hr.csv\" }",
        "{ type = \"csv\", path = \"data/hr.csv\", password_file = \"secrets/hr-password\" }",
    );
    let file = dir.path().join("autosync.toml");
    fs::write(&file, &text).unwrap();
    let loaded = autosync_config::load(&file, &registry()).unwrap();
    let settings = &loaded.system.ma("hr").unwrap().connector.settings;
    assert_eq!(settings["password"], "s3cr3t-value");
    assert!(!settings.contains_key("password_file"));
    assert!(!format!("{loaded:?}").contains("s3cr3t-value"));
    // Other crates find the secret's place in the file by its plain name.
    let span = loaded
        .span_of(&parse_key_path("ma[0].connector.password"))
        .unwrap();
    assert_eq!(
        &loaded.source[span.offset()..span.offset() + span.len()],
        "\"secrets/hr-password\""
    );
}

#[test]
fn written_should_give_env_references_and_file_keys_as_the_file_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("pw"), "s3cr3t-value\n").unwrap();
    let text = VALID.replace(
        "{ type = \"csv\", path = \"data/hr.csv\" }",
        "{ type = \"csv\", path = \"${HR_DIR}/hr.csv\", password_file = \"pw\" }",
    ) + "\n[controller.notifications.smtp]\npassword = \"${SMTP_PASSWORD}\"\n";
    let file = dir.path().join("autosync.toml");
    fs::write(&file, &text).unwrap();
    let env = |name: &str| match name {
        "HR_DIR" => Some("data".to_owned()),
        "SMTP_PASSWORD" => Some("hunter2".to_owned()),
        _ => None,
    };
    let loaded = load_str_with_env(&text, &file, &registry(), &env).unwrap();
    // The system runs with the values ...
    let settings = &loaded.system.ma("hr").unwrap().connector.settings;
    assert_eq!(settings["path"], "data/hr.csv");
    assert_eq!(settings["password"], "s3cr3t-value");
    // ... and shows what was written.
    let connector = loaded.written(&parse_key_path("ma[0].connector")).unwrap();
    assert_eq!(
        connector,
        serde_json::json!({ "type": "csv", "path": "${HR_DIR}/hr.csv", "password_file": "pw" })
    );
    assert_eq!(
        loaded.written(&parse_key_path("controller.notifications")),
        Some(serde_json::json!({ "smtp": { "password": "${SMTP_PASSWORD}" } }))
    );
    assert_eq!(
        loaded.written(&parse_key_path("ma[0].connector.password")),
        None,
        "a secret read from a file is only under its `_file` key"
    );
    assert_eq!(loaded.written(&parse_key_path("ma[9]")), None);
}

#[test]
fn a_secret_should_never_appear_in_error_output() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("pw"), "s3cr3t-value\n").unwrap();
    // The secret is read, and the configuration has errors elsewhere, one of
    // them about the very setting that holds the secret.
    let text = VALID
        .replace(
            "{ type = \"csv\", path = \"data/hr.csv\" }",
            "{ type = \"csv\", path = \"data/hr.csv\", password_file = \"pw\", colour = \"${SECRET_THRESHOLD}\" }",
        )
        .replace("export_deletion_threshold = 200", "export_deletion_threshold = \"${SECRET_THRESHOLD}\"");
    let file = dir.path().join("autosync.toml");
    fs::write(&file, &text).unwrap();
    let err = autosync_config::load(&file, &registry()).unwrap_err();
    let plain = err.to_string();
    let fancy = err.render_fancy(false);
    let debug = format!("{err:?}");
    for output in [&plain, &fancy, &debug] {
        assert!(!output.contains("s3cr3t-value"), "{output}");
        assert!(!output.contains("hunter2"), "{output}");
    }
    assert!(plain.contains("interpolated value"), "{plain}");
}

#[test]
fn warnings_should_not_stop_loading_and_should_name_their_place() {
    let text = VALID
        .replace(
            "attributes = [\"employeeId\", \"displayName\", \"email\"]",
            "attributes = [\"employeeId\", \"displayName\", \"email\", \"manager\"]",
        )
        .replace(
            "{ email = [\"directory\", \"hr\"] }",
            "{ displayName = [\"directory\", \"hr\"] }",
        );
    let loaded = load(&text).unwrap();
    let rendered: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.severity == Severity::Warning)
    );
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn diagnostic_at_should_locate_a_controller_key_for_another_crate() {
    let text = format!("{VALID}controller = {{ triggers = [{{ cron = \"* * *\" }}] }}\n");
    let loaded = load(&text).unwrap();
    assert!(loaded.system.ma("directory").unwrap().controller.is_some());
    let path = parse_key_path("ma[1].controller.triggers[0].cron");
    let d = loaded.diagnostic_at(&path, "a cron expression needs 5 or 6 fields");
    let err = loaded.error(vec![d.with_help("e.g. `0 */15 * * * *`")]);
    insta::assert_snapshot!(err.to_string());
    assert_eq!(path[0], PathSegment::key("ma"));
}

#[test]
fn load_str_with_env_should_read_variables_only_from_the_given_lookup() {
    let text = VALID.replace("\"data/hr.csv\"", "\"${HOME}\"");
    let err = load_str_with_env(&text, Path::new("c.toml"), &registry(), ENV).unwrap_err();
    assert!(
        err.to_string()
            .contains("environment variable `HOME` is not set")
    );
}

#[test]
fn the_configuration_references_complete_example_should_load_without_warnings() {
    let readme = include_str!("../../../../docs/src/reference/configuration.md");
    let start = readme.find("## A complete example").unwrap();
    let block = &readme[start..];
    let block = &block[block.find("```toml\n").unwrap() + 8..];
    let example = &block[..block.find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("autosync.toml");
    fs::write(&file, example).unwrap();
    let loaded = match autosync_config::load(&file, &registry()) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let directory = loaded.system.ma("directory").unwrap();
    assert_eq!(directory.deprovisioning, DeprovisionAction::Delete);
    assert_eq!(
        loaded.system.ma("hr").unwrap().staging_thresholds.adds,
        autosync_model::Limit::Count(1000)
    );
    assert_eq!(
        directory.profile("delta-import-delta-sync"),
        Some(vec![StepType::DeltaImport, StepType::DeltaSync])
    );
}

#[test]
fn the_shipped_connectors_should_validate_settings_with_errors_at_their_keys() {
    let mut real = autosync_connector::Registry::new();
    autosync_connectors::register_all(&mut real);
    let good = load_str_with_env(VALID, Path::new("config.toml"), &real, ENV);
    assert!(good.is_ok(), "{}", good.unwrap_err());
    let text = VALID.replace(
        "path = \"data/hr.csv\" }",
        "path = \"data/hr.csv\", delimitr = \";\" }",
    );
    let err = load_str_with_env(&text, Path::new("config.toml"), &real, ENV).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(err.errors().count(), 1, "{err}");
    assert_eq!(d.key, "ma \"hr\" > connector > delimitr");
    assert_eq!(d.location.unwrap().line, 10);
    assert!(
        d.help.as_deref().unwrap_or("").contains("delimiter"),
        "{err}"
    );
}

#[test]
fn ordered_attributes_should_load_into_the_metaverse_type() {
    let text = VALID.replacen(
        "precedence = { email = [\"directory\", \"hr\"] }",
        "precedence = { email = [\"directory\", \"hr\"] }\nordered = [\"displayName\"]",
        1,
    );
    let loaded = load(&text).unwrap();
    assert_eq!(loaded.system.metaverse["person"].ordered, ["displayName"]);
    assert!(
        load(VALID).unwrap().system.metaverse["person"]
            .ordered
            .is_empty()
    );
}
