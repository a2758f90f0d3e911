//! Failures as a client meets them: the rate limit (facts sheet §4.2), and
//! the one-shot faults a test queues per endpoint.

use super::{api, authorize_url, exchange, get_code, getmeas, post_raw, refresh, REDIRECT};
use crate::fake_withings::{Endpoint, FakeWithings, Fault, Group};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn rate_limit_601_after_120_api_requests_per_fake_minute() {
    let fake = FakeWithings::start();
    fake.add_user(1);
    let (a, _) = fake.issue_tokens(1);
    for i in 0..120 {
        assert_eq!(getmeas(&fake, &a, &[])["status"], 0, "request {i}");
    }
    // The account host does not count.
    assert_eq!(
        fake.browser_get(&authorize_url(&fake, REDIRECT, "user.metrics", "s"))
            .0,
        302
    );
    let v = getmeas(&fake, &a, &[]);
    assert_eq!(v["status"], 601);
    assert_eq!(v["error"], "Too many requests");
    assert_eq!(
        refresh(&fake, "whatever")["status"],
        601,
        "token calls count"
    );
    fake.advance_clock(61);
    assert_eq!(getmeas(&fake, &a, &[])["status"], 0);

    fake.set_rate_limit(2);
    fake.advance_clock(61);
    assert_eq!(getmeas(&fake, &a, &[])["status"], 0);
    assert_eq!(getmeas(&fake, &a, &[])["status"], 0);
    assert_eq!(getmeas(&fake, &a, &[])["status"], 601);
}

#[test]
fn faults_are_fifo_per_endpoint_and_recorded() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.push_fault(Endpoint::Measure, Fault::Status(522));
    fake.push_fault(Endpoint::Measure, Fault::Http(502));
    fake.push_fault(Endpoint::Token, Fault::Status(601));
    assert_eq!(fake.pending_faults(Endpoint::Measure), 2);

    // Notify is unaffected by Measure faults.
    assert_eq!(
        api(&fake, "/notify", Some(&a), &[("action", "list")])["status"],
        0
    );
    let v = getmeas(&fake, &a, &[]);
    assert_eq!(v["status"], 522);
    assert!(v["error"].is_string());
    let (status, _, body) = post_raw(
        &format!("{}/measure", fake.url()),
        Some(&a),
        &[("action", "getmeas")],
    );
    assert_eq!(status, 502);
    assert!(body.contains("<html>"));
    assert_eq!(getmeas(&fake, &a, &[])["status"], 0, "faults are one-shot");
    assert_eq!(refresh(&fake, "x")["status"], 601);
    assert_eq!(
        fake.count(Endpoint::Measure, "getmeas"),
        3,
        "faulted calls recorded"
    );
    assert_eq!(fake.pending_faults(Endpoint::Measure), 0);
}

#[test]
fn truncated_fault_cuts_the_json_with_matching_content_length() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(1, 1000, 1000, 80000, -3));
    let full = post_raw(
        &format!("{}/measure", fake.url()),
        Some(&a),
        &[("action", "getmeas")],
    )
    .2;
    fake.push_fault(Endpoint::Measure, Fault::Truncated);
    let (status, len, body) = post_raw(
        &format!("{}/measure", fake.url()),
        Some(&a),
        &[("action", "getmeas")],
    );
    assert_eq!(status, 200);
    assert_eq!(len, Some(body.len()));
    assert!(body.len() < full.len() && body.len() >= full.len() / 2 - 2);
    assert!(body.starts_with("{\""));
    assert!(serde_json::from_str::<Value>(&body).is_err());
}

#[test]
fn stall_delays_only_the_stalled_request() {
    let fake = Arc::new(FakeWithings::start());
    let (a, _) = fake.issue_tokens(1);
    fake.push_fault(Endpoint::Measure, Fault::Stall(Duration::from_millis(700)));
    let stalled = {
        let (fake, a) = (fake.clone(), a.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            let v = getmeas(&fake, &a, &[]);
            (t.elapsed(), v)
        })
    };
    // Wait until the stalled request has arrived, then check others are served meanwhile.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.count(Endpoint::Measure, "getmeas") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    assert_eq!(
        api(&fake, "/notify", Some(&a), &[("action", "list")])["status"],
        0
    );
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "not blocked by the stall"
    );
    let (elapsed, v) = stalled.join().unwrap();
    assert!(elapsed >= Duration::from_millis(700));
    assert_eq!(v["status"], 0, "answered normally after the stall");
}

#[test]
fn status_fault_on_authorize_and_http_fault_on_token() {
    let fake = FakeWithings::start();
    fake.add_user(1);
    fake.push_fault(Endpoint::Authorize, Fault::Http(500));
    assert_eq!(
        fake.browser_get(&authorize_url(&fake, REDIRECT, "user.metrics", "s"))
            .0,
        500
    );
    fake.push_fault(Endpoint::Token, Fault::Http(503));
    let code = get_code(&fake, REDIRECT);
    let (status, _, _) = post_raw(
        &format!("{}/v2/oauth2", fake.url()),
        None,
        &[("action", "requesttoken")],
    );
    assert_eq!(status, 503);
    assert_eq!(exchange(&fake, &code, REDIRECT)["status"], 0);
}
