//! `serve.json`: what the running `serve` was started with, so that
//! `withings-relay status`, another process, can judge what it reads
//! (a sync is stale only against the poll period actually in use).

use serde::{Deserialize, Serialize};

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
