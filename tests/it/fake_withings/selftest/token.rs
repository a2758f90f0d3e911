//! The token endpoint, /v2/oauth2 (facts sheet §1.3, §1.4): the code
//! exchange, a code's single use and short life, refresh rotation with its
//! grace, and token lifetimes on the fake clock.

use super::{
    api, assert_invalid_token, exchange, get_code, getmeas, login, pair, refresh, REDIRECT,
};
use crate::fake_withings::{FakeWithings, CLIENT_ID, CLIENT_SECRET};

#[test]
fn code_exchange_returns_documented_token_body() {
    let fake = FakeWithings::start();
    fake.add_user(363);
    let v = exchange(&fake, &get_code(&fake, REDIRECT), REDIRECT);
    assert_eq!(v["status"], 0);
    let b = &v["body"];
    assert_eq!(b["userid"], "363", "string by default");
    let access = b["access_token"].as_str().unwrap();
    let refresh_tok = b["refresh_token"].as_str().unwrap();
    for t in [access, refresh_tok] {
        assert_eq!(t.len(), 40);
        assert!(t.bytes().all(|c| c.is_ascii_hexdigit()));
    }
    assert_ne!(access, refresh_tok);
    assert_eq!(b["expires_in"], 10800);
    assert_eq!(b["scope"], "user.metrics");
    assert_eq!(b["token_type"], "Bearer");
    assert!(b["csrf_token"].is_string());
    assert_eq!(
        fake.current_tokens(363),
        Some((access.to_string(), refresh_tok.to_string()))
    );

    fake.set_userid_as_string(false);
    let v = exchange(&fake, &get_code(&fake, REDIRECT), REDIRECT);
    assert_eq!(v["body"]["userid"], 363, "integer when configured");
}

#[test]
fn code_is_single_use_short_lived_and_bound_to_redirect_uri() {
    let fake = FakeWithings::start();
    fake.add_user(7);
    let code = get_code(&fake, REDIRECT);
    assert_eq!(exchange(&fake, &code, REDIRECT)["status"], 0);
    let again = exchange(&fake, &code, REDIRECT);
    assert_eq!(again["status"], 503);
    assert_eq!(again["error"], "Invalid Params: invalid code");

    let code = get_code(&fake, REDIRECT);
    let wrong = exchange(&fake, &code, "http://127.0.0.1:9/other");
    assert_eq!(wrong["error"], "Invalid Params: invalid code");
    assert!(
        wrong.get("body").is_none(),
        "observed 503 shape has no body"
    );

    let code = get_code(&fake, REDIRECT);
    fake.advance_clock(25);
    assert_eq!(
        exchange(&fake, &code, REDIRECT)["status"],
        0,
        "25 s old is fine"
    );

    let code = get_code(&fake, REDIRECT);
    fake.advance_clock(31);
    assert_eq!(exchange(&fake, &code, REDIRECT)["status"], 503, "31 s old");
    assert_eq!(
        exchange(&fake, "nonexistent", REDIRECT)["error"],
        "Invalid Params: invalid code"
    );
}

#[test]
fn token_endpoint_checks_action_client_and_grant_type() {
    let fake = FakeWithings::start();
    fake.add_user(7);
    let code = get_code(&fake, REDIRECT);
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, &str)> = base.to_vec();
        f.extend_from_slice(extra);
        api(&fake, "/v2/oauth2", None, &f)
    };
    let v = with(&[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]);
    assert_eq!(v["error"], "Invalid Params: action", "action is mandatory");
    let v = with(&[
        ("action", "requesttoken"),
        ("client_id", CLIENT_ID),
        ("client_secret", "wrong"),
    ]);
    assert_eq!(v["status"], 503);
    assert_eq!(v["error"], "Invalid Params: invalid client");
    let v = with(&[("action", "requesttoken"), ("client_id", CLIENT_ID)]);
    assert_eq!(v["error"], "Invalid Params: invalid client");
    let v = api(
        &fake,
        "/v2/oauth2",
        None,
        &[
            ("action", "requesttoken"),
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    );
    assert_eq!(v["status"], 503);
    // The rejected calls did not burn the code.
    assert_eq!(exchange(&fake, &code, REDIRECT)["status"], 0);
}

