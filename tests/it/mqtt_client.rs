//! The MQTT client against a real mosquitto: login, TLS, QoS 1, retained
//! state, the Last Will, keepalive and reconnecting. Each test runs its own
//! broker on free loopback ports (tests/it/support/mosquitto.rs).

use crate::support;
use crate::support::mosquitto::{Mosquitto, PASSWORD, PASSWORD_IN_URL, USER};
use crate::support::relay::{wait_for, TestDir};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use withings_relay::error::{Error, MqttKind};
use withings_relay::mqtt::{parse_url, Client, MqttSettings, Will};
use withings_relay::secret::Secret;

/// Settings for the plain listener, logged in as the test user.
fn settings(broker: &Mosquitto, client_id: &str) -> MqttSettings {
    let mut s = parse_url(&format!("mqtt://127.0.0.1:{}", broker.port())).unwrap();
    s.username = Some(USER.to_string());
    s.password = Some(Secret::new(PASSWORD));
    s.client_id = client_id.to_string();
    s
}

fn tls_settings(broker: &Mosquitto, client_id: &str, ca: Option<PathBuf>) -> MqttSettings {
    let mut s = settings(broker, client_id);
    s.host = "localhost".to_string();
    s.port = broker.tls_port();
    s.tls = true;
    s.ca_file = ca;
    s
}

fn status_will() -> Option<Will> {
    Some(Will {
        topic: "withings/status".to_string(),
        payload: b"offline".to_vec(),
        retain: true,
    })
}

/// The kind and the text of an `Error::Mqtt`, which every network failure
/// must be. The text is what the log shows the user.
fn mqtt_error<T>(result: Result<T, Error>) -> (MqttKind, String) {
    match result {
        Err(e @ Error::Mqtt { .. }) => {
            let text = e.to_string();
            assert!(!text.contains(PASSWORD), "the password leaked: {text}");
            let Error::Mqtt { kind, .. } = e else {
                unreachable!()
            };
            (kind, text)
        }
        Err(other) => panic!("expected an mqtt error, got {other:?}"),
        Ok(_) => panic!("expected an mqtt error, got Ok"),
    }
}

#[test]
fn login_from_a_url_with_an_escaped_password_is_accepted() {
    let broker = Mosquitto::start();
    let url = format!(
        "mqtt://{USER}:{PASSWORD_IN_URL}@127.0.0.1:{}",
        broker.port()
    );
    let mut s = parse_url(&url).unwrap();
    s.client_id = "relay-url".to_string();
    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/42/weight", b"64.3", true).unwrap();
    client.disconnect();
    assert_eq!(
        broker.sub("withings/42/weight", 1, 5),
        ["withings/42/weight 64.3"]
    );
    broker.wait_for_log("New client connected from 127.0.0.1");
    assert!(broker.log().contains("as relay-url"), "{}", broker.log());
}

#[test]
fn a_bad_password_is_refused_with_the_return_code_and_what_to_check() {
    let broker = Mosquitto::start();
    let mut s = settings(&broker, "relay-badpw");
    s.password = Some(Secret::new("wrong"));
    let (kind, text) = mqtt_error(Client::connect(&s));
    // mosquitto 2 answers 5 (not authorized), not 4, to a wrong password.
    assert!(
        matches!(kind, MqttKind::Refused { code: 5, .. }),
        "{kind:?}"
    );
    assert!(text.contains("refused the login"), "{text}");
    assert!(
        text.contains("CONNACK return code 5, not authorized"),
        "{text}"
    );
    assert!(
        text.contains("check the user and password in --mqtt / --mqtt-password-file"),
        "{text}"
    );
    assert!(!text.contains("wrong"), "{text}");
}

#[test]
fn no_user_is_refused_when_anonymous_is_off() {
    let broker = Mosquitto::start();
    let mut s = settings(&broker, "relay-anon");
    s.username = None;
    s.password = None;
    let (kind, text) = mqtt_error(Client::connect(&s));
    assert!(
        matches!(kind, MqttKind::Refused { code: 5, .. }),
        "{kind:?}"
    );
    assert!(text.contains("CONNACK return code 5"), "{text}");
    assert!(text.contains("--mqtt-password-file"), "{text}");
}

#[test]
fn tls_with_the_private_ca_is_accepted() {
    let broker = Mosquitto::start();
    let s = tls_settings(&broker, "relay-tls", Some(broker.ca_file()));
    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/tls", b"over tls", true).unwrap();
    client.disconnect();
    assert_eq!(broker.sub("withings/tls", 1, 5), ["withings/tls over tls"]);
}

