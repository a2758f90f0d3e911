//! The MQTT output: per measure the latest value as a plain retained
//! number, the whole group as JSON, `online`/`offline` status with the Last
//! Will, and Home Assistant discovery configs. A group counts as delivered
//! when every one of its publishes was acknowledged (QoS 1 PUBACK); after a
//! broken connection the group resumes at the first unacknowledged publish,
//! so nothing acknowledged is published twice by this process.

use super::diagnostics::Diagnostics;
use super::hass;
use super::Sink;
use crate::error::{Fix, Result};
use crate::mqtt::{Client, MqttSettings};
use crate::record::{is_unassigned, RecordView};
use crate::store::atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A sensor the relay has announced, and the newest measurement date
/// published on its retained topic (an edited old group must not replace a
/// newer value), with that value: a broker without persistence forgets
/// retained messages when it restarts, and Home Assistant would then show
/// `unknown` until the measure is taken again (months, for a height).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownSensor {
    pub unit: Option<String>,
    pub date: i64,
    /// The payload last published on the state topic; None in files
    /// written before it was kept, until the next measurement.
    #[serde(default)]
    pub value: Option<String>,
    /// The measure type and position the sensor was made for: its name,
    /// icon and precision come from them. None in files written before
    /// the relay kept them (the key is then the type's name), and for the
    /// unassigned weigh-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

/// userid → measure key → sensor.
pub type Known = BTreeMap<String, BTreeMap<String, KnownSensor>>;

#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

#[derive(Debug)]
pub struct Topics {
    pub prefix: String,
    /// None when HA discovery is off.
    pub discovery: Option<String>,
    /// `--user-name ID=NAME`: the HA device's name for a user id.
    pub user_names: Vec<(String, String)>,
}

impl Topics {
    /// The HA device of `userid`, named as `--user-name` says: its
    /// measures and its diagnostics (`diagnostics.rs`) share it.
    pub fn device(&self, userid: &str) -> serde_json::Value {
        let name = self.user_names.iter().find(|(id, _)| id == userid);
        hass::device(userid, name.map(|(_, name)| name.as_str()))
    }

    fn config(&self, discovery: &str, userid: &str, key: &str, sensor: &KnownSensor) -> Message {
        let device = self.device(userid);
        let config = if key == hass::UNASSIGNED {
            hass::unassigned_config(&self.prefix, &device, userid)
        } else {
            let measure = hass::Measure {
                key,
                code: sensor.code,
                position: sensor.position,
                unit: sensor.unit.as_deref(),
            };
            hass::sensor_config(&self.prefix, &device, userid, &measure)
        };
        Message {
            topic: hass::config_topic(discovery, userid, key),
            payload: config.to_string().into_bytes(),
            retain: true,
        }
    }

    /// An ambiguous group (attrib 1, facts sheet §2.1: perhaps a guest on
    /// the scale) never moves the user's latest values or reaches the
    /// measurement topic, where automations take it for the user's: the
    /// whole group goes, retained, to `<prefix>/<userid>/unassigned`,
    /// behind its own "Unassigned weigh-in" sensor. Like a latest value,
    /// that topic only moves forward.
    fn plan_unassigned(
        &self,
        record: &RecordView,
        line: &str,
        sensors: &mut BTreeMap<String, KnownSensor>,
    ) -> Vec<Message> {
        let mut plan = Vec::new();
        let fresh = !sensors.contains_key(hass::UNASSIGNED);
        let sensor = sensors
            .entry(hass::UNASSIGNED.to_string())
            .or_insert_with(|| KnownSensor {
                unit: Some("kg".into()),
                date: i64::MIN,
                value: None,
                code: None,
                position: None,
            });
        if let (true, Some(discovery)) = (fresh, &self.discovery) {
            plan.push(self.config(discovery, &record.userid, hass::UNASSIGNED, sensor));
        }
        if record.date >= sensor.date {
            sensor.date = record.date;
            // Kept like a measure's value, and so sent again, retained, on
            // every connect: the whole group.
            sensor.value = Some(line.to_string());
            plan.push(Message {
                topic: hass::state_topic(&self.prefix, &record.userid, hass::UNASSIGNED),
                payload: line.as_bytes().to_vec(),
                retain: true,
            });
        }
        plan
    }

