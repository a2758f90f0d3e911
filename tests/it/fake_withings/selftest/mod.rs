//! Self-tests of the fake Withings server, over real HTTP.

use crate::fake_withings::*;

use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// POST a form; returns (HTTP status, Content-Length header, body text).
fn post_raw(
    url: &str,
    bearer: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Option<usize>, String) {
    let mut req = agent().post(url);
    if let Some(t) = bearer {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.send_form(form.iter().copied()).expect("transport");
    let status = resp.status().as_u16();
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp.body_mut().read_to_string().expect("body");
    (status, len, body)
}

/// POST a form to an API path; asserts HTTP 200 and returns the parsed JSON envelope.
fn api(fake: &FakeWithings, path: &str, bearer: Option<&str>, form: &[(&str, &str)]) -> Value {
    let (status, _, body) = post_raw(&format!("{}{path}", fake.url()), bearer, form);
    assert_eq!(status, 200, "API errors are carried on HTTP 200: {body}");
    serde_json::from_str(&body).expect("JSON envelope")
}

fn authorize_url(fake: &FakeWithings, redirect: &str, scope: &str, state: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("scope", scope)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", state)
        .finish();
    format!("{}/oauth2_user/authorize2?{q}", fake.url())
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Visit authorize2 as the browser and return the code from the redirect.
fn get_code(fake: &FakeWithings, redirect: &str) -> String {
    let (status, loc) = fake.browser_get(&authorize_url(fake, redirect, "user.metrics", "st"));
    assert_eq!(status, 302);
    query_param(&loc.expect("Location"), "code").expect("code")
}

fn exchange(fake: &FakeWithings, code: &str, redirect: &str) -> Value {
    api(
        fake,
        "/v2/oauth2",
        None,
        &[
            ("action", "requesttoken"),
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", redirect),
        ],
    )
}

fn refresh(fake: &FakeWithings, refresh_token: &str) -> Value {
    api(
        fake,
        "/v2/oauth2",
        None,
        &[
            ("action", "requesttoken"),
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", refresh_token),
        ],
    )
}

fn pair(v: &Value) -> (String, String) {
    assert_eq!(v["status"], 0, "{v}");
    (
        v["body"]["access_token"].as_str().unwrap().to_string(),
        v["body"]["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// Full OAuth flow for the logged-in user; returns (access, refresh).
fn login(fake: &FakeWithings) -> (String, String) {
    let code = get_code(fake, REDIRECT);
    pair(&exchange(fake, &code, REDIRECT))
}

fn getmeas(fake: &FakeWithings, token: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("action", "getmeas")];
    form.extend_from_slice(extra);
    api(fake, "/measure", Some(token), &form)
}

fn grpids(v: &Value) -> Vec<i64> {
    v["body"]["measuregrps"]
        .as_array()
        .expect("measuregrps")
        .iter()
        .map(|g| g["grpid"].as_i64().unwrap())
        .collect()
}

fn assert_invalid_token(v: &Value) {
    assert_eq!(v["status"], 401, "{v}");
    assert_eq!(v["error"], INVALID_TOKEN_ERROR);
    assert_eq!(v["body"], serde_json::json!({}));
}

/// A local webhook receiver: answers HEAD with `head_status`, POST with `post_status`,
/// and records POSTs as (url, body).
struct Hook {
    url: String,
    posts: Arc<Mutex<Vec<(String, String)>>>,
    heads: Arc<Mutex<usize>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Hook {
    fn start(head_status: u16, post_status: u16) -> Hook {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(0));
        let thread = {
            let (server, posts, heads) = (server.clone(), posts.clone(), heads.clone());
            std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let status = if req.method() == &tiny_http::Method::Head {
                        *heads.lock().unwrap() += 1;
                        head_status
                    } else {
                        let mut body = String::new();
                        req.as_reader().read_to_string(&mut body).unwrap();
                        posts.lock().unwrap().push((req.url().to_string(), body));
                        post_status
                    };
                    let _ = req.respond(tiny_http::Response::empty(status));
                }
            })
        };
        Hook {
            url: format!("http://127.0.0.1:{port}/withings/hook?token=s3cret"),
            posts,
            heads,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A URL on which nothing listens (connection refused).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/hook")
}

// ------------------------------------------------------------------------------- authorize

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

// ----------------------------------------------------------------------------------- token

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

// --------------------------------------------------------------------------------- measure

#[test]
fn getmeas_requires_a_valid_token() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    assert_invalid_token(&api(&fake, "/measure", None, &[("action", "getmeas")]));
    assert_invalid_token(&getmeas(
        &fake,
        "0123456789abcdef0123456789abcdef01234567",
        &[],
    ));
    // Legacy: access_token as a form field.
    let v = api(
        &fake,
        "/measure",
        None,
        &[("action", "getmeas"), ("access_token", a.as_str())],
    );
    assert_eq!(v["status"], 0);
    let v = getmeas(&fake, &a, &[("action", "getmeasure")]);
    assert_eq!(v["status"], 503, "unknown action");
}

#[test]
fn getmeas_answers_the_documented_shape() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(
        1,
        Group::weight(2_726_375_354, 1_700_000_000, 1_700_000_100, 65750, -3),
    );
    let mut manual = Group::weight(11, 1_700_000_500, 1_700_000_600, 70000, -3);
    manual.attrib = 2;
    manual.deviceid = None;
    fake.add_group(1, manual);
    fake.advance_clock(1000);
    let now = fake.now();
    let v = getmeas(&fake, &a, &[("category", "1")]);
    assert_eq!(v["status"], 0);
    let b = &v["body"];
    let updatetime = b["updatetime"].as_u64().expect("integer updatetime");
    assert!(updatetime >= now && updatetime <= now + 2);
    assert_eq!(b["timezone"], "Europe/Paris");
    assert_eq!(b["more"], 0);
    assert_eq!(b["offset"], 0);
    let g = &b["measuregrps"][0];
    assert_eq!(g["grpid"], 2_726_375_354_i64);
    assert_eq!(g["attrib"], 0);
    assert_eq!(g["date"], 1_700_000_000);
    assert_eq!(g["created"], 1_700_000_000);
    assert_eq!(g["modified"], 1_700_000_100);
    assert_eq!(g["category"], 1);
    assert_eq!(g["deviceid"], FAKE_DEVICEID);
    assert_eq!(g["hash_deviceid"], FAKE_DEVICEID);
    assert_eq!(g["model"], "Body+");
    assert!(g["modelid"].is_number());
    assert!(g["comment"].is_null());
    assert_eq!(g["apppfmid"], 7);
    assert_eq!(
        g["measures"],
        serde_json::json!([{"value": 65750, "type": 1, "unit": -3, "algo": 0, "fm": 3}])
    );
    let m = &b["measuregrps"][1];
    assert_eq!(m["attrib"], 2);
    assert!(m["deviceid"].is_null() && m["hash_deviceid"].is_null() && m["model"].is_null());
}

#[test]
fn getmeas_filters_by_category_lastupdate_dates_and_types() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(1, 1000, 1500, 80000, -3));
    fake.add_group(1, Group::blood_pressure(2, 2000, 2500, 120, 80, 60));
    let mut goal = Group::weight(3, 3000, 3500, 75000, -3);
    goal.category = 2;
    fake.add_group(1, goal);
    fake.add_group(2, Group::weight(4, 1000, 1500, 90000, -3));

    assert_eq!(
        grpids(&getmeas(&fake, &a, &[])),
        vec![1, 2, 3],
        "own groups only"
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("category", "1")])),
        vec![1, 2]
    );
    assert_eq!(grpids(&getmeas(&fake, &a, &[("category", "2")])), vec![3]);
    // lastupdate is inclusive.
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("lastupdate", "2500")])),
        vec![2, 3]
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("lastupdate", "2501")])),
        vec![3]
    );
    assert_eq!(
        grpids(&getmeas(
            &fake,
            &a,
            &[("startdate", "1000"), ("enddate", "2000")]
        )),
        vec![1, 2]
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("startdate", "1001")])),
        vec![2, 3]
    );
    let v = getmeas(&fake, &a, &[("meastypes", "9,10")]);
    assert_eq!(grpids(&v), vec![2]);
    let types: Vec<i64> = v["body"]["measuregrps"][0]["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_i64().unwrap())
        .collect();
    assert_eq!(types, vec![10, 9], "only the requested measures");
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("meastype", "1")])),
        vec![1, 3]
    );
    let v = getmeas(&fake, &a, &[("lastupdate", "soon")]);
    assert_eq!(v["status"], 503);
}

