//! The safety-net poll and poll-only mode: measurements arrive with no
//! notification at all, and without webhooks nothing is subscribed.

use crate::fake_withings::{Endpoint, FakeWithings, Group};
use crate::support::relay::{http, start_linked, wait_for, Relay, TestDir};
use serde_json::Value;

const USER: u64 = 6_160_001;

fn now(fake: &FakeWithings) -> i64 {
    fake.now() as i64
}

#[test]
fn a_notification_that_never_arrives_is_recovered_by_the_poll_and_at_start() {
    // Tried: a weigh-in whose notification Withings never sent (facts
    // sheet §3.4: missed notifications are not sent again), with a 1 s
    // poll; then one made while the relay was down, with a poll too long
    // to come during the test: only the sync at start can bring it.
    let fake = FakeWithings::start();
    let dir = TestDir::new("poll-recovers");
    let relay = start_linked(&fake, &dir, USER, &["--poll", "1s"]);
    let t = now(&fake);
    fake.add_group(USER, Group::weight(1, t - 30, t - 10, 72_500, -3));
    let lines = relay.wait_lines(1);
    assert!(lines[0].contains(r#""value":72.5"#), "{}", lines[0]);
    relay.wait_log("synced (poll), 1 new measurement group(s)");
    assert_eq!(relay.queued(), 0, "no notification was involved");
    drop(relay);

    fake.advance_clock(60);
    let t = now(&fake);
    fake.add_group(USER, Group::weight(2, t - 30, t - 10, 72_400, -3));
    let relay = Relay::start(&fake, dir.path(), &["--poll", "1h"]);
    relay.wait_lines(2);
    // Several more passes of the worker: nothing comes twice.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(relay.grpids(), [1, 2]);
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(relay.state_dir.join("serve.json")).unwrap())
            .unwrap();
    assert_eq!(info["poll_secs"], 3600);
    assert_eq!(info["webhooks"], true);
    assert_eq!(info["outputs"], serde_json::json!(["output"]));
    let health: Value = serde_json::from_str(
        &std::fs::read_to_string(relay.state_dir.join(format!("health/{USER}.json"))).unwrap(),
    )
    .unwrap();
    assert!(health["last_sync_ok_at"].as_i64().unwrap() > 0, "{health}");
}

#[test]
fn poll_only_mode_subscribes_nothing_and_still_relays() {
    // Tried: link with --no-webhook (the browser still comes back through
    // --public-url), then run serve with no public URL at all, as behind
    // carrier-grade NAT.
    let fake = FakeWithings::start();
    fake.add_user(USER);
    let dir = TestDir::new("poll-only");
    let relay = Relay::start(&fake, dir.path(), &["--no-webhook"]);
    let (status, page) = relay.link(&fake, USER);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Nothing was subscribed"), "{page}");
    drop(relay);

    let mut relay = Relay::configure(&fake, dir.path(), &["--poll", "1s"]);
    relay.without_public_url();
    relay.restart();
    relay.wait_log("poll-only mode: nothing is subscribed, every linked user synced every 1 s");
    let t = now(&fake);
    fake.add_group(USER, Group::weight(7, t - 20, t - 5, 64_100, -3));
    let lines = relay.wait_lines(1);
    assert!(lines[0].contains(r#""value":64.1"#), "{}", lines[0]);

    // No redirect URI without a public URL: the callback says how to link.
    let (status, body) = http(
        relay.port,
        "GET",
        "/oauth/callback?code=c&state=s",
        &[],
        b"",
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("authorize --paste"), "{body}");
    assert_eq!(fake.count(Endpoint::Notify, "subscribe"), 0);
    assert!(fake.subscriptions(USER).is_empty());
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(relay.state_dir.join("serve.json")).unwrap())
            .unwrap();
    assert_eq!(
        (info["webhooks"].as_bool(), info["poll_secs"].as_u64()),
        (Some(false), Some(1))
    );
    wait_for("more polls", || {
        (fake.count(Endpoint::Measure, "getmeas") >= 3).then_some(())
    });
    assert_eq!(relay.grpids(), [7], "polled again and again, emitted once");
}