#[test]
fn an_untrusted_certificate_is_rejected_with_a_clear_message() {
    let broker = Mosquitto::start();

    // The bundled public roots alone do not know the test CA.
    let (kind, text) = mqtt_error(Client::connect(&tls_settings(&broker, "relay-t1", None)));
    assert!(matches!(kind, MqttKind::Certificate { .. }), "{kind:?}");
    assert!(text.contains("is not trusted"), "{text}");
    assert!(
        text.contains("pass that CA's certificate with --mqtt-ca"),
        "{text}"
    );

    // Another CA than the one that signed the broker's certificate.
    let other = TestDir::new("other-ca");
    support::certs::make_certificates(other.path());
    let wrong_ca = other.path().join("ca.pem");
    let s = tls_settings(&broker, "relay-t2", Some(wrong_ca.clone()));
    let (kind, text) = mqtt_error(Client::connect(&s));
    assert!(matches!(kind, MqttKind::Certificate { .. }), "{kind:?}");
    assert!(text.contains(&wrong_ca.display().to_string()), "{text}");

    // The right CA, but the certificate is for localhost, not 127.0.0.1.
    let mut s = tls_settings(&broker, "relay-t3", Some(broker.ca_file()));
    s.host = "127.0.0.1".to_string();
    let (kind, text) = mqtt_error(Client::connect(&s));
    assert!(matches!(kind, MqttKind::Certificate { .. }), "{kind:?}");
    assert!(text.contains("not made out for the host"), "{text}");

    // Nothing got past the handshake to log in.
    assert!(!broker.log().contains("as relay-t"), "{}", broker.log());
}

