//! /notify (facts sheet §3): subscribe with its HEAD check, list, get and
//! revoke, and notifications posted to the callback URLs.

use super::{api, assert_invalid_token, dead_url, Hook};
use crate::fake_withings::FakeWithings;

/// Subscribes `url` for appli 1 without a comment; the answer's envelope.
fn subscribe_appli_1(fake: &FakeWithings, token: &str, url: &str) -> serde_json::Value {
    api(
        fake,
        "/notify",
        Some(token),
        &[
            ("action", "subscribe"),
            ("callbackurl", url),
            ("appli", "1"),
        ],
    )
}

#[test]
fn subscribe_head_checks_then_list_get_revoke() {
    let fake = FakeWithings::start();
    let hook = Hook::start(200, 204);
    let (a, _) = fake.issue_tokens(3);
    let sub = |appli: &str| {
        api(
            &fake,
            "/notify",
            Some(&a),
            &[
                ("action", "subscribe"),
                ("callbackurl", hook.url.as_str()),
                ("appli", appli),
                ("comment", "relay"),
            ],
        )
    };
    let v = sub("1");
    assert_eq!(v["status"], 0, "{v}");
    assert_eq!(v["body"], serde_json::json!({}));
    assert_eq!(
        *hook.heads.lock().unwrap(),
        1,
        "HEAD happened before the answer"
    );
    assert_eq!(fake.head_checks(), vec![(hook.url.clone(), Some(200))]);
    assert_eq!(sub("1")["status"], 0);
    assert_eq!(sub("4")["status"], 0);
    assert_eq!(
        fake.subscriptions(3),
        vec![(1, hook.url.clone()), (4, hook.url.clone())],
        "deduplicated"
    );

    let v = api(&fake, "/notify", Some(&a), &[("action", "list")]);
    let profiles = v["body"]["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0]["appli"], 1);
    assert_eq!(profiles[0]["callbackurl"], hook.url.as_str());
    assert_eq!(profiles[0]["comment"], "relay");
    assert_eq!(profiles[0]["expires"], 2_147_483_647_i64);
    let v = api(
        &fake,
        "/notify",
        Some(&a),
        &[("action", "list"), ("appli", "4")],
    );
    assert_eq!(v["body"]["profiles"].as_array().unwrap().len(), 1);

    let v = api(
        &fake,
        "/notify",
        Some(&a),
        &[("action", "get"), ("callbackurl", hook.url.as_str())],
    );
    assert_eq!(v["body"]["appli"], 1);
    assert_eq!(v["body"]["callbackurl"], hook.url.as_str());

    let v = api(
        &fake,
        "/notify",
        Some(&a),
        &[
            ("action", "revoke"),
            ("callbackurl", hook.url.as_str()),
            ("appli", "1"),
        ],
    );
    assert_eq!(v["status"], 0);
    assert_eq!(fake.subscriptions(3), vec![(4, hook.url.clone())]);
    let v = api(
        &fake,
        "/notify",
        Some(&a),
        &[("action", "get"), ("callbackurl", hook.url.as_str())],
    );
    assert_ne!(v["status"], 0, "appli 1 is gone");
    assert!(fake.subscriptions(4).is_empty(), "per user");
}

#[test]
fn subscribe_rejects_callbacks_failing_the_head_check_with_293() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(3);
    let hook404 = Hook::start(404, 200);
    let dead = dead_url();
    for url in [hook404.url.as_str(), dead.as_str()] {
        let v = subscribe_appli_1(&fake, &a, url);
        assert_eq!(v["status"], 293, "{url}");
        assert_eq!(v["error"], "The callback URL is either unknown or invalid");
    }
    assert_eq!(
        fake.head_checks(),
        vec![(hook404.url.clone(), Some(404)), (dead.clone(), None)]
    );
    assert!(fake.subscriptions(3).is_empty());

    // A URL Withings cannot reach, though it answers here.
    let hook = Hook::start(200, 200);
    let subscribe = || subscribe_appli_1(&fake, &a, &hook.url)["status"].clone();
    fake.set_callbacks_unreachable(true);
    assert_eq!(subscribe(), 293);
    assert_eq!(*hook.heads.lock().unwrap(), 0, "no HEAD reached it");
    assert_eq!(fake.head_checks().last(), Some(&(hook.url.clone(), None)));
    fake.set_callbacks_unreachable(false);
    assert_eq!(subscribe(), 0);
    assert_eq!(fake.subscriptions(3), vec![(1, hook.url.clone())]);
}

