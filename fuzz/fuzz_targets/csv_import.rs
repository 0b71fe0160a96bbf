//! Any bytes as a CSV file through the CSV connector's import.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::import(
        &autosync_connectors::csv::CsvFactory,
        "f.csv",
        serde_json::json!({
            "path": "f.csv",
            "batch_size": 7,
            "multi_valued": ["groups"],
            "multi_value_separator": ";",
        }),
        data,
    );
});
