//! Home Assistant MQTT discovery: one HA device per Withings user, one
//! sensor per measure it has. The config fields follow HA's MQTT sensor
//! schema: name, unique_id, state_topic, unit_of_measurement, device_class,
//! state_class, availability_topic with its payloads, device, origin.

use serde_json::{json, Value};

/// HA sensor device classes whose units match what Withings sends. Types
/// without one (heart rate, fat ratio, blood pressure) still get a unit.
fn device_class(name: &str, unit: Option<&str>) -> Option<&'static str> {
    match unit? {
        "kg" => Some("weight"),
        "°C" => Some("temperature"),
        "m" if name == "height" => Some("distance"),
        "m/s" => Some("speed"),
        _ => None,
    }
}

/// `fat_ratio` → `Fat ratio`; `muscle_mass_segment_p12` keeps its suffix.
pub fn friendly_name(key: &str) -> String {
    let spaced = key.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

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

/// The HA device of one Withings user: its measures and its diagnostics
/// (`diagnostics.rs`) all belong to it.
pub fn user_device(userid: &str) -> Value {
    json!({
        "identifiers": [format!("withings_relay_{userid}")],
        "name": format!("Withings {userid}"),
        "manufacturer": "Withings",
        "model": "withings-relay",
    })
}

/// Who made the config, for HA's log.
pub fn origin() -> Value {
    json!({
        "name": "withings-relay",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// The retained config that makes HA create the sensor.
pub fn sensor_config(prefix: &str, userid: &str, key: &str, unit: Option<&str>) -> Value {
    let mut config = json!({
        "name": friendly_name(key),
        "unique_id": format!("withings_relay_{userid}_{key}"),
        "state_topic": state_topic(prefix, userid, key),
        "availability_topic": status_topic(prefix),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": user_device(userid),
        "origin": origin(),
    });
    if let Some(unit) = unit {
        // A numeric quantity: HA keeps long-term statistics for it.
        config["unit_of_measurement"] = json!(unit);
        config["state_class"] = json!("measurement");
    }
    if let Some(class) = device_class(key, unit) {
        config["device_class"] = json!(class);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_sensor_has_every_field_ha_needs() {
        let c = sensor_config("withings", "42", "weight", Some("kg"));
        assert_eq!(c["name"], "Weight");
        assert_eq!(c["unique_id"], "withings_relay_42_weight");
        assert_eq!(c["state_topic"], "withings/42/weight");
        assert_eq!(c["unit_of_measurement"], "kg");
        assert_eq!(c["device_class"], "weight");
        assert_eq!(c["state_class"], "measurement");
        assert_eq!(c["availability_topic"], "withings/status");
        assert_eq!(c["device"]["identifiers"][0], "withings_relay_42");
        assert_eq!(
            config_topic("homeassistant", "42", "weight"),
            "homeassistant/sensor/withings_42/weight/config"
        );
    }

    #[test]
    fn device_classes_only_where_the_unit_fits() {
        assert_eq!(
            sensor_config("w", "1", "heart_rate", Some("bpm")).get("device_class"),
            None
        );
        assert_eq!(
            sensor_config("w", "1", "fat_ratio", Some("%")).get("device_class"),
            None
        );
        assert_eq!(
            sensor_config("w", "1", "body_temperature", Some("°C"))["device_class"],
            "temperature"
        );
        assert_eq!(
            sensor_config("w", "1", "pulse_wave_velocity", Some("m/s"))["device_class"],
            "speed"
        );
        assert_eq!(
            sensor_config("w", "1", "muscle_mass", Some("kg"))["device_class"],
            "weight"
        );
        let afib = sensor_config("w", "1", "afib_result", None);
        assert_eq!(
            afib.get("state_class"),
            None,
            "a class code is not a measurement"
        );
        assert_eq!(afib.get("unit_of_measurement"), None);
    }

    #[test]
    fn names_read_like_words() {
        assert_eq!(friendly_name("fat_ratio"), "Fat ratio");
        assert_eq!(friendly_name("type_999"), "Type 999");
    }
}
