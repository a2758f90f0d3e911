//! Hostile or broken requests from the internet: each gets the right
//! status, causes no Withings call, and writes nothing outside the state
//! dir.

use crate::fake_withings::{Endpoint, FakeWithings};
use crate::support;
use crate::support::relay::{http, start_linked, Relay, TestDir};

const USER: u64 = 6_060_001;
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out.sort();
    out
}

fn post(relay: &Relay, path: &str, body: &[u8]) -> u16 {
    http(relay.port, "POST", path, &[FORM], body).0
}

#[test]
fn malformed_and_hostile_requests_get_clear_statuses_and_touch_nothing() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("bad-input");
    let relay = start_linked(&fake, &dir, USER, &[]);
    let calls_before = fake.calls().len();
    let files_before = files_under(dir.path());
    let hook = relay.notify_path();
    let outside = dir
        .path()
        .parent()
        .unwrap()
        .join("withings-relay-escape-check");

    // Malformed bodies: 400 with a reason.
    for (body, reason) in [
        (&b""[..], "no userid"),
        (b"appli=1&startdate=1", "no userid"),
        (b"userid=6060001", "no appli"),
        (b"userid=6060001&appli=one", "appli"),
        (b"userid=6060001&appli=1&startdate=soon", "startdate"),
        (b"\xff\xfe\x00garbage\x00", "userid"),
    ] {
        let (status, text) = http(relay.port, "POST", &hook, &[FORM], body);
        assert_eq!(status, 400, "{body:?}");
        assert!(text.contains(reason), "{body:?}: {text}");
    }
    // Path traversal through the user id never becomes a file.
    for userid in [
        "..%2F..%2Fwithings-relay-escape-check",
        "../../etc/passwd",
        "6060001%00",
        "-1",
    ] {
        let body = format!("userid={userid}&appli=1");
        assert_eq!(post(&relay, &hook, body.as_bytes()), 400, "{userid}");
    }
    // Oversize: refused before the body is read, whether announced or not.
    assert_eq!(post(&relay, &hook, &vec![b'a'; 64 * 1024]), 413);
    let (status, _) = http(
        relay.port,
        "POST",
        &hook,
        &[FORM, ("Content-Length", "99999999")],
        b"userid=1",
    );
    assert_eq!(status, 413);
    // Wrong methods, wrong paths, a wrong secret.
    assert_eq!(http(relay.port, "PUT", &hook, &[], b"").0, 405);
    assert_eq!(http(relay.port, "DELETE", &hook, &[], b"").0, 405);
    assert_eq!(http(relay.port, "POST", "/oauth/callback", &[], b"").0, 405);
    assert_eq!(http(relay.port, "GET", "/", &[], b"").0, 404);
    assert_eq!(http(relay.port, "GET", "/notify/", &[], b"").0, 404);
    assert_eq!(
        post(&relay, &format!("{hook}x"), b"userid=6060001&appli=1"),
        404
    );
    assert_eq!(
        post(
            &relay,
            "/notify/../../state/webhook-secret",
            b"userid=6060001&appli=1"
        ),
        404
    );
    assert_eq!(
        post(
            &relay,
            "/notify/00000000000000000000000000000000",
            b"userid=6060001&appli=1"
        ),
        404
    );
    // Callbacks that were not started by `authorize`.
    for query in [
        "",
        "?code=abc",
        "?code=abc&state=../../users/6060001.json",
        "?code=abc&state=0123456789abcdef0123456789abcdef",
    ] {
        let (status, page) = http(
            relay.port,
            "GET",
            &format!("/oauth/callback{query}"),
            &[],
            b"",
        );
        assert_eq!(status, 400, "{query}");
        assert!(
            page.contains("withings-relay authorize"),
            "the page says what to do: {page}"
        );
    }
    // A relay that still works afterwards.
    assert_eq!(http(relay.port, "HEAD", &hook, &[], b"").0, 200);

    assert_eq!(
        fake.calls().len(),
        calls_before,
        "no Withings call was made"
    );
    assert_eq!(relay.queued(), 0);
    assert!(!outside.exists());
    let files_after: Vec<String> = files_under(dir.path())
        .into_iter()
        .filter(|f| !f.ends_with("relay.log"))
        .collect();
    let files_before: Vec<String> = files_before
        .into_iter()
        .filter(|f| !f.ends_with("relay.log"))
        .collect();
    assert_eq!(files_after, files_before, "no file was created or removed");
    assert!(relay
        .log_text()
        .contains("refused a malformed notification"));
}

#[test]
fn an_authorization_link_works_once() {
    let fake = FakeWithings::start();
    fake.add_user(USER);
    let dir = TestDir::new("link-once");
    let relay = Relay::start(&fake, dir.path(), &[]);
    fake.login_as(USER);
    let out = relay.run(&["authorize"]);
    let url = String::from_utf8(out.stdout).unwrap();
    let (_, location) = fake.browser_get(url.trim());
    let path = location
        .unwrap()
        .strip_prefix(&relay.public_url())
        .unwrap()
        .to_string();
    assert_eq!(http(relay.port, "GET", &path, &[], b"").0, 200);
    let (status, page) = http(relay.port, "GET", &path, &[], b"");
    assert_eq!(status, 400, "a replayed callback is refused");
    assert!(page.contains("already used"), "{page}");
}

#[test]
fn a_refused_authorization_says_what_to_do_next() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("denied");
    let relay = Relay::start(&fake, dir.path(), &[]);
    let out = relay.run(&["authorize"]);
    let url = String::from_utf8(out.stdout).unwrap();
    let state = url
        .trim()
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let (status, page) = http(
        relay.port,
        "GET",
        &format!("/oauth/callback?error=access_denied&state={state}"),
        &[],
        b"",
    );
    assert_eq!(status, 400);
    assert!(
        page.contains("access_denied") && page.contains("withings-relay authorize"),
        "{page}"
    );
    assert_eq!(fake.count(Endpoint::Token, ""), 0, "no token call");
}

#[test]
fn a_client_that_never_finishes_its_body_does_not_hold_up_withings() {
    use std::io::Write;
    let fake = FakeWithings::start();
    let dir = TestDir::new("slow-client");
    let relay = start_linked(&fake, &dir, USER, &[]);
    // Tried: three connections announce a body and never send it.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", relay.port)).unwrap();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\nuserid=",
            relay.notify_path()
        );
        s.write_all(head.as_bytes()).unwrap();
        stalled.push(s);
    }
    // Withings' own notification is still answered (a blocked loop would
    // leave it unanswered until the harness gives up).
    assert_eq!(
        relay.notify(&support::relay::notification_form(&fake, USER)),
        200
    );
    drop(stalled);
}
