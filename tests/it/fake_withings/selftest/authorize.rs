//! authorize2 on the account host (facts sheet §1.2): the redirect with a
//! fresh code and the state, HTTP 400 for bad parameters, which account
//! is logged in, and demo mode.

use super::{authorize_url, exchange, get_code, query_param, REDIRECT};
use crate::fake_withings::{Endpoint, FakeWithings, CLIENT_ID, DEMO_USERID};

#[test]
fn authorize_redirects_with_fresh_code_and_state() {
    let fake = FakeWithings::start();
    fake.add_user(42);
    let (status, loc) = fake.browser_get(&authorize_url(
        &fake,
        REDIRECT,
        "user.metrics,user.info",
        "a b&c",
    ));
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT}?code=")), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("a b&c"));
    let code1 = query_param(&loc, "code").unwrap();

    // A redirect_uri that already has a query gets the parameters appended with '&'.
    let with_query = "http://127.0.0.1:9/cb?x=1";
    let (_, loc2) = fake.browser_get(&authorize_url(&fake, with_query, "user.metrics", "s2"));
    let loc2 = loc2.unwrap();
    assert!(
        loc2.starts_with("http://127.0.0.1:9/cb?x=1&code="),
        "{loc2}"
    );
    let code2 = query_param(&loc2, "code").unwrap();
    assert_ne!(code1, code2, "codes are fresh");
    assert_eq!(code1.len(), 40);
    assert_eq!(fake.count(Endpoint::Authorize, ""), 2);
}

#[test]
fn authorize_rejects_bad_params_with_http_400() {
    let fake = FakeWithings::start();
    fake.add_user(42);
    let base = fake.url();
    let good = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("scope", "user.metrics,user.info"),
        ("redirect_uri", REDIRECT),
        ("state", "xyz"),
    ];
    let url_with = |replace: &str, value: Option<&str>| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in good {
            if k == replace {
                if let Some(v) = value {
                    s.append_pair(k, v);
                }
            } else {
                s.append_pair(k, v);
            }
        }
        format!("{base}/oauth2_user/authorize2?{}", s.finish())
    };
    let cases = [
        url_with("response_type", Some("token")),
        url_with("client_id", Some("someone-else")),
        url_with("scope", Some("user.metrics user.info")),
        url_with("scope", Some("user.info")),
        url_with("scope", None),
        url_with("redirect_uri", None),
        url_with("state", None),
    ];
    for url in &cases {
        let (status, loc) = fake.browser_get(url);
        assert_eq!(status, 400, "{url}");
        assert!(loc.is_none());
    }
    assert_eq!(fake.browser_get(&url_with("x", None)).0, 302);

    // Registered redirect URIs are enforced when set.
    fake.set_redirect_uris(&["https://relay.example/cb"]);
    assert_eq!(fake.browser_get(&url_with("x", None)).0, 400);
    assert_eq!(
        fake.browser_get(&url_with("redirect_uri", Some("https://relay.example/cb")))
            .0,
        302
    );
}

#[test]
fn authorize_without_account_fails_and_login_as_picks_user() {
    let fake = FakeWithings::start();
    assert_eq!(
        fake.browser_get(&authorize_url(&fake, REDIRECT, "user.metrics", "s"))
            .0,
        400
    );
    fake.add_user(1);
    fake.add_user(2);
    let v = exchange(&fake, &get_code(&fake, REDIRECT), REDIRECT);
    assert_eq!(v["body"]["userid"], "1", "default: first added user");
    fake.login_as(2);
    let v = exchange(&fake, &get_code(&fake, REDIRECT), REDIRECT);
    assert_eq!(v["body"]["userid"], "2");
}

#[test]
fn demo_mode_authorizes_the_demo_user() {
    let fake = FakeWithings::start();
    let url = format!(
        "{}&mode=demo",
        authorize_url(&fake, REDIRECT, "user.metrics", "d")
    );
    let (status, loc) = fake.browser_get(&url);
    assert_eq!(status, 302);
    let code = query_param(&loc.unwrap(), "code").unwrap();
    let v = exchange(&fake, &code, REDIRECT);
    assert_eq!(v["body"]["userid"], DEMO_USERID.to_string());
    assert!(fake.current_tokens(DEMO_USERID).is_some());
}
