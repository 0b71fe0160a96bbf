//! Any text as a configuration file, validated against the real connector
//! factories: Ok, or errors that each name file, line and column.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut registry = autosync_connector::Registry::new();
    autosync_connectors::register_all(&mut registry);
    let env = |name: &str| (name == "SECRET").then(|| "hunter2".to_owned());
    let file = Path::new("config.toml");
    if let Err(e) = autosync_config::load_str_with_env(text, file, &registry, &env) {
        for d in e.diagnostics() {
            let loc = d.location.expect("a diagnostic without line and column");
            assert!(loc.line <= text.split('\n').count(), "{d}");
            assert!(d.to_string().starts_with("config.toml:"), "{d}");
        }
        let _ = e.render_fancy(false);
    }
});
