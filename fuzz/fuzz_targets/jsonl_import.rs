//! Any bytes as a JSON Lines file through the JSONL connector's import.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::import(
        &autosync_connectors::jsonl::JsonlFactory,
        "f.jsonl",
        serde_json::json!({"path": "f.jsonl", "batch_size": 7}),
        data,
    );
});
