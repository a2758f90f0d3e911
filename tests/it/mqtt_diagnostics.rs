//! The Home Assistant diagnostic entities on a real mosquitto: each config
//! field by field, its retained state, updates when the state dir changes
//! (a sync moves "Last sync"; a refused refresh token flips "Needs
//! re-authorization" and leaves a notification queued), and `offline`
//! through the Last Will when the relay is killed.

use crate::fake_withings::FakeWithings;
use crate::mqtt_relay::password_file;
use crate::status::weigh_in_a_year_later;
use crate::support::mosquitto::{Mosquitto, PASSWORD, USER as MQTT_USER};
use crate::support::relay::{start_linked, wait_for, TestDir};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const USER: u64 = 7_070_001;

/// "topic payload" → payload, for the last line on `topic`.
fn last<'a>(lines: &'a [String], topic: &str) -> Option<&'a str> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(topic)?.strip_prefix(' '))
}

fn config(lines: &[String], topic: &str) -> Value {
    serde_json::from_str(last(lines, topic).unwrap_or_else(|| panic!("no {topic}: {lines:?}")))
        .unwrap()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of `unix`, by asking `date` (the relay has its
/// own formatter; the test checks it against another).
fn rfc3339(unix: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The availability and diagnostic fields every entity shares.
fn assert_diagnostic(c: &Value) {
    assert_eq!(c["entity_category"], "diagnostic", "{c}");
    assert_eq!(c["availability_topic"], "withings/status", "{c}");
    assert_eq!(c["payload_available"], "online");
    assert_eq!(c["payload_not_available"], "offline");
    let entity = c["default_entity_id"].as_str().unwrap();
    let unique_id = c["unique_id"].as_str().unwrap();
    assert!(
        entity == format!("sensor.{unique_id}") || entity == format!("binary_sensor.{unique_id}"),
        "{c}"
    );
}

#[test]
fn diagnostics_reach_home_assistant_change_with_the_state_and_go_offline() {
    // Tried: a linked user and a relay publishing to mosquitto; then a
    // good sync recorded in health/ (as the worker records it), then a
    // year later a refused refresh token (the real relay parks the user
    // and keeps the notification); then kill -9.
    let broker = Mosquitto::start();
    let watch = broker.subscriber("#");
    let fake = FakeWithings::start();
    let dir = TestDir::new("mqtt-diagnostics");
    let url = format!("mqtt://{MQTT_USER}@127.0.0.1:{}", broker.port());
    let pw = password_file(dir.path(), PASSWORD);
    let mut relay = start_linked(
        &fake,
        &dir,
        USER,
        &["--mqtt", &url, "--mqtt-password-file", &pw],
    );
    let user = USER.to_string();
    let sync_topic = format!("withings/{user}/diagnostics/last_sync");
    let reauth_topic = format!("withings/{user}/diagnostics/needs_reauth");
    watch.wait_for_line(&format!("{reauth_topic} OFF"));
    watch.wait_for_line("withings/relay/queued_notifications 0");
    watch.wait_for_line("withings/relay/outbox_backlog 0");
    let seen = watch.lines();

    // Per user, on the user's device (the one its measures use).
    let sync = config(
        &seen,
        &format!("homeassistant/sensor/withings_{user}/last_sync/config"),
    );
    assert_diagnostic(&sync);
    assert_eq!(sync["name"], "Last sync");
    assert_eq!(
        sync["unique_id"],
        format!("withings_relay_{user}_last_sync")
    );
    assert_eq!(sync["device_class"], "timestamp");
    assert_eq!(sync["state_topic"], sync_topic);
    assert_eq!(sync.get("state_class"), None, "a time is no measurement");
    assert_eq!(
        sync["device"]["identifiers"],
        json!([format!("withings_relay_{user}")])
    );
    assert_eq!(sync["device"]["name"], format!("Withings {user}"));
    let reauth = config(
        &seen,
        &format!("homeassistant/binary_sensor/withings_{user}/needs_reauth/config"),
    );
    assert_diagnostic(&reauth);
    assert_eq!(reauth["name"], "Needs re-authorization");
    assert_eq!(
        reauth["unique_id"],
        format!("withings_relay_{user}_needs_reauth")
    );
    assert_eq!(reauth["device_class"], "problem");
    assert_eq!(reauth["state_topic"], reauth_topic);
    assert_eq!(
        (&reauth["payload_on"], &reauth["payload_off"]),
        (&json!("ON"), &json!("OFF"))
    );
    assert_eq!(reauth["device"], sync["device"]);

    // Per relay, on a device of its own.
    let queued = config(
        &seen,
        "homeassistant/sensor/withings_relay/queued_notifications/config",
    );
    let backlog = config(
        &seen,
        "homeassistant/sensor/withings_relay/outbox_backlog/config",
    );
    for (c, key, name) in [
        (&queued, "queued_notifications", "Queued notifications"),
        (&backlog, "outbox_backlog", "Outbox backlog"),
    ] {
        assert_diagnostic(c);
        assert_eq!(c["name"], name);
        assert_eq!(c["unique_id"], format!("withings_relay_{key}"));
        assert_eq!(c["state_topic"], format!("withings/relay/{key}"));
        assert_eq!(c["state_class"], "measurement");
        assert_eq!(c["device"]["identifiers"], json!(["withings_relay"]));
        assert_eq!(c["device"]["name"], "Withings relay");
    }
    let ids: std::collections::BTreeSet<String> = [&sync, &reauth, &queued, &backlog]
        .iter()
        .map(|c| c["unique_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 4, "no two entities share an id");

    // A good sync, recorded as the worker records it, moves "Last sync".
    let synced = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let health = relay.state_dir.join(format!("health/{USER}.json"));
    let temp = health.with_file_name(".tmp-test");
    std::fs::write(&temp, json!({ "last_sync_ok_at": synced }).to_string()).unwrap();
    std::fs::rename(&temp, &health).unwrap();
    let at_least = rfc3339(synced);
    wait_for("the last sync time", || {
        last(&watch.lines(), &sync_topic)
            .filter(|v| *v != "None" && *v >= at_least.as_str())
            .map(str::to_string)
    });

    // A year later Withings refuses the refresh token.
    weigh_in_a_year_later(&fake, &relay, USER);
    watch.wait_for_line(&format!("{reauth_topic} ON"));
    watch.wait_for_line("withings/relay/queued_notifications 1");

    // Retained: a Home Assistant that subscribes now sees the same.
    let late = broker.sub("withings/+/diagnostics/+", 2, 5);
    assert!(late.contains(&format!("{reauth_topic} ON")), "{late:?}");
    let late = broker.sub("homeassistant/binary_sensor/#", 1, 5);
    assert_eq!(late.len(), 1, "configs are retained");

    relay.kill9();
    watch.wait_for_line("withings/status offline");
    assert_eq!(
        broker.sub("withings/status", 1, 5),
        ["withings/status offline"],
        "every diagnostic entity reads unavailable"
    );
}