    /// Pure: what one record publishes, in order, and the sensors it makes
    /// known: configs for sensors HA has not seen, latest values, the group.
    pub fn plan(&self, line: &str, known: &Known) -> Result<(Vec<Message>, Known)> {
        let record = RecordView::parse(line)?;
        let mut after = known.clone();
        let sensors = after.entry(record.userid.clone()).or_default();
        if is_unassigned(record.attrib) {
            let plan = self.plan_unassigned(&record, line, sensors);
            return Ok((plan, after));
        }
        let mut configs = Vec::new();
        let mut values = Vec::new();
        for (key, m) in record.keyed() {
            let fresh = !sensors.contains_key(&key);
            let sensor = sensors.entry(key.clone()).or_insert_with(|| KnownSensor {
                unit: m.unit.clone(),
                date: i64::MIN,
                value: None,
                code: Some(m.type_),
                position: m.position,
            });
            if fresh {
                if let Some(discovery) = &self.discovery {
                    configs.push(self.config(discovery, &record.userid, &key, sensor));
                }
            }
            if record.date >= sensor.date {
                sensor.date = record.date;
                sensor.value = Some(m.number().to_string());
                values.push(self.value(&record.userid, &key, m.number()));
            }
        }
        let mut plan = configs;
        plan.extend(values);
        plan.push(Message {
            topic: format!("{}/{}/measurement", self.prefix, record.userid),
            payload: line.as_bytes().to_vec(),
            retain: false,
        });
        Ok((plan, after))
    }

    fn value(&self, userid: &str, key: &str, number: &str) -> Message {
        Message {
            topic: hass::state_topic(&self.prefix, userid, key),
            payload: number.as_bytes().to_vec(),
            retain: true,
        }
    }

    /// What a fresh connection publishes first: `online`, every known
    /// sensor's config, then every known sensor's latest value, all
    /// retained: a broker without persistence forgot them. Each value is
    /// the newest date's (see [`KnownSensor`]), so republishing it never
    /// puts an older value over a newer one.
    pub fn on_connect(&self, known: &Known) -> Vec<Message> {
        let mut out = vec![Message {
            topic: hass::status_topic(&self.prefix),
            payload: b"online".to_vec(),
            retain: true,
        }];
        if let Some(discovery) = &self.discovery {
            for (userid, sensors) in known {
                for (key, s) in sensors {
                    out.push(self.config(discovery, userid, key, s));
                }
            }
        }
        for (userid, sensors) in known {
            for (key, s) in sensors {
                if let Some(v) = &s.value {
                    out.push(self.value(userid, key, v));
                }
            }
        }
        out
    }
}

pub struct MqttSink {
    settings: MqttSettings,
    topics: Topics,
    known_path: PathBuf,
    known: Known,
    client: Option<Client>,
    /// The record being delivered and how many of its publishes were
    /// acknowledged before the connection broke.
    in_flight: Option<(String, usize)>,
    /// The Home Assistant diagnostics, when turned on.
    diagnostics: Option<Diagnostics>,
}

impl MqttSink {
    pub fn new(settings: MqttSettings, topics: Topics, known_path: PathBuf) -> Result<MqttSink> {
        let known = atomic::read_json(&known_path, Fix::MqttSensors)?.unwrap_or_default();
        Ok(MqttSink {
            settings,
            topics,
            known_path,
            known,
            client: None,
            in_flight: None,
            diagnostics: None,
        })
    }

