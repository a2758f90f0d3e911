//! `serve.json`: what the running `serve` was started with, so that
//! `withings-relay status`, another process, can judge what it reads
//! (a sync is stale only against the poll period actually in use).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(super) const FILE: &str = "serve.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeInfo {
    pub pid: u32,
    /// Unix seconds.
    pub started_at: i64,
    /// The `--poll` period in seconds; 0 when polling is off.
    pub poll_secs: u64,
    /// False in poll-only mode: nothing is subscribed.
    pub webhooks: bool,
    /// The applis each user is subscribed to (`--appli`).
    pub applis: Vec<u32>,
    /// The outputs, by their outbox names (`Sink::name`: "output" for
    /// JSON lines, "mqtt", "exec").
    pub outputs: Vec<String>,
}

impl ServeInfo {
    /// Reads the fields from parsed JSON; a missing or mistyped field is
    /// its default, as `#[serde(default)]` would make it. By hand because
    /// only `status` reads this file, and the derived `Deserialize` cost
    /// 9 KB of the mipsel binary (README, "Size"), where JSON is already
    /// parsed into a `Value` elsewhere. A field added above must be added
    /// here too (the test round-trips every field).
    pub fn from_json(v: &Value) -> ServeInfo {
        let list = |key: &str| v[key].as_array().map_or(&[][..], Vec::as_slice);
        ServeInfo {
            pid: v["pid"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            started_at: v["started_at"].as_i64().unwrap_or(0),
            poll_secs: v["poll_secs"].as_u64().unwrap_or(0),
            webhooks: v["webhooks"].as_bool().unwrap_or(false),
            applis: list("applis")
                .iter()
                .filter_map(|a| a.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect(),
            outputs: list("outputs")
                .iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_written_is_read_back() {
        let info = ServeInfo {
            pid: 7,
            started_at: 1_800_000_000,
            poll_secs: 600,
            webhooks: true,
            applis: vec![1, 4],
            outputs: vec!["output".into(), "mqtt".into()],
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(ServeInfo::from_json(&v), info);
        let derived: ServeInfo = serde_json::from_value(v).unwrap();
        assert_eq!(derived, info, "the same as the derived reader");
        let odd = serde_json::json!({"pid": -1, "poll_secs": "6h", "outputs": [1, "mqtt"]});
        let read = ServeInfo::from_json(&odd);
        assert_eq!((read.pid, read.poll_secs), (0, 0));
        assert_eq!(read.outputs, ["mqtt"]);
    }
}