#[test]
fn lastupdate_is_inclusive_by_default_and_exclusive_on_request() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(1, 900, 1000, 80000, -3));
    fake.add_group(1, Group::blood_pressure(2, 1000, 1000, 120, 80, 60));
    fake.add_group(1, Group::weight(3, 1000, 1001, 80100, -3));
    let at = |l: &str| grpids(&getmeas(&fake, &a, &[("lastupdate", l)]));
    assert_eq!(
        at("1000"),
        vec![1, 2, 3],
        "inclusive: the boundary second is returned"
    );
    fake.set_lastupdate_exclusive(true);
    assert_eq!(
        at("1000"),
        vec![3],
        "exclusive: only after the boundary second"
    );
    assert_eq!(at("999"), vec![1, 2, 3]);
    fake.set_lastupdate_exclusive(false);
    assert_eq!(at("1001"), vec![3]);
}

#[test]
fn raw_groups_are_served_as_given_and_filtered_on_what_is_readable() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(1, 900, 1000, 80000, -3));
    fake.add_group(1, Group::weight(3, 1900, 2000, 80100, -3));
    let odd = serde_json::json!({
        "grpid": 2, "date": 1400, "modified": 1500, "category": 1, "model": 10,
        "measures": [{"value": "abc", "type": 1, "unit": -3}]
    });
    fake.add_raw_group(1, odd.clone());
    // No modified: date stands in, as a 2014 answer had it.
    fake.add_raw_group(
        1,
        serde_json::json!({"grpid": 4, "date": 1700, "category": 1}),
    );
    let mut goal = odd.clone();
    goal["grpid"] = 5.into();
    goal["category"] = 2.into();
    fake.add_raw_group(1, goal);

    let v = getmeas(&fake, &a, &[("category", "1")]);
    assert_eq!(
        grpids(&v),
        vec![1, 2, 4, 3],
        "sorted by modified among the typed ones"
    );
    assert_eq!(v["body"]["measuregrps"][1], odd, "served exactly as given");
    assert_eq!(grpids(&getmeas(&fake, &a, &[("category", "2")])), vec![5]);
    let at = |l: &str| grpids(&getmeas(&fake, &a, &[("category", "1"), ("lastupdate", l)]));
    assert_eq!(at("1500"), vec![2, 4, 3]);
    assert_eq!(at("1700"), vec![4, 3]);
    fake.set_lastupdate_exclusive(true);
    assert_eq!(at("1500"), vec![4, 3]);
    assert_eq!(
        grpids(&getmeas(
            &fake,
            &a,
            &[("category", "1"), ("startdate", "1401")]
        )),
        vec![4, 3]
    );
}