#[test]
fn refresh_rotates_and_old_refresh_token_has_grace_until_new_access_is_used() {
    let fake = FakeWithings::start();
    fake.add_user(5);
    let (a0, r0) = login(&fake);
    let (a1, r1) = pair(&refresh(&fake, &r0));
    assert_ne!(a0, a1);
    assert_ne!(r0, r1);
    assert_eq!(fake.current_tokens(5), Some((a1.clone(), r1.clone())));

    // Strict: the old access token is revoked by the refresh.
    assert_invalid_token(&getmeas(&fake, &a0, &[]));
    // Old refresh token still usable (response "lost"), new one too.
    assert!(fake.refresh_token_usable(5, &r0));
    assert!(fake.refresh_token_usable(5, &r1));
    // Replaying r0 works and yields yet another pair; r1 is now dead.
    let (a2, r2) = pair(&refresh(&fake, &r0));
    assert!(!fake.refresh_token_usable(5, &r1));
    assert_eq!(
        refresh(&fake, &r1)["error"],
        "Invalid Params: invalid refresh_token"
    );
    assert!(fake.refresh_token_usable(5, &r0));

    // First use of the newest access token ends the grace of r0.
    assert_eq!(getmeas(&fake, &a2, &[])["status"], 0);
    assert!(!fake.refresh_token_usable(5, &r0));
    let v = refresh(&fake, &r0);
    assert_eq!(v["status"], 503);
    assert_eq!(v["error"], "Invalid Params: invalid refresh_token");
    assert!(fake.refresh_token_usable(5, &r2));
    assert!(!fake.refresh_token_usable(6, &r2), "bound to the user");
}

#[test]
fn refresh_grace_ends_after_eight_hours_and_older_tokens_are_dead() {
    let fake = FakeWithings::start();
    fake.add_user(5);
    let (_, r0) = login(&fake);
    let (_, r1) = pair(&refresh(&fake, &r0));
    let (_, r2) = pair(&refresh(&fake, &r1));
    assert!(!fake.refresh_token_usable(5, &r0), "two generations back");
    assert_eq!(refresh(&fake, &r0)["status"], 503);
    assert!(fake.refresh_token_usable(5, &r1));
    fake.advance_clock(8 * 3600 - 100);
    assert!(fake.refresh_token_usable(5, &r1));
    fake.advance_clock(200);
    assert!(!fake.refresh_token_usable(5, &r1), "grace over after 8 h");
    assert_eq!(refresh(&fake, &r1)["status"], 503);
    assert_eq!(refresh(&fake, &r2)["status"], 0);
}

#[test]
fn refresh_token_lives_one_year() {
    let fake = FakeWithings::start();
    let (_, r) = fake.issue_tokens(8);
    fake.advance_clock(364 * 86_400);
    assert!(fake.refresh_token_usable(8, &r));
    fake.advance_clock(2 * 86_400);
    assert!(!fake.refresh_token_usable(8, &r));
    assert_eq!(
        refresh(&fake, &r)["error"],
        "Invalid Params: invalid refresh_token"
    );
}

#[test]
fn access_token_expires_on_the_fake_clock() {
    let fake = FakeWithings::start();
    fake.add_user(5);
    fake.set_access_token_lifetime(60);
    let code = get_code(&fake, REDIRECT);
    let v = exchange(&fake, &code, REDIRECT);
    assert_eq!(v["body"]["expires_in"], 60);
    let (a, r) = pair(&v);
    fake.advance_clock(50);
    assert_eq!(getmeas(&fake, &a, &[])["status"], 0);
    assert!(fake.access_token_valid(5, &a));
    fake.advance_clock(11);
    assert!(!fake.access_token_valid(5, &a));
    assert_invalid_token(&getmeas(&fake, &a, &[]));
    let (a2, _) = pair(&refresh(&fake, &r));
    assert_eq!(getmeas(&fake, &a2, &[])["status"], 0);
}
