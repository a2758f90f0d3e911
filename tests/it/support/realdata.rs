//! Real getmeas captures of other projects (tests/fixtures/SOURCES.md),
//! read from the repository, and moved in time for a test.

use serde_json::Value;

/// A file under `tests/fixtures/withings-realdata/`, as JSON.
pub fn fixture(path: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/withings-realdata/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Moves a captured group by `by` seconds, as if just taken: `date`,
/// `created` and `modified` shift together, values stay.
pub fn shifted(mut group: Value, by: i64) -> Value {
    for key in ["date", "created", "modified"] {
        if let Some(t) = group[key].as_i64() {
            group[key] = (t + by).into();
        }
    }
    group
}
