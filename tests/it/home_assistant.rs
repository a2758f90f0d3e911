//! Home Assistant Core itself reading what the relay announces: run by
//! `make test-ha`, not by `make test` (it needs Home Assistant installed
//! in a venv, about 4 minutes the first time). A change to discovery can
//! be tried against the real consumer before it ships.
//!
//! HA is driven through its own REST and websocket APIs by
//! `tests/ha/ha_client.py`, run with the venv's Python.

use crate::fake_withings::{FakeWithings, Group, Measure};
use crate::support::mosquitto::{Mosquitto, PASSWORD, USER as MQTT_USER};
use crate::support::realdata::{fixture, shifted};
use crate::support::relay::{free_port, http, notification_form, start_linked, wait_for, TestDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USER: u64 = 4_110_001;
const OTHER: u64 = 4_110_002;
/// HA's first start creates its database and loads its integrations: on
/// two busy cores that takes a while.
const HA_PATIENCE: Duration = Duration::from_secs(300);

/// `WITHINGS_HA_VENV` (the Makefile sets it), else `target/ha/venv`.
fn venv() -> PathBuf {
    let venv = std::env::var_os("WITHINGS_HA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ha/venv"));
    assert!(
        venv.join("bin/hass").is_file(),
        "no Home Assistant in {}: run `make test-ha`",
        venv.display()
    );
    venv
}

struct HomeAssistant {
    child: Child,
    port: u16,
    venv: PathBuf,
    log: PathBuf,
}

