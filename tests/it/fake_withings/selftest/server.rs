//! The server itself: what it records of each call, how it routes paths
//! and reads bodies, and that dropping it stops it.

use super::{agent, exchange, post_raw, REDIRECT};
use crate::fake_withings::{Endpoint, FakeWithings, CLIENT_SECRET};
use serde_json::Value;

#[test]
fn calls_record_path_method_action_params_bearer_and_time() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.advance_clock(1000);
    let before = fake.now();
    let url = format!("{}/measure?action=getmeas&category=9", fake.url());
    let (status, _, _) = post_raw(&url, Some(&a), &[("category", "1"), ("lastupdate", "5")]);
    assert_eq!(status, 200);
    let v = exchange(&fake, "abc", REDIRECT);
    assert_eq!(v["status"], 503);

    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    let c = &calls[0];
    assert_eq!(c.path, "/measure");
    assert_eq!(c.method, "POST");
    assert_eq!(c.endpoint, Some(Endpoint::Measure));
    assert_eq!(c.action.as_deref(), Some("getmeas"));
    assert_eq!(c.params["category"], "1", "form body wins over query");
    assert_eq!(c.params["lastupdate"], "5");
    assert_eq!(c.query, "action=getmeas&category=9");
    assert_eq!(c.bearer.as_deref(), Some(a.as_str()));
    assert!(c.at >= before && c.at <= before + 2);
    assert_eq!(
        c.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let t = &calls[1];
    assert_eq!(t.path, "/v2/oauth2");
    assert_eq!(t.bearer, None);
    assert_eq!(
        t.params["client_secret"], CLIENT_SECRET,
        "secrets are visible to tests"
    );
    assert_eq!(fake.count(Endpoint::Token, "requesttoken"), 1);
    assert_eq!(fake.count(Endpoint::Token, "getmeas"), 0);
    fake.clear_calls();
    assert!(fake.calls().is_empty());
}

#[test]
fn unknown_path_is_404_and_json_bodies_are_not_form_params() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    let (status, _, _) = post_raw(&format!("{}/v2/measure", fake.url()), Some(&a), &[]);
    assert_eq!(status, 404);
    let mut resp = agent()
        .post(format!("{}/measure", fake.url()))
        .header("Authorization", format!("Bearer {a}"))
        .header("Content-Type", "application/json")
        .send(r#"{"action":"getmeas"}"#)
        .unwrap();
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["status"], 503, "a JSON body carries no form parameters");
    let calls = fake.calls();
    assert_eq!(calls[0].path, "/v2/measure");
    assert_eq!(calls[0].endpoint, None);
    assert_eq!(calls[1].action, None);
    assert_eq!(calls[1].body, r#"{"action":"getmeas"}"#);
}

#[test]
fn dropping_the_fake_stops_the_server() {
    let fake = FakeWithings::start();
    let url = format!("{}/measure", fake.url());
    assert_eq!(post_raw(&url, None, &[("action", "getmeas")]).0, 200);
    drop(fake);
    let after = agent().post(&url).send_form([("action", "getmeas")]);
    assert!(after.is_err(), "no answer after drop");
}