#[test]
fn getmeas_sorts_and_paginates_with_offset_and_more() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    // Inserted out of order; sorted by (modified, grpid).
    for (grpid, modified) in [(50, 300), (10, 100), (40, 200), (30, 200), (20, 100)] {
        fake.add_group(1, Group::weight(grpid, modified - 50, modified, 70000, -3));
    }
    fake.set_page_size(2);
    let p1 = getmeas(&fake, &a, &[]);
    assert_eq!(grpids(&p1), vec![10, 20]);
    assert_eq!(p1["body"]["more"], 1);
    assert_eq!(p1["body"]["offset"], 2);
    let p2 = getmeas(&fake, &a, &[("offset", "2")]);
    assert_eq!(grpids(&p2), vec![30, 40]);
    assert_eq!(p2["body"]["more"], 1);
    assert_eq!(p2["body"]["offset"], 4);
    let p3 = getmeas(&fake, &a, &[("offset", "4")]);
    assert_eq!(grpids(&p3), vec![50]);
    assert_eq!(p3["body"]["more"], 0);

    fake.set_more_as_bool(true);
    assert_eq!(getmeas(&fake, &a, &[])["body"]["more"], true);
    assert_eq!(
        getmeas(&fake, &a, &[("offset", "4")])["body"]["more"],
        false
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("offset", "9")])),
        Vec::<i64>::new()
    );
}

#[test]
fn add_group_with_same_grpid_updates_in_place_and_remove_deletes() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(9, 1000, 1000, 80000, -3));
    fake.add_group(1, Group::weight(8, 1100, 1100, 81000, -3));
    fake.add_group(1, Group::weight(9, 1000, 2000, 79000, -3));
    let v = getmeas(&fake, &a, &[("lastupdate", "1500")]);
    assert_eq!(grpids(&v), vec![9]);
    assert_eq!(v["body"]["measuregrps"][0]["measures"][0]["value"], 79000);
    assert_eq!(grpids(&getmeas(&fake, &a, &[])), vec![8, 9]);
    assert!(fake.remove_group(1, 8));
    assert_eq!(grpids(&getmeas(&fake, &a, &[])), vec![9]);
}

// ---------------------------------------------------------------------------------- notify

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
        let v = api(
            &fake,
            "/notify",
            Some(&a),
            &[
                ("action", "subscribe"),
                ("callbackurl", url),
                ("appli", "1"),
            ],
        );
        assert_eq!(v["status"], 293, "{url}");
        assert_eq!(v["error"], "The callback URL is either unknown or invalid");
    }
    assert_eq!(
        fake.head_checks(),
        vec![(hook404.url.clone(), Some(404)), (dead.clone(), None)]
    );
    assert!(fake.subscriptions(3).is_empty());
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

// ------------------------------------------------------------------------- rate limit etc.

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
