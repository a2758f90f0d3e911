//! The whole flow with the real binary against the fake Withings:
//! authorize → callback → subscribe (HEAD seen) → notification → JSON line.

use crate::fake_withings::{self, FakeWithings, Group, CLIENT_SECRET};
use crate::support;
use crate::support::relay::{notification_form, start_linked, Relay, TestDir};
use serde_json::Value;

const USER: u64 = 4_242_001;

fn now(fake: &FakeWithings) -> i64 {
    fake.now() as i64
}

fn notification(fake: &FakeWithings) -> String {
    notification_form(fake, USER)
}

fn linked(fake: &FakeWithings, dir: &TestDir) -> Relay {
    start_linked(fake, dir, USER, &[])
}

#[test]
fn a_weigh_in_travels_from_link_to_json_line_with_exact_values() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("flow");
    let relay = linked(&fake, &dir);

    // The callback page says who was linked and what was subscribed.
    let (_, page) = relay.link(&fake, USER);
    assert!(
        page.contains(&USER.to_string()) && page.contains("appli 1"),
        "{page}"
    );
    assert_eq!(fake.subscriptions(USER), vec![(1, relay.notify_url())]);
    assert!(
        fake.head_checks()
            .contains(&(relay.notify_url(), Some(200))),
        "Withings' HEAD check reached the webhook: {:?}",
        fake.head_checks()
    );

    let t = now(&fake);
    fake.add_group(
        USER,
        Group::weight(2_726_375_354, t - 30, t - 10, 72_500, -3),
    );
    assert_eq!(relay.notify(&notification(&fake)), 200);

    let lines = relay.wait_lines(1);
    assert!(
        lines[0].contains(r#""value":72.5,"unit":"kg""#),
        "exact decimal: {}",
        lines[0]
    );
    let r: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(r["userid"], USER.to_string());
    assert_eq!(r["grpid"], 2_726_375_354i64);
    assert_eq!(r["date"], t - 30);
    assert_eq!(r["modified"], t - 10);
    assert_eq!(r["attrib"], 0);
    assert_eq!(r["category"], 1);
    assert!(r["deviceid"].is_string());
    assert!(r["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["measures"][0]["name"], "weight");
    assert_eq!(r["measures"][0]["type"], 1);

    // The notification is done: the queue is empty again.
    support::relay::wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
}

#[test]
fn the_same_notification_three_times_gives_one_line() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("thrice");
    let relay = linked(&fake, &dir);
    let t = now(&fake);
    fake.add_group(USER, Group::blood_pressure(77, t - 5, t - 5, 120, 80, 61));
    let form = notification(&fake);
    for _ in 0..3 {
        assert_eq!(relay.notify(&form), 200);
    }
    relay.wait_lines(1);
    support::relay::wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
    // One more delivery after everything settled still adds nothing.
    assert_eq!(relay.notify(&form), 200);
    support::relay::wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
    let records = relay.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let names: Vec<&str> = records[0]["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "systolic_blood_pressure",
            "diastolic_blood_pressure",
            "heart_rate"
        ]
    );
}

#[test]
fn an_edited_group_is_emitted_again_with_its_new_values() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("edit");
    let relay = linked(&fake, &dir);
    let t = now(&fake);
    fake.add_group(USER, Group::weight(9, t - 100, t - 100, 80_000, -3));
    relay.notify(&notification(&fake));
    relay.wait_lines(1);
    fake.advance_clock(60);
    fake.add_group(USER, Group::weight(9, t - 100, t - 40, 79_900, -3));
    relay.notify(&notification(&fake));
    let lines = relay.wait_lines(2);
    assert!(lines[1].contains(r#""value":79.9"#), "{}", lines[1]);
}

#[test]
fn pages_are_followed_and_every_group_arrives_once_in_order() {
    let fake = FakeWithings::start();
    fake.set_page_size(2);
    fake.set_more_as_bool(true);
    fake.set_userid_as_string(false);
    let dir = TestDir::new("pages");
    let relay = linked(&fake, &dir);
    let t = now(&fake);
    for i in 0..5 {
        fake.add_group(
            USER,
            Group::weight(100 + i, t - 50 + i, t - 50 + i, 70_000 + i, -3),
        );
    }
    relay.notify(&notification(&fake));
    let records: Vec<i64> = {
        relay.wait_lines(5);
        relay
            .records()
            .iter()
            .map(|r| r["grpid"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(records, [100, 101, 102, 103, 104]);
}

#[test]
fn an_access_token_that_expires_mid_run_is_refreshed_and_persisted() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("expiry");
    let relay = linked(&fake, &dir);
    let t = now(&fake);
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 70_000, -3));
    relay.notify(&notification(&fake));
    relay.wait_lines(1);

    // Four hours later the 3 h access token is dead; Withings says 401.
    fake.advance_clock(4 * 3600);
    let t = now(&fake);
    fake.add_group(USER, Group::weight(2, t - 5, t - 5, 70_100, -3));
    relay.notify(&notification(&fake));
    relay.wait_lines(2);

    let refreshes = fake
        .calls()
        .iter()
        .filter(|c| c.params.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count();
    assert_eq!(refreshes, 1, "one refresh, not one per call");
    let (access, refresh) = fake.current_tokens(USER).unwrap();
    let stored = relay.user_file(USER);
    assert_eq!(stored["access_token"], access);
    assert_eq!(
        stored["refresh_token"], refresh,
        "the rotated refresh token is on disk"
    );
}

#[test]
fn a_short_lived_token_is_refreshed_before_use_not_after_a_401() {
    let fake = FakeWithings::start();
    fake.set_access_token_lifetime(30);
    let dir = TestDir::new("proactive");
    let relay = linked(&fake, &dir);
    let t = now(&fake);
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 70_000, -3));
    relay.notify(&notification(&fake));
    relay.wait_lines(1);
    let getmeas_with_stale_token = fake
        .calls()
        .iter()
        .filter(|c| c.action.as_deref() == Some("getmeas"))
        .filter(|c| !fake.access_token_valid(USER, c.bearer.as_deref().unwrap_or("")))
        .count();
    assert_eq!(
        getmeas_with_stale_token, 0,
        "getmeas only ever used the newest token"
    );
    assert!(fake.count(fake_withings::Endpoint::Token, "requesttoken") >= 2);
}

#[test]
fn no_secret_or_token_reaches_the_log() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("secrets");
    let relay = linked(&fake, &dir);
    fake.advance_clock(4 * 3600);
    let t = now(&fake);
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 70_000, -3));
    relay.notify(&notification(&fake));
    relay.wait_lines(1);

    let log = relay.log_text();
    assert!(log.contains("refreshing"), "the run did refresh: {log}");
    let mut secrets = vec![CLIENT_SECRET.to_string(), relay.webhook_secret()];
    for call in fake.calls() {
        secrets.extend(call.bearer.clone());
        for key in ["code", "refresh_token", "client_secret", "state"] {
            secrets.extend(call.params.get(key).cloned());
        }
    }
    let (access, refresh) = fake.current_tokens(USER).unwrap();
    secrets.extend([access, refresh]);
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(!log.contains(s.as_str()), "the log leaks {s}");
    }
}
