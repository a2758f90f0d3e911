//! Home Assistant diagnostics over MQTT: how the relay is doing, as
//! `withings-relay status` says it (both read the state dir through
//! [`status::look`], so they never disagree).
//!
//! Per user, on the user's device: "Last sync" (a timestamp) and "Needs
//! re-authorization" (a problem binary sensor, on also when Withings
//! unlinked the user: both need `authorize`). Per relay, on a device of its
//! own: "Queued notifications" and "Outbox backlog". Every config and
//! state is retained, and available through the relay's status topic, so
//! the Last Will marks them unavailable. The MQTT sink publishes them on
//! connect and, on its idle tick, whichever changed.

use super::hass;
use super::mqtt::{Message, Topics};
use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::mqtt::Client;
use crate::status::{self, assess::UserState, Report};
use crate::store::StateDir;
use crate::timefmt::rfc3339_utc;
use serde_json::{json, Value};
use std::path::PathBuf;

/// What HA reads as "no value" on an MQTT sensor.
const NONE: &[u8] = b"None";

/// The relay's own HA device, one per `--mqtt-prefix` (which two relays on
/// one broker must not share anyway: their status topics would collide).
fn relay_node(prefix: &str) -> String {
    let mut node: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    node.push_str("_relay");
    node
}

fn retained(topic: String, payload: Vec<u8>) -> Message {
    Message {
        topic,
        payload,
        retain: true,
    }
}

/// One entity: its discovery config (when discovery is on) and its state.
struct Entity<'a> {
    component: &'static str,
    node: &'a str,
    key: &'static str,
    name: &'static str,
    unique_id: String,
    state_topic: String,
    device: Value,
    /// Members of the config only this entity has.
    extra: &'a [(&'a str, &'a str)],
}

impl Entity<'_> {
    fn config(self, topics: &Topics, discovery: &str) -> Message {
        let mut config = json!({
            "name": self.name,
            "unique_id": self.unique_id,
            // Home Assistant 2025.10 replaced `object_id` by this, and
            // 2026.4 dropped `object_id`: the entity id, unique like the
            // unique_id, and apart from the measures' (`sensor.withings_<id>_…`).
            "default_entity_id": format!("{}.{}", self.component, self.unique_id),
            "state_topic": self.state_topic,
            "entity_category": "diagnostic",
            "availability_topic": hass::status_topic(&topics.prefix),
            "payload_available": "online",
            "payload_not_available": "offline",
            "origin": hass::origin(),
        });
        // Moved in, not through json!, which would serialize the Value.
        config["device"] = self.device;
        for (key, value) in self.extra {
            config[*key] = Value::from(*value);
        }
        let topic = format!(
            "{discovery}/{}/{}/{}/config",
            self.component, self.node, self.key
        );
        retained(topic, config.to_string().into_bytes())
    }
}

