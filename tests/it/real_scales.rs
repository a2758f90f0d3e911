//! What real scales send, through the real binary, the fake Withings and a
//! real mosquitto, as Home Assistant and a hook see it: a guest's weigh-in
//! (attrib 1) kept off the owner's sensors, a Body Scan's whole-body values
//! on the same sensors as a Body+'s, one group version listed twice, the
//! device named after the person, and two users' sensors kept apart.
//! Captured groups come from tests/fixtures/SOURCES.md.

use crate::fake_withings::{FakeWithings, Group, Measure};
use crate::support::mosquitto::{Mosquitto, PASSWORD, USER as MQTT_USER};
use crate::support::realdata::{fixture, shifted};
use crate::support::relay::{notification_form, start_linked, wait_for, Relay, TestDir};
use serde_json::Value;

const USER: u64 = 3_110_001;
const OTHER: u64 = 3_110_002;

/// A captured group moved to `at` (its `modified`), values untouched.
fn captured_at(group: Value, at: i64) -> Value {
    let by = at - group["modified"].as_i64().unwrap();
    shifted(group, by)
}

fn relay_with_mqtt(
    fake: &FakeWithings,
    dir: &TestDir,
    broker: &Mosquitto,
    extra: &[&str],
) -> Relay {
    let pw = dir.path().join("mqtt-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let pw = pw.display().to_string();
    let url = format!("mqtt://{MQTT_USER}@127.0.0.1:{}", broker.port());
    let mut args = vec!["--mqtt", &url, "--mqtt-password-file", &pw];
    args.extend_from_slice(extra);
    start_linked(fake, dir, USER, &args)
}

/// The retained payload of `topic`, as a late subscriber (HA restarting)
/// gets it.
fn retained(broker: &Mosquitto, topic: &str) -> Option<String> {
    let lines = broker.sub(topic, 1, 3);
    lines
        .first()
        .and_then(|l| l.strip_prefix(topic)?.strip_prefix(' '))
        .map(str::to_string)
}

fn config(broker: &Mosquitto, user: u64, key: &str) -> Value {
    let topic = format!("homeassistant/sensor/withings_{user}/{key}/config");
    let text = retained(broker, &topic).unwrap_or_else(|| panic!("no {topic}"));
    serde_json::from_str(&text).unwrap()
}

/// Every retained discovery config of a user, by key.
fn config_keys(broker: &Mosquitto, user: u64, expected: usize) -> Vec<String> {
    let filter = format!("homeassistant/sensor/withings_{user}/+/config");
    let prefix = format!("homeassistant/sensor/withings_{user}/");
    // The user's diagnostic entities (status.rs's "Last sync") share the
    // node; they are not measures.
    let mut keys: Vec<String> = broker
        .sub(&filter, expected + 2, 3)
        .iter()
        .filter(|l| !l.contains(r#""entity_category":"diagnostic""#))
        .filter_map(|l| Some(l.strip_prefix(&prefix)?.split_once('/')?.0.to_string()))
        .collect();
    keys.sort();
    keys
}

/// Tried: the owner weighs 72.5 kg, then a guest steps on (attrib 1,
/// 95.3 kg, later). The owner's retained weight must stay 72.5, the guest's
/// group must land whole on the retained unassigned topic behind its own
/// sensor, never on the measurement topic, and the hook must be told
/// which is which by WITHINGS_ATTRIB. Nothing is lost: both groups reach
/// the JSON lines and the hook.
#[test]
fn a_guests_weigh_in_stays_off_the_owners_sensors() {
    let broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("ha-guest");
    let seen = dir.path().join("hook-seen");
    let script = format!(
        "echo \"$WITHINGS_GRPID attrib=$WITHINGS_ATTRIB weight=$WITHINGS_WEIGHT_KG\" >> '{}'",
        seen.display()
    );
    let name = format!("{USER}=Alice");
    let relay = relay_with_mqtt(
        &fake,
        &dir,
        &broker,
        &[
            "--user-name",
            &name,
            "--exec",
            "/bin/sh",
            "--exec-arg",
            "-c",
            "--exec-arg",
            &script,
        ],
    );
    let watch = broker.subscriber(&format!("withings/{USER}/measurement"));
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 50, t - 50, 72_500, -3));
    relay.notify(&notification_form(&fake, USER));
    let owner_line = relay.wait_lines(1).remove(0);
    watch.wait_for_line(&format!("withings/{USER}/measurement {owner_line}"));

    let mut guest = Group::weight(2, t - 10, t - 10, 95_300, -3);
    guest.attrib = 1;
    fake.add_group(USER, guest);
    relay.notify(&notification_form(&fake, USER));
    let guest_line = relay.wait_lines(2).remove(1);
    assert!(guest_line.contains(r#""attrib":1"#), "{guest_line}");
    wait_for("both groups delivered", || {
        (relay.outbox_records() == 0).then_some(())
    });

    assert_eq!(
        retained(&broker, &format!("withings/{USER}/weight")).as_deref(),
        Some("72.5"),
        "the owner's weight stays"
    );
    assert_eq!(
        retained(&broker, &format!("withings/{USER}/unassigned")),
        Some(guest_line.clone()),
        "the whole guest group, retained"
    );
    assert_eq!(
        watch.lines(),
        [format!("withings/{USER}/measurement {owner_line}")],
        "the guest's group is not on the measurement topic"
    );

    let c = config(&broker, USER, "unassigned");
    assert_eq!(c["name"], "Unassigned weigh-in");
    assert_eq!(c["unique_id"], format!("withings_relay_{USER}_unassigned"));
    assert_eq!(c["state_topic"], format!("withings/{USER}/unassigned"));
    assert_eq!(
        c["json_attributes_topic"],
        format!("withings/{USER}/unassigned")
    );
    assert!(c["value_template"].as_str().unwrap().contains("'weight'"));
    assert!(c["json_attributes_template"]
        .as_str()
        .unwrap()
        .contains("'time': value_json.time"));
    assert_eq!(c["unit_of_measurement"], "kg");
    assert_eq!(c["device_class"], "weight");
    assert_eq!(c["suggested_display_precision"], 2);
    assert_eq!(c["icon"], "mdi:account-question");
    assert!(c.get("state_class").is_none(), "no statistics of guests");
    assert_eq!(c["availability_topic"], "withings/status");
    // The device, named after the person; the same one as the weight's.
    let weight = config(&broker, USER, "weight");
    assert_eq!(c["device"], weight["device"]);
    assert_eq!(c["device"]["name"], "Alice");
    assert_eq!(
        c["device"]["identifiers"][0],
        format!("withings_relay_{USER}")
    );
    assert_eq!(c["device"]["manufacturer"], "Withings");
    assert_eq!(c["device"]["model"], "Withings account via withings-relay");
    assert_eq!(c["device"]["sw_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        config_keys(&broker, USER, 2),
        ["unassigned", "weight"],
        "no other sensor appeared"
    );

    let hook = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(
        hook, "1 attrib=0 weight=72.5\n2 attrib=1 weight=95.3\n",
        "the hook gets both, and can tell them apart"
    );
}

/// Tried: a Body+ weigh-in with fat mass, then a real Body Scan group
/// (whole-body measures at position 7, extracellular water at 6, fat mass
/// listed twice, segments at 2, 3, 10, 11, 12). The Body Scan's fat mass
/// must replace the Body+'s on the one `fat_mass` sensor, no `_p7` sensor
/// may appear, the segments get their body parts' names, and the JSON
/// line keeps the raw positions.
#[test]
fn a_body_scan_lands_on_the_same_sensors_as_a_body_plus() {
    let broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("ha-body-scan");
    let relay = relay_with_mqtt(&fake, &dir, &broker, &[]);
    let t = fake.now() as i64;
    let mut body_plus = Group::weight(1, t - 100, t - 100, 72_500, -3);
    body_plus.measures.push(Measure {
        value: 1780,
        unit: -2,
        type_: 8,
    });
    fake.add_group(USER, body_plus);
    relay.notify(&notification_form(&fake, USER));
    relay.wait_lines(1);

    let list = fixture("aiowithings/measurement_list_2.json");
    let scan = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grpid"] == 5_114_418_400_i64)
        .unwrap();
    fake.add_raw_group(USER, captured_at(scan.clone(), t - 10));
    relay.notify(&notification_form(&fake, USER));
    let line = relay.wait_lines(2).remove(1);
    assert!(line.contains(r#""name":"fat_mass","value":19.09,"unit":"kg","position":7"#));
    wait_for("both groups delivered", || {
        (relay.outbox_records() == 0).then_some(())
    });

    let value = |key: &str| retained(&broker, &format!("withings/{USER}/{key}"));
    assert_eq!(value("fat_mass").as_deref(), Some("19.09"));
    assert_eq!(value("weight").as_deref(), Some("95.908"));
    assert_eq!(value("extracellular_water").as_deref(), Some("21.39"));
    assert_eq!(value("muscle_mass_left_arm").as_deref(), Some("4.77"));
    assert_eq!(value("fat_mass_torso").as_deref(), Some("11.47"));
    let keys = config_keys(&broker, USER, 27);
    assert_eq!(keys.len(), 26, "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains("_p")), "{keys:?}");
    assert_eq!(keys.iter().filter(|k| k.starts_with("fat_mass")).count(), 6);
    let arm = config(&broker, USER, "muscle_mass_left_arm");
    assert_eq!(arm["name"], "Muscle mass left arm");
    assert_eq!(arm["unit_of_measurement"], "kg");
    assert_eq!(arm["device_class"], "weight");
    let visceral = config(&broker, USER, "visceral_fat");
    assert_eq!(visceral["state_class"], "measurement");
    assert_eq!(visceral["icon"], "mdi:stomach");
    assert_eq!(config(&broker, USER, "fat_ratio")["icon"], "mdi:percent");
    assert_eq!(
        config(&broker, USER, "fat_mass")["suggested_display_precision"],
        2
    );
    assert_eq!(
        config(&broker, USER, "weight")["device"]["name"],
        format!("Withings {USER}")
    );
}

/// Tried: one real answer that lists one group version twice, with attrib
/// 0 and attrib 8 (aiowithings/measurement.json), served to `serve` and
/// then to `fetch`. Each must give it once, the same first copy.
#[test]
fn one_group_version_listed_twice_is_relayed_once_by_serve_and_fetch() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("dup-version");
    let relay = start_linked(&fake, &dir, USER, &[]);
    let t = fake.now() as i64;
    let answer = fixture("aiowithings/measurement.json");
    let copies = answer["body"]["measuregrps"].as_array().unwrap();
    assert_eq!(copies[0]["grpid"], copies[1]["grpid"]);
    assert_eq!(
        (copies[0]["attrib"].as_i64(), copies[1]["attrib"].as_i64()),
        (Some(0), Some(8))
    );
    for copy in copies {
        fake.add_raw_group(USER, captured_at(copy.clone(), t - 10));
    }
    relay.notify(&notification_form(&fake, USER));
    let served = relay.wait_lines(1).remove(0);
    wait_for("an empty queue and outbox", || {
        (relay.queued() == 0 && relay.outbox_records() == 0).then_some(())
    });
    assert_eq!(
        relay.lines(),
        std::slice::from_ref(&served),
        "one line from serve"
    );
    assert!(served.contains(r#""attrib":0"#), "{served}");
    assert!(served.contains(r#""value":118.003"#), "{served}");

    let out = relay.run(&["fetch"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fetched = String::from_utf8(out.stdout).unwrap();
    assert_eq!(fetched, format!("{served}\n"), "fetch keeps the same copy");
}

/// Tried: two users of one relay, both weighing in, one named with
/// --user-name. Their weight sensors must differ in every id HA keys on
/// (unique id, config topic, state topic, device), so no entity of one
/// can take the other's place; the unnamed one keeps the id as its name.
#[test]
fn two_users_with_the_same_measure_never_collide() {
    let broker = Mosquitto::start();
    let fake = FakeWithings::start();
    let dir = TestDir::new("ha-two-users");
    let name = format!("{OTHER}=Bob");
    let relay = relay_with_mqtt(&fake, &dir, &broker, &["--user-name", &name]);
    fake.add_user(OTHER);
    let (status, page) = relay.link(&fake, OTHER);
    assert_eq!(status, 200, "{page}");
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 10, t - 10, 72_500, -3));
    fake.add_group(OTHER, Group::weight(2, t - 10, t - 10, 81_200, -3));
    relay.notify(&notification_form(&fake, USER));
    relay.notify(&notification_form(&fake, OTHER));
    relay.wait_lines(2);
    wait_for("both delivered", || {
        (relay.outbox_records() == 0).then_some(())
    });

    let (a, b) = (
        config(&broker, USER, "weight"),
        config(&broker, OTHER, "weight"),
    );
    for field in ["unique_id", "state_topic"] {
        assert_ne!(a[field], b[field], "{field}");
    }
    assert_ne!(a["device"]["identifiers"], b["device"]["identifiers"]);
    assert_eq!(a["device"]["name"], format!("Withings {USER}"));
    assert_eq!(b["device"]["name"], "Bob");
    assert_eq!(
        a["name"], b["name"],
        "the same measure, the same sensor name"
    );
    assert_eq!(
        retained(&broker, &format!("withings/{USER}/weight")).as_deref(),
        Some("72.5")
    );
    assert_eq!(
        retained(&broker, &format!("withings/{OTHER}/weight")).as_deref(),
        Some("81.2")
    );
}
