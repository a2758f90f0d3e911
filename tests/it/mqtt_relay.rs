//! The relay publishing to a real mosquitto, as Home Assistant sees it:
//! retained values, discovery configs, the group as JSON, online/offline
//! status through the Last Will, and a broker that dies mid-stream.

use crate::fake_withings::{FakeWithings, Group, Measure};
use crate::support::mosquitto::{Mosquitto, PASSWORD, USER as MQTT_USER};
use crate::support::relay::{notification_form, start_linked, wait_for, Relay, TestDir};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const USER: u64 = 2_020_001;

pub fn password_file(dir: &Path, password: &str) -> String {
    let path = dir.join("mqtt-password");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    path.display().to_string()
}

fn weigh_in(fake: &FakeWithings, grpid: i64, grams: i64) {
    let t = fake.now() as i64;
    let mut g = Group::weight(grpid, t - 5, t - 5, grams, -3);
    g.measures.push(Measure {
        value: 2315,
        unit: -2,
        type_: 6,
    });
    fake.add_group(USER, g);
}

/// "topic payload" → payload, for the first line on `topic`.
fn payload<'a>(lines: &'a [String], topic: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(topic)?.strip_prefix(' '))
}

fn relay_with_mqtt(fake: &FakeWithings, dir: &TestDir, url: String, extra: &[&str]) -> Relay {
    // The harness adds --output, so JSON lines flow beside MQTT.
    let pw = password_file(dir.path(), PASSWORD);
    let mut args = vec!["--mqtt", &url, "--mqtt-password-file", &pw];
    args.extend_from_slice(extra);
    start_linked(fake, dir, USER, &args)
}

/// A relay publishing to `broker`'s plain port that reconnects after
/// 100, 200, 400 ms … rather than 2, 4, 8 s.
fn quick_reconnecting(fake: &FakeWithings, dir: &TestDir, broker: &Mosquitto) -> Relay {
    let url = format!("mqtt://{MQTT_USER}@127.0.0.1:{}", broker.port());
    relay_with_mqtt(fake, dir, url, &["--retry-first", "100ms"])
}

/// How many measurement groups of USER the broker received, by its log.
fn published(broker: &Mosquitto) -> usize {
    let topic = format!("'withings/{USER}/measurement'");
    broker
        .log()
        .lines()
        .filter(|l| l.contains("Received PUBLISH from withings-relay") && l.contains(&topic))
        .count()
}

/// Weighs in (70.1 kg, 23.15 % fat), notifies, and waits for the group on
/// the broker.
fn first_group_published(fake: &FakeWithings, relay: &Relay, broker: &Mosquitto) {
    weigh_in(fake, 1, 70_100);
    relay.notify(&notification_form(fake, USER));
    wait_for("the first group on the broker", || {
        (published(broker) == 1).then_some(())
    });
}

