//! Home Assistant MQTT discovery: one HA device per Withings user, one
//! sensor per measure it has, and one for a weigh-in the scale could not
//! assign. The config fields follow HA's MQTT sensor schema: name,
//! unique_id, state_topic, unit_of_measurement, device_class, state_class,
//! icon, suggested_display_precision, availability_topic with its
//! payloads, device, origin; the unassigned weigh-in adds value_template
//! and json_attributes_topic/template.

use crate::record::meastype::{self, MeasType};
use crate::record::position;
use serde_json::{json, Value};

/// The key of the unassigned weigh-in's sensor and topic. No measure key
/// can take it: those are type names or `type_<code>`.
pub const UNASSIGNED: &str = "unassigned";

/// Where HA looks for this sensor's config:
/// `<discovery>/sensor/<node_id>/<object_id>/config`.
pub fn config_topic(discovery_prefix: &str, userid: &str, key: &str) -> String {
    format!("{discovery_prefix}/sensor/withings_{userid}/{key}/config")
}

pub fn state_topic(prefix: &str, userid: &str, key: &str) -> String {
    format!("{prefix}/{userid}/{key}")
}

pub fn status_topic(prefix: &str) -> String {
    format!("{prefix}/status")
}

/// The HA device of one Withings user: named after the person when
/// `--user-name` gives a name, else after the id. It is the relay's view
/// of a Withings account, not a Withings product, and says so; its
/// software is the relay.
pub fn device(userid: &str, name: Option<&str>) -> Value {
    let name = match name {
        Some(name) => name.to_string(),
        None => format!("Withings {userid}"),
    };
    json!({
        "identifiers": [format!("withings_relay_{userid}")],
        "name": name,
        "manufacturer": "Withings",
        "model": "Withings account via withings-relay",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// Who made the config, for HA's log.
pub fn origin() -> Value {
    json!({
        "name": "withings-relay",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// What every sensor of a user shares: id, availability, device, origin.
fn common(prefix: &str, device: &Value, userid: &str, key: &str, name: &str) -> Value {
    let mut config = json!({
        "name": name,
        "unique_id": format!("withings_relay_{userid}_{key}"),
        "state_topic": state_topic(prefix, userid, key),
        "availability_topic": status_topic(prefix),
        "payload_available": "online",
        "payload_not_available": "offline",
        "origin": origin(),
    });
    // Assigned, not put in json! above, which would serialize the Value
    // again through serde: more code in the router binary.
    config["device"] = device.clone();
    config
}

/// A measure as a sensor: the type code and position it came with, or
/// None for a sensor announced before the relay kept them (its key is
/// then its type's name).
pub struct Measure<'a> {
    pub key: &'a str,
    pub code: Option<i64>,
    pub position: Option<i64>,
    pub unit: Option<&'a str>,
}

/// The retained config that makes HA create a measure's sensor. Name,
/// device class, icon, precision and state class come from the type
/// table (`record/meastype.rs`).
pub fn sensor_config(prefix: &str, device: &Value, userid: &str, m: &Measure) -> Value {
    let known: Option<&MeasType> = match m.code {
        Some(code) => meastype::lookup(code),
        None => meastype::by_name(m.key),
    };
    let name = match (known, m.code) {
        (Some(t), _) => position::label(t.code, t.name, m.position),
        (None, Some(code)) => position::label(code, &meastype::name(code), m.position),
        (None, None) => position::words(m.key),
    };
    let mut config = common(prefix, device, userid, m.key, &name);
    if let Some(unit) = m.unit {
        config["unit_of_measurement"] = json!(unit);
    }
    let Some(t) = known else {
        // A code the table does not know: a number, but of what is
        // unknown, so no statistics.
        config["icon"] = json!(meastype::UNKNOWN_ICON);
        return config;
    };
    if let Some(class) = t.device_class {
        config["device_class"] = json!(class);
    }
    if let Some(icon) = t.icon {
        config["icon"] = json!(icon);
    }
    if let Some(decimals) = t.precision {
        config["suggested_display_precision"] = json!(decimals);
    }
    if t.quantity {
        config["state_class"] = json!("measurement");
    }
    config
}

/// The "Unassigned weigh-in" sensor: the weight of the newest group the
/// scale could not assign (attrib 1, facts sheet §2.1), with its time as
/// an attribute, so an automation can ask "was that you?". No state class:
/// guests' weights make no statistic, and this sensor is not the user's
/// graph.
pub fn unassigned_config(prefix: &str, device: &Value, userid: &str) -> Value {
    let mut config = common(prefix, device, userid, UNASSIGNED, "Unassigned weigh-in");
    let topic = state_topic(prefix, userid, UNASSIGNED);
    // An ambiguous group without a weight shows as unknown ("None" is
    // HA's MQTT payload for no state).
    config["value_template"] = json!(
        "{% set w = value_json.measures | selectattr('name', 'eq', 'weight') | list %}{{ w[0].value if w else 'None' }}"
    );
    config["json_attributes_topic"] = json!(topic);
    config["json_attributes_template"] = json!(
        "{{ {'time': value_json.time, 'date': value_json.date, 'grpid': value_json.grpid, 'model': value_json.model} | tojson }}"
    );
    config["unit_of_measurement"] = json!("kg");
    config["device_class"] = json!("weight");
    config["suggested_display_precision"] = json!(2);
    config["icon"] = json!("mdi:account-question");
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure<'a>(key: &'a str, code: i64, position: Option<i64>) -> Measure<'a> {
        Measure {
            key,
            code: Some(code),
            position,
            unit: meastype::unit(code),
        }
    }

    fn config(key: &str, code: i64) -> Value {
        sensor_config("w", &device("1", None), "1", &measure(key, code, None))
    }

    #[test]
    fn a_weight_sensor_has_every_field_ha_needs() {
        let dev = device("42", None);
        let c = sensor_config("withings", &dev, "42", &measure("weight", 1, None));
        assert_eq!(c["name"], "Weight");
        assert_eq!(c["unique_id"], "withings_relay_42_weight");
        assert_eq!(c["state_topic"], "withings/42/weight");
        assert_eq!(c["unit_of_measurement"], "kg");
        assert_eq!(c["device_class"], "weight");
        assert_eq!(c["state_class"], "measurement");
        assert_eq!(c["suggested_display_precision"], 2);
        assert_eq!(c["availability_topic"], "withings/status");
        assert_eq!(c["device"]["identifiers"][0], "withings_relay_42");
        assert_eq!(c["device"]["name"], "Withings 42");
        assert_eq!(c["device"]["manufacturer"], "Withings");
        assert_eq!(c["device"]["model"], "Withings account via withings-relay");
        assert_eq!(c["device"]["sw_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            config_topic("homeassistant", "42", "weight"),
            "homeassistant/sensor/withings_42/weight/config"
        );
    }

    #[test]
    fn the_device_takes_the_persons_name() {
        let c = sensor_config(
            "w",
            &device("42", Some("Alice")),
            "42",
            &measure("weight", 1, None),
        );
        assert_eq!(c["device"]["name"], "Alice");
        assert_eq!(
            c["device"]["identifiers"][0], "withings_relay_42",
            "the id stays the key"
        );
    }

    #[test]
    fn sensors_without_a_device_class_get_an_icon_and_a_precision() {
        let heart = config("heart_rate", 11);
        assert_eq!(heart.get("device_class"), None);
        assert_eq!(heart["icon"], "mdi:heart-pulse");
        assert_eq!(heart["suggested_display_precision"], 0);
        assert_eq!(heart["state_class"], "measurement");
        let fat = config("fat_ratio", 6);
        assert_eq!(
            fat.get("device_class"),
            None,
            "HA has no device class for a ratio"
        );
        assert_eq!(fat["icon"], "mdi:percent");
        assert_eq!(fat["suggested_display_precision"], 2);
        assert_eq!(
            config("body_temperature", 71)["device_class"],
            "temperature"
        );
        assert_eq!(
            config("body_temperature", 71)["suggested_display_precision"],
            1
        );
        assert_eq!(config("pulse_wave_velocity", 91)["device_class"], "speed");
        assert_eq!(config("spo2", 54)["name"], "SpO2");
        let visceral = config("visceral_fat", 170);
        assert_eq!(visceral["state_class"], "measurement", "visceral fat too");
        assert_eq!(visceral.get("unit_of_measurement"), None);
        let afib = config("afib_result", 130);
        assert_eq!(afib["name"], "AFib result");
        assert_eq!(
            afib.get("state_class"),
            None,
            "a class code is not a measurement"
        );
        assert_eq!(afib.get("unit_of_measurement"), None);
        assert_eq!(afib["icon"], "mdi:heart-flash");
    }

    #[test]
    fn segments_are_named_after_the_body_part() {
        let m = measure("muscle_mass_left_arm", 175, Some(3));
        let c = sensor_config("w", &device("1", None), "1", &m);
        assert_eq!(c["name"], "Muscle mass left arm");
        assert_eq!(c["state_topic"], "w/1/muscle_mass_left_arm");
        assert_eq!(c["device_class"], "weight");
    }

    #[test]
    fn unknown_and_remembered_sensors_still_get_a_config() {
        let c = config("type_999", 999);
        assert_eq!(c["name"], "Type 999");
        assert_eq!(c["icon"], meastype::UNKNOWN_ICON);
        assert_eq!(c.get("state_class"), None);
        // Known before the relay kept the type: found by its name.
        let old = Measure {
            key: "heart_rate",
            code: None,
            position: None,
            unit: Some("bpm"),
        };
        let c = sensor_config("w", &device("1", None), "1", &old);
        assert_eq!(c["name"], "Heart rate");
        assert_eq!(c["icon"], "mdi:heart-pulse");
        let older = Measure {
            key: "fat_mass_p7",
            code: None,
            position: None,
            unit: Some("kg"),
        };
        assert_eq!(
            sensor_config("w", &device("1", None), "1", &older)["name"],
            "Fat mass p7"
        );
    }

    #[test]
    fn the_unassigned_weigh_in_sensor() {
        let c = unassigned_config("withings", &device("42", Some("Alice")), "42");
        assert_eq!(c["name"], "Unassigned weigh-in");
        assert_eq!(c["unique_id"], "withings_relay_42_unassigned");
        assert_eq!(c["state_topic"], "withings/42/unassigned");
        assert_eq!(c["json_attributes_topic"], "withings/42/unassigned");
        assert_eq!(c["unit_of_measurement"], "kg");
        assert_eq!(c["device_class"], "weight");
        assert_eq!(c.get("state_class"), None, "guests make no statistics");
        assert_eq!(c["device"]["name"], "Alice");
        let template = c["value_template"].as_str().unwrap();
        assert!(template.contains("'weight'"), "{template}");
        let attributes = c["json_attributes_template"].as_str().unwrap();
        assert!(
            attributes.contains("'time': value_json.time"),
            "{attributes}"
        );
    }

    #[test]
    fn two_users_with_the_same_measure_never_share_an_id_or_topic() {
        let a = sensor_config(
            "w",
            &device("1", Some("Sam")),
            "1",
            &measure("weight", 1, None),
        );
        let b = sensor_config(
            "w",
            &device("2", Some("Sam")),
            "2",
            &measure("weight", 1, None),
        );
        for field in ["unique_id", "state_topic"] {
            assert_ne!(a[field], b[field], "{field}");
        }
        assert_ne!(a["device"]["identifiers"], b["device"]["identifiers"]);
        assert_ne!(
            config_topic("h", "1", "weight"),
            config_topic("h", "2", "weight")
        );
    }
}
