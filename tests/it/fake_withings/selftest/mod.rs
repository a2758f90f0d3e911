//! Self-tests of the fake Withings server, over real HTTP: one file per
//! endpoint, as `Endpoint` names them, then the faults and the server
//! itself. The helpers below speak to the fake as a client would.

mod authorize;
mod faults;
mod measure;
mod notify;
mod server;
mod token;

use crate::fake_withings::{FakeWithings, CLIENT_ID, CLIENT_SECRET, INVALID_TOKEN_ERROR};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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