    /// What a new connection announces: the known sensors, with those of a
    /// group whose delivery broke off. The publishes of it the broker had
    /// acknowledged (configs, newer values) are not sent again, and a
    /// broker that restarted meanwhile without persistence lost them.
    fn announced(&self) -> Known {
        match &self.in_flight {
            Some((line, _)) => self
                .topics
                .plan(line, &self.known)
                .map_or_else(|_| self.known.clone(), |(_, after)| after),
            None => self.known.clone(),
        }
    }

    /// Also publishes the diagnostics read from the state dir at `root`.
    pub fn with_diagnostics(mut self, root: &std::path::Path) -> MqttSink {
        self.diagnostics = Some(Diagnostics::new(root.to_path_buf()));
        self
    }

    fn connected(&mut self) -> Result<&mut Client> {
        if self.client.is_none() {
            let mut client = Client::connect(&self.settings)?;
            for m in self.topics.on_connect(&self.announced()) {
                client.publish(&m.topic, &m.payload, m.retain)?;
            }
            if let Some(d) = &mut self.diagnostics {
                d.forget();
                d.publish(&self.topics, &mut client)?;
            }
            log::info!(
                "mqtt: connected to {}:{}",
                self.settings.host,
                self.settings.port
            );
            self.client = Some(client);
        }
        // Set just above.
        Ok(self.client.as_mut().expect("connected"))
    }
}

impl Sink for MqttSink {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn deliver(&mut self, line: &str) -> Result<()> {
        let (plan, after) = self.topics.plan(line, &self.known)?;
        let skip = match &self.in_flight {
            Some((l, acked)) if l == line => *acked,
            _ => 0,
        };
        self.in_flight = Some((line.to_string(), skip));
        let client = match self.connected() {
            Ok(c) => c,
            Err(e) => {
                self.client = None;
                return Err(e);
            }
        };
        for (i, m) in plan.iter().enumerate().skip(skip) {
            if let Err(e) = client.publish(&m.topic, &m.payload, m.retain) {
                self.client = None;
                self.in_flight = Some((line.to_string(), i));
                return Err(e);
            }
        }
        self.in_flight = None;
        if after != self.known {
            atomic::write_json(&self.known_path, &after)?;
            self.known = after;
        }
        Ok(())
    }

    /// Also how often the diagnostics look at the state dir for changed
    /// values: a few small files in the page cache, cheap even on a router.
    fn idle_interval(&self) -> Option<Duration> {
        Some(self.settings.probe_interval())
    }