/// Pure: every diagnostic message for `report`, configs first.
pub fn plan(report: &Report, topics: &Topics) -> Vec<Message> {
    let prefix = &topics.prefix;
    let mut configs = Vec::new();
    let mut states = Vec::new();
    let mut add = |entity: Entity, state: Vec<u8>| {
        states.push(retained(entity.state_topic.clone(), state));
        if let Some(discovery) = &topics.discovery {
            configs.push(entity.config(topics, discovery));
        }
    };
    for u in &report.users {
        let id = &u.facts.userid;
        let node = format!("withings_{id}");
        let last_sync = u.facts.health.last_sync_ok_at;
        add(
            Entity {
                component: "sensor",
                node: &node,
                key: "last_sync",
                name: "Last sync",
                unique_id: format!("withings_relay_{id}_last_sync"),
                state_topic: format!("{prefix}/{id}/diagnostics/last_sync"),
                device: topics.device(id),
                extra: &[("device_class", "timestamp")],
            },
            last_sync.map_or(NONE.to_vec(), |at| rfc3339_utc(at).into_bytes()),
        );
        let parked = u.state != UserState::Linked;
        add(
            Entity {
                component: "binary_sensor",
                node: &node,
                key: "needs_reauth",
                name: "Needs re-authorization",
                unique_id: format!("withings_relay_{id}_needs_reauth"),
                state_topic: format!("{prefix}/{id}/diagnostics/needs_reauth"),
                device: topics.device(id),
                extra: &[
                    ("device_class", "problem"),
                    ("payload_on", "ON"),
                    ("payload_off", "OFF"),
                ],
            },
            if parked {
                b"ON".to_vec()
            } else {
                b"OFF".to_vec()
            },
        );
    }
    let node = relay_node(prefix);
    let device = json!({
        "identifiers": [node],
        "name": "Withings relay",
        "manufacturer": "withings-relay",
        "model": "withings-relay",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    // Records some output has yet to deliver: the largest backlog.
    let backlog = report.outputs.iter().map(|o| o.waiting).max().unwrap_or(0);
    for (key, name, value) in [
        (
            "queued_notifications",
            "Queued notifications",
            report.queued.count,
        ),
        ("outbox_backlog", "Outbox backlog", backlog),
    ] {
        add(
            Entity {
                component: "sensor",
                node: &node,
                key,
                name,
                unique_id: format!("{node}_{key}"),
                state_topic: format!("{prefix}/relay/{key}"),
                device: device.clone(),
                extra: &[("state_class", "measurement")],
            },
            value.to_string().into_bytes(),
        );
    }
    configs.extend(states);
    configs
}

/// Pure: the messages of `plan` that differ from what was `sent`.
fn changed(plan: Vec<Message>, sent: &[Message]) -> Vec<Message> {
    plan.into_iter().filter(|m| !sent.contains(m)).collect()
}

/// What this connection has published, to send only changes.
pub struct Diagnostics {
    state_dir: PathBuf,
    /// A plain list: a few messages per user, and no map type of its own
    /// in the binary.
    sent: Vec<Message>,
}

impl Diagnostics {
    pub fn new(state_dir: PathBuf) -> Diagnostics {
        Diagnostics {
            state_dir,
            sent: Vec::new(),
        }
    }

    /// A new connection: the broker may have lost everything retained.
    pub fn forget(&mut self) {
        self.sent.clear();
    }

    /// Publishes what changed since the last call. A state dir that
    /// cannot be read is logged, never an MQTT failure.
    pub fn publish(&mut self, topics: &Topics, client: &mut Client) -> Result<()> {
        let report = match StateDir::open_existing(&self.state_dir) {
            Ok(store) => status::look(&store, SystemClock.now()),
            Err(e) => {
                log::debug!("mqtt: no diagnostics: {e}");
                return Ok(());
            }
        };
        for m in changed(plan(&report, topics), &self.sent) {
            client.publish(&m.topic, &m.payload, m.retain)?;
            self.sent.retain(|s| s.topic != m.topic);
            self.sent.push(m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::assess::assess;
    use crate::status::facts::{Account, Facts, OutputFacts, UserFacts};
    use crate::store::Health;

    const NOW: i64 = 1_800_000_000;

    fn topics(discovery: bool) -> Topics {
        Topics {
            prefix: "withings".into(),
            discovery: discovery.then(|| "homeassistant".to_string()),
            user_names: Vec::new(),
        }
    }

    fn report(needs_reauth: bool, last_sync: Option<i64>) -> Report {
        let mut facts = Facts {
            users: vec![UserFacts {
                userid: "42".into(),
                account: Some(Account {
                    needs_reauth,
                    ..Account::default()
                }),
                health: Health {
                    last_sync_ok_at: last_sync,
                    ..Health::default()
                },
                cursor: None,
            }],
            outputs: vec![
                OutputFacts {
                    name: "jsonl".into(),
                    waiting: 1,
                    oldest_at: Some(NOW),
                },
                OutputFacts {
                    name: "exec".into(),
                    waiting: 4,
                    oldest_at: Some(NOW),
                },
            ],
            ..Facts::default()
        };
        facts.queue = vec![("42".into(), vec![NOW, NOW]), ("7".into(), vec![NOW])];
        assess(facts, NOW)
    }

    fn find<'a>(plan: &'a [Message], topic: &str) -> &'a Message {
        plan.iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("no {topic}"))
    }

    fn config(plan: &[Message], topic: &str) -> Value {
        serde_json::from_slice(&find(plan, topic).payload).unwrap()
    }

    #[test]
    fn each_entity_has_every_field_ha_needs() {
        let p = plan(&report(false, Some(NOW)), &topics(true));
        assert!(p.iter().all(|m| m.retain), "all retained");
        let sync = config(&p, "homeassistant/sensor/withings_42/last_sync/config");
        assert_eq!(sync["name"], "Last sync");
        assert_eq!(sync["unique_id"], "withings_relay_42_last_sync");
        assert_eq!(
            sync["default_entity_id"],
            "sensor.withings_relay_42_last_sync"
        );
        assert_eq!(sync["device_class"], "timestamp");
        assert_eq!(sync["entity_category"], "diagnostic");
        assert_eq!(sync["state_topic"], "withings/42/diagnostics/last_sync");
        assert_eq!(sync["availability_topic"], "withings/status");
        assert_eq!(
            sync["device"],
            topics(true).device("42"),
            "the user's device"
        );
        let reauth = config(
            &p,
            "homeassistant/binary_sensor/withings_42/needs_reauth/config",
        );
        assert_eq!(reauth["device_class"], "problem");
        assert_eq!(
            reauth["default_entity_id"],
            "binary_sensor.withings_relay_42_needs_reauth"
        );
        assert_eq!(reauth["entity_category"], "diagnostic");
        assert_eq!(
            (&reauth["payload_on"], &reauth["payload_off"]),
            (&json!("ON"), &json!("OFF"))
        );
        assert_eq!(
            reauth["state_topic"],
            "withings/42/diagnostics/needs_reauth"
        );
        let queued = config(
            &p,
            "homeassistant/sensor/withings_relay/queued_notifications/config",
        );
        assert_eq!(queued["unique_id"], "withings_relay_queued_notifications");
        assert_eq!(queued["state_class"], "measurement");
        assert_eq!(queued["entity_category"], "diagnostic");
        assert_eq!(queued["device"]["identifiers"][0], "withings_relay");
        let backlog = config(
            &p,
            "homeassistant/sensor/withings_relay/outbox_backlog/config",
        );
        assert_eq!(backlog["state_topic"], "withings/relay/outbox_backlog");
        assert_eq!(backlog["device"], queued["device"], "one relay device");
        let ids: std::collections::BTreeSet<String> = p
            .iter()
            .filter(|m| m.topic.ends_with("/config"))
            .map(|m| serde_json::from_slice::<Value>(&m.payload).unwrap()["unique_id"].to_string())
            .collect();
        assert_eq!(ids.len(), 4, "unique ids do not collide");
    }

    #[test]
    fn states_say_the_values() {
        let p = plan(&report(false, Some(NOW)), &topics(true));
        let state = |t: &str| String::from_utf8(find(&p, t).payload.clone()).unwrap();
        assert_eq!(state("withings/42/diagnostics/last_sync"), rfc3339_utc(NOW));
        assert_eq!(state("withings/42/diagnostics/needs_reauth"), "OFF");
        assert_eq!(state("withings/relay/queued_notifications"), "3");
        assert_eq!(state("withings/relay/outbox_backlog"), "4");
        let p = plan(&report(true, None), &topics(false));
        assert_eq!(p.len(), 4, "no configs without discovery");
        assert_eq!(
            find(&p, "withings/42/diagnostics/last_sync").payload,
            b"None"
        );
        assert_eq!(
            find(&p, "withings/42/diagnostics/needs_reauth").payload,
            b"ON"
        );
    }

    #[test]
    fn only_changes_are_sent_again() {
        let first = plan(&report(false, Some(NOW)), &topics(true));
        let sent = plan(&report(false, Some(NOW)), &topics(true));
        assert!(changed(first, &sent).is_empty());
        let moved = changed(plan(&report(true, Some(NOW + 60)), &topics(true)), &sent);
        let topics: Vec<&str> = moved.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "withings/42/diagnostics/last_sync",
                "withings/42/diagnostics/needs_reauth"
            ]
        );
    }

    #[test]
    fn the_relay_node_is_made_of_the_prefix() {
        assert_eq!(relay_node("withings"), "withings_relay");
        assert_eq!(relay_node("Home/Withings"), "home_withings_relay");
    }
}