#[test]
fn notify_requires_token_and_params() {
    let fake = FakeWithings::start();
    let hook = Hook::start(200, 200);
    let (a, _) = fake.issue_tokens(3);
    assert_invalid_token(&api(&fake, "/notify", None, &[("action", "list")]));
    let v = api(
        &fake,
        "/notify",
        Some(&a),
        &[("action", "subscribe"), ("appli", "1")],
    );
    assert_eq!(v["status"], 503);
    let v = api(
        &fake,
        "/notify",
        Some(&a),
        &[("action", "subscribe"), ("callbackurl", hook.url.as_str())],
    );
    assert_eq!(v["status"], 503);
    assert_eq!(*hook.heads.lock().unwrap(), 0, "no HEAD for invalid params");
    assert!(fake.head_checks().is_empty());
    assert_eq!(
        api(&fake, "/notify", Some(&a), &[("action", "nope")])["status"],
        503
    );
}

#[test]
fn notify_via_post_and_send_notification_deliver_forms() {
    let fake = FakeWithings::start();
    let hook = Hook::start(200, 204);
    let status = fake.notify_via_post(&hook.url, "userid=3&appli=1&startdate=10&enddate=20");
    assert_eq!(status, 204);
    let (a, _) = fake.issue_tokens(3);
    let v = api(
        &fake,
        "/notify",
        Some(&a),
        &[
            ("action", "subscribe"),
            ("callbackurl", hook.url.as_str()),
            ("appli", "1"),
        ],
    );
    assert_eq!(v["status"], 0);
    assert_eq!(
        fake.send_notification(3, 1, 100, 200),
        vec![(hook.url.clone(), 204)]
    );
    assert!(fake.send_notification(3, 4, 100, 200).is_empty());
    let posts = hook.posts.lock().unwrap().clone();
    assert_eq!(
        posts,
        vec![
            (
                "/withings/hook?token=s3cret".to_string(),
                "userid=3&appli=1&startdate=10&enddate=20".to_string()
            ),
            (
                "/withings/hook?token=s3cret".to_string(),
                "userid=3&appli=1&startdate=100&enddate=200".to_string()
            ),
        ]
    );
    assert_eq!(fake.notify_via_post(&dead_url(), "x=1"), 0);
}

#[test]
fn foreign_subscriptions_dropped_ones_and_a_revoked_grant() {
    let fake = FakeWithings::start();
    let (a, r) = fake.issue_tokens(3);
    fake.add_subscription(3, 1, "https://other.example/hook", "another app");
    fake.add_subscription(3, 4, "https://other.example/hook", "");
    assert!(
        fake.head_checks().is_empty(),
        "no HEAD check for another app's"
    );
    let v = api(&fake, "/notify", Some(&a), &[("action", "list")]);
    let profiles = v["body"]["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0]["comment"], "another app");
    assert_eq!(
        fake.subscriptions_with_comments(3)[0],
        (1, "https://other.example/hook".into(), "another app".into())
    );

    assert!(fake.drop_subscription(3, 1, "https://other.example/hook"));
    assert!(!fake.drop_subscription(3, 1, "https://other.example/hook"));
    assert_eq!(
        fake.subscriptions(3),
        vec![(4, "https://other.example/hook".to_string())]
    );

    fake.revoke_grant(3);
    assert!(fake.subscriptions(3).is_empty(), "gone with the grant");
    assert_invalid_token(&api(&fake, "/notify", Some(&a), &[("action", "list")]));
    assert!(!fake.refresh_token_usable(3, &r));
    assert_eq!(super::refresh(&fake, &r)["status"], 503);
}