    fn idle(&mut self) -> Result<()> {
        let result = match &mut self.client {
            Some(client) => client
                .keep_alive()
                .and_then(|()| match &mut self.diagnostics {
                    Some(d) => d.publish(&self.topics, client),
                    None => Ok(()),
                }),
            None => self.connected().map(|_| ()),
        };
        if result.is_err() {
            self.client = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(date: i64, weight: &str) -> String {
        format!(
            r#"{{"userid":"42","grpid":1,"date":{date},"time":"t","modified":1,"attrib":0,"category":1,"deviceid":null,"model":null,"measures":[{{"type":1,"name":"weight","value":{weight},"unit":"kg"}},{{"type":11,"name":"heart_rate","value":61,"unit":"bpm"}}]}}"#
        )
    }

    fn topics(discovery: bool) -> Topics {
        Topics {
            prefix: "withings".into(),
            discovery: discovery.then(|| "homeassistant".to_string()),
            user_names: vec![("42".into(), "Alice".into())],
        }
    }

    fn shown(plan: &[Message]) -> Vec<String> {
        plan.iter()
            .map(|m| format!("{}{}", m.topic, if m.retain { " (retained)" } else { "" }))
            .collect()
    }

    #[test]
    fn a_first_group_announces_its_sensors_then_publishes_values_then_the_group() {
        let (plan, known) = topics(true)
            .plan(&line(100, "72.5"), &Known::new())
            .unwrap();
        assert_eq!(
            shown(&plan),
            [
                "homeassistant/sensor/withings_42/weight/config (retained)",
                "homeassistant/sensor/withings_42/heart_rate/config (retained)",
                "withings/42/weight (retained)",
                "withings/42/heart_rate (retained)",
                "withings/42/measurement",
            ]
        );
        assert_eq!(plan[2].payload, b"72.5");
        assert_eq!(
            known["42"]["weight"],
            KnownSensor {
                unit: Some("kg".into()),
                date: 100,
                value: Some("72.5".into()),
                code: Some(1),
                position: None,
            }
        );
    }

    #[test]
    fn known_sensors_are_not_announced_again_and_old_groups_keep_newer_values() {
        let (_, known) = topics(true)
            .plan(&line(100, "72.5"), &Known::new())
            .unwrap();
        let (plan, _) = topics(true).plan(&line(200, "72.4"), &known).unwrap();
        assert_eq!(
            shown(&plan),
            [
                "withings/42/weight (retained)",
                "withings/42/heart_rate (retained)",
                "withings/42/measurement"
            ]
        );
        let (plan, _) = topics(true).plan(&line(50, "80"), &known).unwrap();
        assert_eq!(
            shown(&plan),
            ["withings/42/measurement"],
            "an edit of an older group"
        );
    }

    #[test]
    fn a_connection_republishes_every_latest_value_after_the_configs() {
        let (_, known) = topics(true)
            .plan(&line(200, "72.4"), &Known::new())
            .unwrap();
        let (_, known) = topics(true).plan(&line(100, "80"), &known).unwrap();
        let connect = topics(true).on_connect(&known);
        assert_eq!(
            shown(&connect),
            [
                "withings/status (retained)",
                "homeassistant/sensor/withings_42/heart_rate/config (retained)",
                "homeassistant/sensor/withings_42/weight/config (retained)",
                "withings/42/heart_rate (retained)",
                "withings/42/weight (retained)",
            ]
        );
        assert_eq!(
            connect[4].payload, b"72.4",
            "the newest date's, not the last seen"
        );
        assert_eq!(connect[3].payload, b"61");
    }

    #[test]
    fn a_sensors_file_from_before_values_were_kept_still_loads() {
        let dir = crate::store::testdir::TestDir::new("mqtt-known-old");
        let path = dir.path().join("mqtt-sensors.json");
        std::fs::write(&path, r#"{"42":{"weight":{"unit":"kg","date":100}}}"#).unwrap();
        let sink = MqttSink::new(
            crate::mqtt::parse_url("mqtt://h").unwrap(),
            topics(true),
            path,
        )
        .unwrap();
        assert_eq!(
            sink.known["42"]["weight"],
            KnownSensor {
                unit: Some("kg".into()),
                date: 100,
                value: None,
                code: None,
                position: None,
            }
        );
        assert_eq!(
            shown(&topics(true).on_connect(&sink.known)),
            [
                "withings/status (retained)",
                "homeassistant/sensor/withings_42/weight/config (retained)",
            ],
            "no value to republish until the next measurement"
        );
        let (_, after) = topics(true).plan(&line(100, "72.5"), &sink.known).unwrap();
        assert_eq!(after["42"]["weight"].value.as_deref(), Some("72.5"));
    }

    #[test]
    fn without_discovery_no_configs_and_connect_sends_status_and_values() {
        let (plan, known) = topics(false)
            .plan(&line(100, "72.5"), &Known::new())
            .unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(
            shown(&topics(false).on_connect(&known)),
            [
                "withings/status (retained)",
                "withings/42/heart_rate (retained)",
                "withings/42/weight (retained)"
            ]
        );
        assert_eq!(
            topics(true).on_connect(&known).len(),
            5,
            "status, two configs and two values"
        );
    }

    fn group(attrib: i64, date: i64, measures: &str) -> String {
        format!(
            r#"{{"userid":"42","grpid":7,"date":{date},"time":"t","modified":1,"attrib":{attrib},"category":1,"deviceid":null,"model":null,"measures":[{measures}]}}"#
        )
    }

    #[test]
    fn a_guests_weigh_in_goes_to_its_own_topic_and_never_to_the_users() {
        let (_, known) = topics(true)
            .plan(&line(100, "72.5"), &Known::new())
            .unwrap();
        let guest = group(
            1,
            200,
            r#"{"type":1,"name":"weight","value":95,"unit":"kg"}"#,
        );
        let (plan, after) = topics(true).plan(&guest, &known).unwrap();
        assert_eq!(
            shown(&plan),
            [
                "homeassistant/sensor/withings_42/unassigned/config (retained)",
                "withings/42/unassigned (retained)",
            ]
        );
        assert_eq!(plan[1].payload, guest.as_bytes(), "the whole group");
        let config: serde_json::Value = serde_json::from_slice(&plan[0].payload).unwrap();
        assert_eq!(config["name"], "Unassigned weigh-in");
        assert_eq!(config["device"]["name"], "Alice");
        assert_eq!(
            after["42"]["weight"], known["42"]["weight"],
            "the owner's weight stays"
        );
        // Announced once; an older ambiguous group leaves the newer one.
        let (plan, _) = topics(true).plan(&guest, &after).unwrap();
        assert_eq!(shown(&plan), ["withings/42/unassigned (retained)"]);
        let older = group(
            1,
            150,
            r#"{"type":1,"name":"weight","value":80,"unit":"kg"}"#,
        );
        assert!(topics(true).plan(&older, &after).unwrap().0.is_empty());
        // And it is announced again on every connect, as the unassigned one.
        let connect = topics(true).on_connect(&after);
        let unassigned = connect
            .iter()
            .find(|m| m.topic.ends_with("/unassigned/config"))
            .unwrap();
        assert_eq!(unassigned.payload, plan_config(&guest));
    }

    fn plan_config(guest: &str) -> Vec<u8> {
        topics(true)
            .plan(guest, &Known::new())
            .unwrap()
            .0
            .remove(0)
            .payload
    }

    #[test]
    fn other_attribs_are_the_users_own() {
        for attrib in [0, 2, 4, 5, 7, 8, 15, 17, -1] {
            let g = group(
                attrib,
                100,
                r#"{"type":1,"name":"weight","value":70,"unit":"kg"}"#,
            );
            let (plan, _) = topics(false).plan(&g, &Known::new()).unwrap();
            assert_eq!(
                shown(&plan),
                ["withings/42/weight (retained)", "withings/42/measurement"],
                "attrib {attrib}"
            );
        }
    }

    #[test]
    fn a_body_scan_lands_on_the_body_plus_sensors_and_segments_get_their_own() {
        let body_plus = group(
            0,
            100,
            r#"{"type":8,"name":"fat_mass","value":17.8,"unit":"kg"}"#,
        );
        let (_, known) = topics(true).plan(&body_plus, &Known::new()).unwrap();
        let body_scan = group(
            0,
            200,
            concat!(
                r#"{"type":8,"name":"fat_mass","value":19.09,"unit":"kg","position":7},"#,
                r#"{"type":8,"name":"fat_mass","value":19.09,"unit":"kg","position":7},"#,
                r#"{"type":175,"name":"muscle_mass_segment","value":4.77,"unit":"kg","position":3}"#
            ),
        );
        let (plan, after) = topics(true).plan(&body_scan, &known).unwrap();
        assert_eq!(
            shown(&plan),
            [
                "homeassistant/sensor/withings_42/muscle_mass_left_arm/config (retained)",
                "withings/42/fat_mass (retained)",
                "withings/42/muscle_mass_left_arm (retained)",
                "withings/42/measurement",
            ],
            "no second fat mass sensor, one value per key"
        );
        assert_eq!(plan[1].payload, b"19.09");
        let config: serde_json::Value = serde_json::from_slice(&plan[0].payload).unwrap();
        assert_eq!(config["name"], "Muscle mass left arm");
        assert_eq!(after["42"]["muscle_mass_left_arm"].position, Some(3));
    }
}
