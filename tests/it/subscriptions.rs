//! The subscription keeper in `serve` (facts sheet §3.1, §3.4): a
//! subscription Withings dropped comes back, a changed notification URL
//! replaces the old one, and nothing that is not the relay's is ever
//! revoked: no revoke-all.

use crate::fake_withings::{Endpoint, FakeWithings, Group};
use crate::support::relay::{start_linked, wait_for, Relay, TestDir};
use serde_json::Value;

const USER: u64 = 5_100_001;
/// Another app's subscription for the same user (Home Assistant's shape).
const FOREIGN: &str = "https://ha.example.org/api/webhook/0123abcd";
/// Another relay of the same Withings app, elsewhere: the relay's comment,
/// but not the relay's URL.
const OTHER_RELAY: &str = "https://other-relay.example.org/notify/00112233445566778899aabbccddeeff";
const QUICK: [&str; 4] = ["--check-every", "1s", "--notify-spacing", "10ms"];

fn add_foreign(fake: &FakeWithings) {
    fake.add_subscription(USER, 1, FOREIGN, "Home Assistant");
    fake.add_subscription(USER, 1, OTHER_RELAY, "withings-relay");
}

fn foreign_intact(fake: &FakeWithings) {
    let subs = fake.subscriptions(USER);
    for url in [FOREIGN, OTHER_RELAY] {
        assert!(
            subs.contains(&(1, url.to_string())),
            "{url} survives: {subs:?}"
        );
    }
}

fn health(relay: &Relay) -> Value {
    let text = std::fs::read_to_string(relay.state_dir.join(format!("health/{USER}.json")))
        .unwrap_or_else(|_| "{}".into());
    serde_json::from_str(&text).unwrap()
}