#[test]
fn a_ca_file_without_a_certificate_is_a_config_error() {
    let broker = Mosquitto::start();
    let not_pem = broker.dir().join("server.csr");
    match Client::connect(&tls_settings(&broker, "relay-csr", Some(not_pem))) {
        Err(Error::Config(text)) => assert!(text.contains("holds no PEM certificate"), "{text}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}

#[test]
fn tls_and_plain_ports_mixed_up_say_which_scheme_to_use() {
    let broker = Mosquitto::start();
    let mut plain_to_tls = settings(&broker, "relay-mix1");
    plain_to_tls.port = broker.tls_port();
    let (kind, text) = mqtt_error(Client::connect(&plain_to_tls));
    assert!(matches!(kind, MqttKind::Unreachable(_)), "{kind:?}");
    assert!(text.contains("use mqtts://"), "{text}");

    let mut tls_to_plain = tls_settings(&broker, "relay-mix2", Some(broker.ca_file()));
    tls_to_plain.port = broker.port();
    let (kind, text) = mqtt_error(Client::connect(&tls_to_plain));
    assert!(matches!(kind, MqttKind::Tls(_)), "{kind:?}");
    assert!(text.contains("use mqtt://"), "{text}");
}

#[test]
fn qos1_publish_returns_only_after_the_puback() {
    let mut broker = Mosquitto::start();
    let mut s = settings(&broker, "relay-qos1");
    // The real 10 s would be waited out in full below.
    s.answer_timeout = Duration::from_secs(1);
    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/a", b"1", false).unwrap();
    // The broker logged the PUBACK for packet id 1 before we returned.
    assert!(
        broker
            .log()
            .contains("Sending PUBACK to relay-qos1 (m1, rc0)"),
        "{}",
        broker.log()
    );

    // A frozen broker: the kernel takes our bytes, no PUBACK comes back,
    // and the publish fails instead of counting as delivered.
    broker.pause();
    let started = Instant::now();
    let (kind, text) = mqtt_error(client.publish("withings/a", b"2", false));
    broker.resume();
    assert!(
        matches!(&kind, MqttKind::Timeout { doing, .. } if doing == "waiting for PUBACK"),
        "{kind:?}"
    );
    assert!(text.contains("while waiting for PUBACK"), "{text}");
    assert!(started.elapsed() >= s.answer_timeout * 9 / 10, "{text}");
    // The connection is done for; the next call says so at once.
    let (kind, text) = mqtt_error(client.publish("withings/a", b"3", false));
    assert!(matches!(kind, MqttKind::Unreachable(_)), "{kind:?}");
    assert!(text.contains("connect again"), "{text}");
}

#[test]
fn retained_values_reach_a_late_subscriber_and_plain_ones_do_not() {
    let broker = Mosquitto::start();
    let mut client = Client::connect(&settings(&broker, "relay-ret")).unwrap();
    client.publish("withings/7/weight", b"70.1", true).unwrap();
    client.publish("withings/7/weight", b"70.2", true).unwrap();
    client
        .publish("withings/7/fat_ratio", b"18.5", true)
        .unwrap();
    client
        .publish("withings/7/measurement", b"{}", false)
        .unwrap();
    client.publish("withings/7/state", b"cheap", true).unwrap();
    client.disconnect();
    let mut seen = broker.sub("withings/7/#", 4, 3);
    seen.sort();
    assert_eq!(
        seen,
        [
            "withings/7/fat_ratio 18.5",
            "withings/7/state cheap",
            "withings/7/weight 70.2",
        ],
        "only the latest retained value of each topic, nothing unretained"
    );
}

#[test]
fn the_will_goes_out_when_the_connection_drops_and_not_on_disconnect() {
    let broker = Mosquitto::start();
    let mut s = settings(&broker, "relay-will");
    s.will = status_will();

    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/status", b"online", true).unwrap();
    client.disconnect();
    assert_eq!(
        broker.sub("withings/status", 1, 5),
        ["withings/status online"],
        "a DISCONNECT discards the Will"
    );

    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/status", b"online", true).unwrap();
    let watch = broker.subscriber("withings/status");
    watch.wait_for_line("withings/status online");
    drop(client); // closes the socket without DISCONNECT, as a crash would
    watch.wait_for_line("withings/status offline");
    // Retained, so whoever looks later sees it too.
    assert_eq!(
        broker.sub("withings/status", 1, 5),
        ["withings/status offline"]
    );
}

#[test]
fn keepalive_pings_hold_an_idle_connection_open() {
    let broker = Mosquitto::start();
    let mut s = settings(&broker, "relay-ping");
    s.keepalive = Duration::from_secs(2);
    s.will = status_will();
    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/status", b"online", true).unwrap();
    // Right after a publish, half the keepalive has not gone by: no ping.
    client.keep_alive().unwrap();
    assert!(
        !broker.log().contains("Received PINGREQ from relay-ping"),
        "{}",
        broker.log()
    );

    // Idle for twice the keepalive, calling keep_alive as a sink loop would;
    // mosquitto drops a client silent for 1.5 times the keepalive.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(4) {
        client.keep_alive().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = broker.log();
    let pings = log.matches("Received PINGREQ from relay-ping").count();
    let pongs = log.matches("Sending PINGRESP to relay-ping").count();
    // About one a second (half the keepalive); at least two in 4 s even
    // on a loaded machine.
    assert!(pings >= 2, "{log}");
    assert_eq!(pings, pongs, "{log}");
    client
        .publish("withings/after-idle", b"still here", false)
        .unwrap();
    assert_eq!(
        broker.sub("withings/status", 1, 5),
        ["withings/status online"],
        "the Will did not fire"
    );
    client.disconnect();
}

#[test]
fn without_pings_the_broker_drops_the_client_and_sends_the_will() {
    let broker = Mosquitto::start();
    let mut s = settings(&broker, "relay-silent");
    s.keepalive = Duration::from_secs(1);
    s.will = status_will();
    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/status", b"online", true).unwrap();
    let watch = broker.subscriber("withings/status");
    watch.wait_for_line("withings/status online");
    // No keep_alive calls: after 1.5 s of silence the broker gives up.
    watch.wait_for_line("withings/status offline");
    assert!(
        client.publish("withings/x", b"1", false).is_err(),
        "the broker closed this connection"
    );
}

#[test]
fn after_the_broker_is_killed_and_restarted_a_new_connection_works() {
    let mut broker = Mosquitto::start();
    let s = settings(&broker, "relay-restart");
    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/9/weight", b"80.0", true).unwrap();
    // What a SIGKILL loses between the PUBACK and the broker's next save
    // is the broker's business; this test is about ours.
    broker.wait_persisted(b"80.0");

    broker.kill();
    let (kind, text) = mqtt_error(client.publish("withings/9/weight", b"80.1", true));
    assert!(matches!(kind, MqttKind::Unreachable(_)), "{kind:?}");
    assert!(text.contains("127.0.0.1"), "names the broker: {text}");
    let (kind, text) = mqtt_error(Client::connect(&s));
    assert!(matches!(kind, MqttKind::Unreachable(_)), "{kind:?}");
    assert!(
        text.contains("check that the broker runs"),
        "while it is down: {text}"
    );

    broker.restart();
    let mut client = Client::connect(&s).unwrap();
    // The retained value from before the SIGKILL was saved.
    assert_eq!(
        broker.sub("withings/9/weight", 1, 5),
        ["withings/9/weight 80.0"]
    );
    client.publish("withings/9/weight", b"80.1", true).unwrap();
    client.disconnect();
    assert_eq!(
        broker.sub("withings/9/weight", 1, 5),
        ["withings/9/weight 80.1"]
    );

    // A clean stop and start keeps it as well.
    broker.restart();
    assert_eq!(
        broker.sub("withings/9/weight", 1, 5),
        ["withings/9/weight 80.1"]
    );
}

/// Tried: the broker is killed (its socket closed by the kernel) right
/// after a publish, when no ping is due. Checked: `keep_alive` reports the
/// closed connection at once, from the socket alone (the error says so,
/// where a ping would have timed out), and leaves the client unusable.
#[test]
fn keep_alive_sees_a_closed_connection_without_pinging() {
    let mut broker = Mosquitto::start();
    let s = settings(&broker, "relay-closed");
    let mut client = Client::connect(&s).unwrap();
    client.publish("withings/status", b"online", true).unwrap();
    broker.kill();
    // The FIN may take a moment to arrive; the probe interval (5 s) has
    // not gone by, so no ping is sent meanwhile.
    let err = wait_for("keep_alive to fail", || client.keep_alive().err());
    let text = err.to_string();
    assert!(text.contains("closed the connection while idle"), "{text}");
    assert!(!broker.log().contains("PINGREQ"), "{}", broker.log());
    assert!(client.keep_alive().is_err(), "unusable afterwards");
}