#[test]
fn a_weigh_in_reaches_home_assistant_over_mqtts() {
    let broker = Mosquitto::start();
    let watch = broker.subscriber("#");
    let fake = FakeWithings::start();
    let dir = TestDir::new("mqtt-ha");
    let ca = broker.ca_file().display().to_string();
    let url = format!("mqtts://{MQTT_USER}@localhost:{}", broker.tls_port());
    let relay = relay_with_mqtt(&fake, &dir, url, &["--mqtt-ca", &ca]);
    watch.wait_for_line("withings/status online");

    weigh_in(&fake, 11, 72_500);
    assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    let line = relay.wait_lines(1).remove(0);
    let user = USER.to_string();
    watch.wait_for_line(&format!("withings/{user}/measurement {line}"));
    let seen = watch.lines();

    // Latest values as plain numbers.
    assert_eq!(
        payload(&seen, &format!("withings/{user}/weight")),
        Some("72.5")
    );
    assert_eq!(
        payload(&seen, &format!("withings/{user}/fat_ratio")),
        Some("23.15")
    );

    // Discovery: one device per user, one sensor per measure type.
    let config: Value = serde_json::from_str(
        payload(
            &seen,
            &format!("homeassistant/sensor/withings_{user}/weight/config"),
        )
        .expect("weight config"),
    )
    .unwrap();
    assert_eq!(config["name"], "Weight");
    assert_eq!(config["unique_id"], format!("withings_relay_{user}_weight"));
    assert_eq!(config["state_topic"], format!("withings/{user}/weight"));
    assert_eq!(config["unit_of_measurement"], "kg");
    assert_eq!(config["device_class"], "weight");
    assert_eq!(config["state_class"], "measurement");
    assert_eq!(config["availability_topic"], "withings/status");
    assert_eq!(config["payload_available"], "online");
    assert_eq!(config["payload_not_available"], "offline");
    assert_eq!(
        config["device"]["identifiers"][0],
        format!("withings_relay_{user}")
    );
    assert_eq!(config["device"]["manufacturer"], "Withings");
    let fat: Value = serde_json::from_str(
        payload(
            &seen,
            &format!("homeassistant/sensor/withings_{user}/fat_ratio/config"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(fat["unit_of_measurement"], "%");
    assert!(
        fat.get("device_class").is_none(),
        "HA has no device class for a ratio"
    );
    assert_eq!(fat["device"], config["device"], "the same HA device");

    // A subscriber that comes later (HA restarting) still sees the state.
    let late = broker.sub(&format!("withings/{user}/+"), 2, 5);
    assert!(
        late.contains(&format!("withings/{user}/weight 72.5")),
        "{late:?}"
    );
    let late_config = broker.sub(
        &format!("homeassistant/sensor/withings_{user}/weight/config"),
        1,
        5,
    );
    assert_eq!(late_config.len(), 1, "discovery configs are retained");
    let late_status = broker.sub("withings/status", 1, 5);
    assert_eq!(late_status, ["withings/status online"]);
}

#[test]
fn status_goes_offline_through_the_last_will_when_the_relay_is_killed() {
    let broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("mqtt-will");
    let url = format!("mqtt://{MQTT_USER}@127.0.0.1:{}", broker.port());
    let mut relay = relay_with_mqtt(&fake, &dir, url, &[]);
    let watch = broker.subscriber("withings/status");
    watch.wait_for_line("withings/status online");
    relay.kill9();
    watch.wait_for_line("withings/status offline");
    assert_eq!(
        broker.sub("withings/status", 1, 5),
        ["withings/status offline"],
        "retained"
    );
}

#[test]
fn a_broker_killed_mid_stream_loses_nothing_and_duplicates_nothing() {
    let mut broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("mqtt-restart");
    let relay = quick_reconnecting(&fake, &dir, &broker);
    let user = USER.to_string();

    first_group_published(&fake, &relay, &broker);
    broker.wait_persisted(b"70.1");

    // The broker dies; two more weigh-ins arrive meanwhile.
    broker.kill();
    fake.advance_clock(30);
    weigh_in(&fake, 2, 70_200);
    relay.notify(&notification_form(&fake, USER));
    fake.advance_clock(30);
    weigh_in(&fake, 3, 70_300);
    relay.notify(&notification_form(&fake, USER));
    relay.wait_lines(3); // JSON lines do not wait for MQTT
    relay.wait_log("mqtt is down");

    broker.restart();
    wait_for("the backlog on the broker", || {
        (published(&broker) >= 3).then_some(())
    });
    wait_for("an empty outbox", || {
        (relay.outbox_records() == 0).then_some(())
    });
    assert_eq!(published(&broker), 3, "each group published once");
    assert_eq!(
        broker.sub(&format!("withings/{user}/weight"), 1, 5),
        [format!("withings/{user}/weight 70.3")]
    );
}

#[test]
fn a_refused_login_is_reported_and_the_other_outputs_keep_going() {
    let broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("mqtt-refused");
    let pw = password_file(dir.path(), "not-the-password-7731");
    let url = format!("mqtt://{MQTT_USER}@127.0.0.1:{}", broker.port());
    let relay = start_linked(
        &fake,
        &dir,
        USER,
        &["--mqtt", &url, "--mqtt-password-file", &pw],
    );
    weigh_in(&fake, 1, 70_000);
    relay.notify(&notification_form(&fake, USER));
    relay.wait_lines(1);
    relay.wait_log("--mqtt-password-file");
    assert!(
        !relay.log_text().contains("not-the-password-7731"),
        "the password stays out of the log"
    );
    assert_eq!(relay.outbox_records(), 1, "the group waits for the broker");
}

/// Every retained message on the broker, sorted: what Home Assistant
/// reads when it starts.
/// Every retained message but the diagnostics (tested in
/// mqtt_diagnostics.rs), whose values move on their own.
fn retained(broker: &Mosquitto) -> Vec<String> {
    let mut all: Vec<String> = broker
        .sub("#", 100, 2)
        .into_iter()
        .filter(|l| {
            !(l.contains("/diagnostics/")
                || l.starts_with("withings/relay/")
                || l.contains(r#""entity_category":"diagnostic""#))
        })
        .collect();
    all.sort();
    all
}

/// How often the relay has logged that the broker is down.
fn downs(relay: &Relay) -> usize {
    relay.log_text().matches("mqtt is down").count()
}

/// Waits for the relay to log one more "mqtt is down" than `before`, and
/// checks it came within 25 s of `since`: the issue asks for about 15 s
/// with the default settings (see PROBE_EVERY), and a functional deadline,
/// not a benchmark, is all a loaded CI machine allows.
fn noticed_within_25s(relay: &Relay, before: usize, since: Instant) {
    let deadline = since + Duration::from_secs(25);
    while downs(relay) <= before {
        assert!(
            Instant::now() < deadline,
            "the relay did not notice the broker was gone within 25 s: {}",
            relay.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A figure for the notes (`-- --nocapture`); the bound above is the test.
    eprintln!(
        "figure: the broker's loss noticed after {:?}",
        since.elapsed()
    );
}

/// Tried: a group is published; mosquitto is stopped and started again
/// without its database, as a broker without persistence restarts, so
/// every retained message is gone; nothing else happens. Checked: the
/// relay notices the closed connection by itself (within the deadline),
/// reconnects, and a fresh subscriber then reads every retained message
/// exactly as before (status, discovery configs and each sensor's value);
/// the group itself is not published a second time.
#[test]
fn a_broker_restarted_without_persistence_gets_every_value_back() {
    let mut broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("mqtt-forget");
    let relay = quick_reconnecting(&fake, &dir, &broker);
    let user = USER.to_string();
    first_group_published(&fake, &relay, &broker);
    let before = wait_for("both values retained", || {
        let all = retained(&broker);
        (all.len() == 5).then_some(all)
    });
    assert!(before.contains(&format!("withings/{user}/weight 70.1")));
    assert!(before.contains(&format!("withings/{user}/fat_ratio 23.15")));
    assert!(before.contains(&"withings/status online".to_string()));

    let down = downs(&relay);
    let stopped = Instant::now();
    broker.restart_forgetting();
    noticed_within_25s(&relay, down, stopped);
    assert!(
        relay
            .log_text()
            .contains("closed the connection while idle"),
        "seen as a closed connection, not a timeout: {}",
        relay.log_text()
    );
    let after = wait_for("the retained messages back", || {
        let all = retained(&broker);
        (all == before).then_some(all)
    });
    assert_eq!(after, before);
    assert_eq!(published(&broker), 1, "the group is not published again");
    assert_eq!(relay.outbox_records(), 0);
}

/// Tried: the broker hangs (SIGSTOP: it accepts bytes but sends nothing,
/// no FIN, no RST) while the relay is idle; once the relay noticed, a
/// weigh-in arrives; then the broker resumes. Checked: the relay logs the lost connection
/// within the deadline (a ping went unanswered), and once the broker is
/// back the group queued meanwhile arrives, once, with its retained value,
/// and the outbox is empty.
#[test]
fn a_hung_broker_is_noticed_and_what_came_meanwhile_arrives() {
    let mut broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("mqtt-hung");
    let relay = quick_reconnecting(&fake, &dir, &broker);
    let user = USER.to_string();
    first_group_published(&fake, &relay, &broker);

    let down = downs(&relay);
    let paused = Instant::now();
    broker.pause();
    noticed_within_25s(&relay, down, paused);
    fake.advance_clock(30);
    weigh_in(&fake, 2, 70_200);
    relay.notify(&notification_form(&fake, USER));
    relay.wait_lines(2); // JSON lines do not wait for MQTT

    broker.resume();
    wait_for("the queued group on the broker", || {
        (published(&broker) >= 2).then_some(())
    });
    wait_for("an empty outbox", || {
        (relay.outbox_records() == 0).then_some(())
    });
    assert_eq!(published(&broker), 2, "each group published once");
    assert_eq!(
        broker.sub(&format!("withings/{user}/weight"), 1, 5),
        [format!("withings/{user}/weight 70.2")]
    );
}