fn recorded_urls(relay: &Relay) -> Vec<String> {
    let path = relay.state_dir.join(format!("callbacks/{USER}.json"));
    let record: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    record["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

/// Waits until the last check's health lists `url` for appli 1.
fn wait_health_sees(relay: &Relay, url: &str) -> Value {
    wait_for("a subscription check in health/", || {
        let h = health(relay);
        let seen = h["subscriptions"]["seen"].as_array()?;
        seen.iter()
            .any(|s| s["appli"] == 1 && s["callbackurl"] == url)
            .then_some(h)
    })
}

/// A relay with the user linked, whose only check is the one at start (an
/// hour apart), and the foreign subscriptions; with its notification URL.
fn linked_beside_others(fake: &FakeWithings, dir: &TestDir) -> (Relay, String) {
    let relay = start_linked(
        fake,
        dir,
        USER,
        &["--check-every", "1h", "--notify-spacing", "10ms"],
    );
    add_foreign(fake);
    let url = relay.notify_url();
    (relay, url)
}

/// The relay's own secret file gets a new value, as after a lost state dir
/// or a deliberate change; serve is restarted on it.
fn restart_with_new_secret(relay: &mut Relay) {
    relay.kill9();
    std::fs::write(
        relay.state_dir.join("webhook-secret"),
        "ffeeddccbbaa99887766554433221100\n",
    )
    .unwrap();
    relay.restart();
}

#[test]
fn a_subscription_withings_dropped_is_restored_without_revoking_anything() {
    // Tried: Withings drops the relay's subscription (as after failed
    // deliveries), while another app and another relay of the same app
    // are subscribed for the same user. Checked: the check subscribes
    // again, revokes nothing, records what it saw, and a weigh-in then
    // arrives through the restored subscription.
    let fake = FakeWithings::start();
    let dir = TestDir::new("keeper-restore");
    let relay = start_linked(&fake, &dir, USER, &QUICK);
    add_foreign(&fake);
    assert!(fake.drop_subscription(USER, 1, &relay.notify_url()));

    wait_for("the subscription back", || {
        fake.subscriptions(USER)
            .contains(&(1, relay.notify_url()))
            .then_some(())
    });
    relay.wait_log("Withings had no subscription for appli 1 at the relay's URL; subscribed again");
    let h = wait_health_sees(&relay, &relay.notify_url());
    assert_eq!(h["subscriptions"]["problems"], serde_json::json!([]));
    assert!(h["subscriptions"]["checked_at"].as_i64().unwrap() > 0);
    assert_eq!(
        fake.count(Endpoint::Notify, "revoke"),
        0,
        "no revoke at all"
    );
    foreign_intact(&fake);
    assert_eq!(recorded_urls(&relay), [relay.notify_url()]);
    assert!(!relay.log_text().contains(&relay.webhook_secret()));

    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 71_000, -3));
    let delivered = fake.send_notification(USER, 1, t - 60, t);
    assert!(
        delivered.contains(&(relay.notify_url(), 200)),
        "{delivered:?}"
    );
    assert!(relay.wait_lines(1)[0].contains(r#""value":71"#));
}

#[test]
fn a_new_secret_subscribes_the_new_url_and_revokes_only_the_old_one() {
    // Tried: serve restarts with a new webhook secret (the notification
    // URL changes); the check at start is the only one (an hour apart).
    // Checked: the new URL is subscribed before the old one is revoked,
    // by its exact URL and appli, once; other subscriptions survive, and
    // the record keeps only the new URL.
    let fake = FakeWithings::start();
    let dir = TestDir::new("keeper-new-url");
    let (mut relay, old) = linked_beside_others(&fake, &dir);
    assert_eq!(recorded_urls(&relay), [old.as_str()], "linking records it");
    restart_with_new_secret(&mut relay);
    let new = relay.notify_url();
    assert_ne!(old, new);

    wait_for("the old URL revoked", || {
        let subs = fake.subscriptions(USER);
        (!subs.contains(&(1, old.clone())) && subs.contains(&(1, new.clone()))).then_some(())
    });
    foreign_intact(&fake);
    let notify: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == Some(Endpoint::Notify))
        .filter_map(|c| Some((c.action?, c.params.get("callbackurl").cloned())))
        .collect();
    let subscribed = notify
        .iter()
        .position(|(a, url)| a == "subscribe" && url.as_deref() == Some(new.as_str()));
    let revokes: Vec<_> = notify
        .iter()
        .enumerate()
        .filter(|(_, (a, _))| a == "revoke")
        .collect();
    assert_eq!(revokes.len(), 1, "{notify:?}");
    assert_eq!(revokes[0].1 .1.as_deref(), Some(old.as_str()));
    assert!(subscribed.unwrap() < revokes[0].0, "subscribe first");
    let revoke = fake
        .calls()
        .into_iter()
        .find(|c| c.action.as_deref() == Some("revoke"))
        .unwrap();
    assert_eq!(
        revoke.params.get("appli").map(String::as_str),
        Some("1"),
        "never revoke-all"
    );
    relay.wait_log("revoked the relay's old notification URL");
    relay.wait_log("notification URL changed (a new --public-url or webhook secret); subscribed appli 1 at the new one");
    wait_health_sees(&relay, &new);
    assert_eq!(recorded_urls(&relay), [new]);
    let log = relay.log_text();
    assert!(
        !log.contains(&relay.webhook_secret()) && !log.contains("00112233445566778899aabbccddeeff")
    );
}

#[test]
fn a_lost_record_still_finds_the_old_url_by_the_relays_path_and_comment() {
    // Tried: the state dir lost its secret and the URL record (tokens kept
    // elsewhere, say). Checked: the old URL, under this relay's own
    // /notify/ path and with its comment, is revoked; another relay's URL
    // with the same comment is not.
    let fake = FakeWithings::start();
    let dir = TestDir::new("keeper-lost-record");
    let (mut relay, old) = linked_beside_others(&fake, &dir);
    std::fs::remove_file(relay.state_dir.join(format!("callbacks/{USER}.json"))).unwrap();
    restart_with_new_secret(&mut relay);
    wait_for("the old URL revoked", || {
        (!fake.subscriptions(USER).contains(&(1, old.clone()))).then_some(())
    });
    assert!(fake.subscriptions(USER).contains(&(1, relay.notify_url())));
    foreign_intact(&fake);
    assert_eq!(fake.count(Endpoint::Notify, "revoke"), 1);
}

#[test]
fn a_failing_head_check_is_an_error_with_its_fix_and_healed_once_it_passes() {
    // Tried: Withings cannot reach the relay's URL, so linking subscribes
    // nothing (293); then the URL becomes reachable; then the URL changes
    // while Withings cannot reach it. Checked: each check logs the failure
    // with what to fix and records it as the problem of that appli; the
    // next check after the fix subscribes and clears it; an old URL is
    // revoked only once the new one is subscribed.
    let fake = FakeWithings::start();
    fake.add_user(USER);
    fake.set_callbacks_unreachable(true);
    let dir = TestDir::new("keeper-293");
    let mut relay = Relay::start(&fake, dir.path(), &QUICK);
    let (status, page) = relay.link(&fake, USER);
    assert_eq!(status, 502, "{page}");
    assert!(
        page.contains("subscribes by itself within the hour"),
        "{page}"
    );
    relay.wait_log("status 293 means the HEAD check failed. Withings checks the notification URL with a HEAD request: it must be https on port 443");
    let problems = wait_for("the problem in health/", || {
        let h = health(&relay);
        let p = h["subscriptions"]["problems"].as_array()?.clone();
        (!p.is_empty()).then_some(p)
    });
    assert!(
        problems[0].as_str().unwrap().starts_with("appli 1: "),
        "{problems:?}"
    );
    assert!(fake.subscriptions(USER).is_empty());

    fake.set_callbacks_unreachable(false);
    let h = wait_health_sees(&relay, &relay.notify_url());
    assert_eq!(h["subscriptions"]["problems"], serde_json::json!([]));
    assert_eq!(fake.subscriptions(USER), vec![(1, relay.notify_url())]);
    assert_eq!(fake.count(Endpoint::Notify, "revoke"), 0);

    // A new URL that cannot be subscribed yet: the old one stays until it
    // can, so the user is never left with no subscription at all.
    let old = relay.notify_url();
    fake.set_callbacks_unreachable(true);
    restart_with_new_secret(&mut relay);
    relay.wait_log("kept the relay's old notification URL");
    assert_eq!(fake.subscriptions(USER), vec![(1, old.clone())]);
    assert_eq!(fake.count(Endpoint::Notify, "revoke"), 0);
    fake.set_callbacks_unreachable(false);
    wait_for("the new URL in place of the old", || {
        (fake.subscriptions(USER) == vec![(1, relay.notify_url())]).then_some(())
    });
    assert_eq!(fake.count(Endpoint::Notify, "revoke"), 1);
}