impl HomeAssistant {
    fn start(venv: PathBuf, config: &Path) -> HomeAssistant {
        let port = free_port();
        std::fs::create_dir_all(config).unwrap();
        // Only what the test talks to: no default_config, whose
        // integrations scan the network and want more packages.
        std::fs::write(
            config.join("configuration.yaml"),
            format!(
                "homeassistant:\n  name: withings-relay test\n  unit_system: metric\n  time_zone: UTC\n  latitude: 0\n  longitude: 0\n  elevation: 0\n  currency: EUR\n  country: FR\n  language: en\nhttp:\n  server_host: 127.0.0.1\n  server_port: {port}\napi:\nconfig:\nonboarding:\nwebsocket_api:\nlogger:\n  default: warning\n"
            ),
        )
        .unwrap();
        let log = config.join("hass.out");
        let child = Command::new(venv.join("bin/hass"))
            .args(["--config", &config.display().to_string(), "--skip-pip"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(config.join("hass.err")).unwrap(),
            ))
            .spawn()
            .expect("start hass");
        let ha = HomeAssistant {
            child,
            port,
            venv,
            log: config.join("home-assistant.log"),
        };
        let deadline = Instant::now() + HA_PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || http(port, "GET", "/api/onboarding", &[], b"").0 != 200
        {
            // Recovery mode (a package missing, say) never onboards.
            let log = std::fs::read_to_string(&ha.log).unwrap_or_default();
            assert!(
                Instant::now() < deadline && !log.contains("Activating recovery mode"),
                "Home Assistant did not start; see {}",
                ha.log.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        ha
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self, args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ha/ha_client.py");
        let out = Command::new(self.venv.join("bin/python"))
            .arg(script)
            .args(args)
            .output()
            .expect("run ha_client.py");
        assert!(
            out.status.success(),
            "ha_client.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Onboards an owner and adds the MQTT integration; the access token.
    fn setup(&self, broker_port: u16) -> String {
        let port = broker_port.to_string();
        let url = self.url();
        let args = ["setup", &url, "127.0.0.1", &port, MQTT_USER, PASSWORD];
        self.client(&args).trim().to_string()
    }

    fn dump(&self, token: &str) -> Value {
        serde_json::from_str(&self.client(&["dump", &self.url(), token])).unwrap()
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The retained discovery configs on the broker, by unique_id.
fn announced(broker: &Mosquitto) -> Vec<Value> {
    broker
        .sub("homeassistant/sensor/+/+/config", 500, 3)
        .iter()
        .filter_map(|l| serde_json::from_str(l.split_once(' ')?.1).ok())
        .collect()
}

fn measure(type_: i32, value: i64, unit: i32) -> Measure {
    Measure { value, unit, type_ }
}

/// Tried: two users on one relay, one named Alice; Alice has a Body+
/// weigh-in, a Body Scan group (captured), a blood-pressure reading, a
/// group of the rarer types, and a guest's weigh-in; the other user has a
/// weight. HA must create every sensor the relay announced, with the
/// relay's names, units, device classes, icons, state classes and display
/// precision, two devices as named, the unassigned weigh-in with its time,
/// no second fat-mass sensor, and no warning from the MQTT or sensor
/// integrations in its log.
#[test]
#[ignore = "needs Home Assistant Core in a venv: make test-ha"]
fn home_assistant_core_shows_what_the_relay_announces() {
    let venv = venv();
    let broker = Mosquitto::start();
    let dir = TestDir::new("ha-core");
    let ha = HomeAssistant::start(venv, &dir.path().join("ha"));
    let token = ha.setup(broker.port());

    let fake = FakeWithings::start();
    let url = format!("mqtt://{MQTT_USER}@127.0.0.1:{}", broker.port());
    let pw = dir.path().join("mqtt-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let pw = pw.display().to_string();
    let name = format!("{USER}=Alice");
    let relay = start_linked(
        &fake,
        &dir,
        USER,
        &[
            "--mqtt",
            &url,
            "--mqtt-password-file",
            &pw,
            "--user-name",
            &name,
        ],
    );
    fake.add_user(OTHER);
    assert_eq!(relay.link(&fake, OTHER).0, 200);

    let t = fake.now() as i64;
    let mut body_plus = Group::weight(1, t - 400, t - 400, 72_500, -3);
    body_plus.measures.extend([
        measure(6, 2315, -2),
        measure(8, 1780, -2),
        measure(11, 61, 0),
    ]);
    fake.add_group(USER, body_plus);
    let mut pressure = Group::weight(2, t - 350, t - 350, 0, 0);
    pressure.measures = vec![measure(10, 121, 0), measure(9, 79, 0), measure(11, 64, 0)];
    fake.add_group(USER, pressure);
    let mut rare = Group::weight(3, t - 300, t - 300, 0, 0);
    rare.measures = vec![
        measure(54, 97, 0),
        measure(71, 3660, -2),
        measure(123, 412, -1),
        measure(130, 0, 0),
        measure(155, 391, -1),
        measure(91, 7744, -3),
        measure(135, 96, 0),
    ];
    fake.add_group(USER, rare);
    let scans = fixture("aiowithings/measurement_list_2.json");
    for (grpid, at) in [(5_114_418_400_i64, t - 200), (5_109_691_089, t - 150)] {
        let g = scans
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["grpid"] == grpid)
            .unwrap();
        let by = at - g["modified"].as_i64().unwrap();
        fake.add_raw_group(USER, shifted(g.clone(), by));
    }
    let mut guest = Group::weight(4, t - 100, t - 100, 95_300, -3);
    guest.attrib = 1;
    fake.add_group(USER, guest);
    fake.add_group(OTHER, Group::weight(5, t - 100, t - 100, 81_200, -3));
    relay.notify(&notification_form(&fake, USER));
    relay.notify(&notification_form(&fake, OTHER));
    relay.wait_lines(7);
    wait_for("everything on the broker", || {
        (relay.outbox_records() == 0).then_some(())
    });

    let configs = announced(&broker);
    let deadline = Instant::now() + HA_PATIENCE;
    let dump = loop {
        let dump = ha.dump(&token);
        let made = dump["entities"].as_array().unwrap().len();
        if made >= configs.len() {
            break dump;
        }
        assert!(
            Instant::now() < deadline,
            "HA made {made} of {} sensors",
            configs.len()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let entities = dump["entities"].as_array().unwrap();
    let states = dump["states"].as_array().unwrap();
    let devices = dump["devices"].as_array().unwrap();
    assert_eq!(
        entities.len(),
        configs.len(),
        "one HA entity per announced sensor"
    );

    let device_name = |id: &Value| {
        devices.iter().find(|d| &d["id"] == id).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let state_of = |entity_id: &Value| {
        states
            .iter()
            .find(|s| &s["entity_id"] == entity_id)
            .unwrap()
    };
    for c in &configs {
        let e = entities
            .iter()
            .find(|e| e["unique_id"] == c["unique_id"])
            .unwrap_or_else(|| panic!("HA made no entity for {}", c["unique_id"]));
        let s = state_of(&e["entity_id"]);
        let a = &s["attributes"];
        let what = c["unique_id"].as_str().unwrap();
        let device = device_name(&e["device_id"]);
        assert_eq!(device, c["device"]["name"].as_str().unwrap(), "{what}");
        assert_eq!(
            a["friendly_name"].as_str().unwrap(),
            format!("{device} {}", c["name"].as_str().unwrap()),
            "{what}"
        );
        for field in ["unit_of_measurement", "device_class", "icon", "state_class"] {
            assert_eq!(a.get(field), c.get(field), "{what}: {field}");
        }
        assert_eq!(
            e["options"]["sensor"].get("suggested_display_precision"),
            c.get("suggested_display_precision"),
            "{what}: precision"
        );
        let state = s["state"].as_str().unwrap();
        assert!(
            state.parse::<f64>().is_ok(),
            "{what} shows {state:?}, not a number"
        );
    }

    let entity = |unique_id: String| {
        let e = entities
            .iter()
            .find(|e| e["unique_id"] == unique_id.as_str())
            .unwrap();
        (
            e["entity_id"].as_str().unwrap().to_string(),
            state_of(&e["entity_id"]).clone(),
        )
    };
    let (id, weight) = entity(format!("withings_relay_{USER}_weight"));
    assert_eq!(id, "sensor.alice_weight");
    assert_eq!(
        weight["state"], "95.908",
        "the Body Scan's, not the guest's"
    );
    let (id, other) = entity(format!("withings_relay_{OTHER}_weight"));
    assert_eq!(
        id,
        format!("sensor.withings_{OTHER}_weight"),
        "no collision"
    );
    assert_eq!(other["state"], "81.2");
    let (_, guest) = entity(format!("withings_relay_{USER}_unassigned"));
    assert_eq!(guest["state"], "95.3");
    assert_eq!(
        guest["attributes"]["friendly_name"],
        "Alice Unassigned weigh-in"
    );
    assert!(
        guest["attributes"]["time"].as_str().unwrap().ends_with('Z'),
        "{guest}"
    );
    let (_, fat) = entity(format!("withings_relay_{USER}_fat_mass"));
    assert_eq!(
        fat["state"], "19.09",
        "the Body Scan's fat mass on the one sensor"
    );
    let (_, arm) = entity(format!("withings_relay_{USER}_muscle_mass_left_arm"));
    assert_eq!(
        arm["attributes"]["friendly_name"],
        "Alice Muscle mass left arm"
    );
    let (_, spo2) = entity(format!("withings_relay_{USER}_spo2"));
    assert_eq!(spo2["attributes"]["friendly_name"], "Alice SpO2");
    assert!(
        entities
            .iter()
            .all(|e| !e["unique_id"].as_str().unwrap().contains("_p7")),
        "no position-7 sensors"
    );

    let alice = devices.iter().find(|d| d["name"] == "Alice").unwrap();
    assert_eq!(alice["manufacturer"], "Withings");
    assert_eq!(alice["model"], "Withings account via withings-relay");
    assert_eq!(alice["sw_version"], env!("CARGO_PKG_VERSION"));

    let log = std::fs::read_to_string(&ha.log).unwrap_or_default();
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARNING") || l.contains("ERROR"))
        .filter(|l| l.contains("components.mqtt") || l.contains("components.sensor"))
        .collect();
    assert!(complaints.is_empty(), "HA complained: {complaints:#?}");
}
