//! `authorize --paste`: linking from a terminal with no `serve` running.
//! The real binary prints the link; the fake Withings plays the browser
//! that follows it and lands on a redirect URL where nothing answers; the
//! test pastes that address into the binary's stdin.

use crate::fake_withings::{Endpoint, FakeWithings, Group};
use crate::support::relay::{command, wait_for, Relay, TestDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

const USER: u64 = 3_030_001;

/// Registered in the "dashboard" (the fake checks it); port 9 (discard):
/// nothing answers there, as with a LAN callback and no relay listening.
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

/// Runs `authorize --paste` on `state`; `paste` gets the printed link and
/// returns what is typed into stdin.
fn authorize_paste(
    fake: &FakeWithings,
    state: &Path,
    paste: impl FnOnce(&str) -> String,
) -> Output {
    let mut child = command()
        .args(["--state-dir", &state.display().to_string()])
        .args(["--api-url", &fake.url(), "--account-url", &fake.url()])
        .args(["authorize", "--paste", "--redirect-url", REDIRECT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run withings-relay");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut link = String::new();
    stdout.read_line(&mut link).unwrap();
    let typed = paste(link.trim());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(typed.as_bytes()).unwrap();
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let mut out = child.wait_with_output().unwrap();
    out.stdout = [link.into_bytes(), rest].concat();
    out
}

/// Follows the link as the user's browser; returns where it landed.
fn landed(fake: &FakeWithings, link: &str) -> String {
    let (status, location) = fake.browser_get(link);
    assert_eq!(status, 302, "authorize2 redirects");
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    location
}

fn state_of(link: &str) -> String {
    let query = link.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

fn user_file(state: &Path) -> PathBuf {
    state.join(format!("users/{USER}.json"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn setup(name: &str) -> (FakeWithings, TestDir, PathBuf) {
    let fake = FakeWithings::start();
    fake.set_redirect_uris(&[REDIRECT]);
    fake.login_as(USER);
    let dir = TestDir::new(name);
    let state = dir.path().join("state");
    (fake, dir, state)
}

/// Tried: the landed address pasted as is. Checked: exit 0, the user file
/// holds exactly the tokens the fake issued, a sync cursor exists, the
/// link's state is used up, stdout has the link then who was linked, and
/// no notification subscription was made. Then the same address pasted
/// into a second run: refused, nothing traded, the user file unchanged.
#[test]
fn a_pasted_landing_links_the_user_once() {
    let (fake, _dir, state) = setup("paste");
    let mut first = String::new();
    let out = authorize_paste(&fake, &state, |link| {
        first = landed(&fake, link);
        format!("{first}\n")
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Foauth%2Fcallback"));
    assert_eq!(
        lines[1],
        format!("Withings user {USER} is linked to this relay.")
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(user_file(&state)).unwrap()).unwrap();
    let (access, refresh) = fake.current_tokens(USER).unwrap();
    assert_eq!(stored["access_token"], access);
    assert_eq!(stored["refresh_token"], refresh);
    assert!(state.join(format!("sync/{USER}.json")).exists());
    assert_eq!(std::fs::read_dir(state.join("auth")).unwrap().count(), 0);
    assert!(
        fake.subscriptions(USER).is_empty(),
        "serve subscribes, not --paste"
    );

    let before = std::fs::read(user_file(&state)).unwrap();
    let exchanges = fake.count(Endpoint::Token, "requesttoken");
    let again = authorize_paste(&fake, &state, |_| format!("{first}\n"));
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(
        err.contains("no state this relay issued, or one already used"),
        "{err}"
    );
    assert_eq!(
        fake.count(Endpoint::Token, "requesttoken"),
        exchanges,
        "no exchange tried"
    );
    assert_eq!(std::fs::read(user_file(&state)).unwrap(), before);
}

/// Tried: the address with blank lines, spaces and a CRLF around it.
/// Checked: accepted, the user linked with the fake's tokens.
#[test]
fn surrounding_whitespace_is_ignored() {
    let (fake, _dir, state) = setup("paste-space");
    let out = authorize_paste(&fake, &state, |link| {
        format!("\n  \t{}  \r\n", landed(&fake, link))
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(user_file(&state)).unwrap()).unwrap();
    assert_eq!(stored["access_token"], fake.current_tokens(USER).unwrap().0);
}

/// Tried: a state this relay never issued (the code is real), a refusal
/// (`error=access_denied` with the right state), and a real landing
/// pasted after the code's 30 s. Checked: exit 1 with a message saying
/// which, and no user stored.
#[test]
fn an_unknown_state_or_a_refusal_links_nothing() {
    let (fake, _dir, state) = setup("paste-refused");
    let forged = authorize_paste(&fake, &state, |link| {
        let landing = landed(&fake, link);
        let real = state_of(link);
        landing.replace(&real, &"0".repeat(real.len())) + "\n"
    });
    assert_eq!(forged.status.code(), Some(1));
    assert!(
        text(&forged.stderr).contains("no state this relay issued"),
        "{}",
        text(&forged.stderr)
    );
    assert!(!user_file(&state).exists());

    let denied = authorize_paste(&fake, &state, |link| {
        format!("{REDIRECT}?error=access_denied&state={}\n", state_of(link))
    });
    assert_eq!(denied.status.code(), Some(1));
    let err = text(&denied.stderr);
    assert!(
        err.contains("Withings did not grant access (access_denied)"),
        "{err}"
    );
    assert!(!user_file(&state).exists());

    let late = authorize_paste(&fake, &state, |link| {
        let landing = landed(&fake, link);
        fake.advance_clock(31);
        landing + "\n"
    });
    assert_eq!(late.status.code(), Some(1));
    let err = text(&late.stderr);
    assert!(err.contains("a code works once, for 30 seconds"), "{err}");
    let users = std::fs::read_dir(state.join("users")).map_or(0, |d| d.count());
    assert_eq!(users, 0, "no user stored at all");
}

/// Tried: the whole no-open-port setup. `serve` runs with no public URL
/// (poll-only mode) and a poll far away (1 h), a weigh-in waits at
/// Withings, and the account is linked from a terminal with `--paste`
/// while serve runs; later another weigh-in comes and `sync` is run, as
/// the DNS watcher would. Checked: each weigh-in comes out once, soon,
/// though no poll is due (the paste and `sync` ask serve to sync), nothing
/// is ever subscribed, and no queue or request file is left.
#[test]
fn poll_only_mode_runs_end_to_end_with_authorize_paste() {
    let (fake, dir, state) = setup("paste-poll-only");
    let mut relay = Relay::configure(&fake, dir.path(), &["--poll", "1h"]);
    relay.without_public_url();
    relay.restart();
    relay.wait_log("poll-only mode");
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 60, t - 60, 70_100, -3));

    let out = authorize_paste(&fake, &state, |link| format!("{}\n", landed(&fake, link)));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = relay.wait_lines(1);
    assert!(lines[0].contains(r#""value":70.1"#), "{}", lines[0]);

    fake.advance_clock(60);
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(2, t - 5, t - 5, 70_300, -3));
    let asked = relay.run(&["sync", "--user", &USER.to_string()]);
    assert!(asked.status.success(), "{}", text(&asked.stderr));
    relay.wait_lines(2);
    wait_for("the request taken and the outbox drained", || {
        let left = std::fs::read_dir(state.join("queue")).unwrap().count();
        (left == 0 && relay.outbox_records() == 0).then_some(())
    });
    assert_eq!(relay.grpids(), [1, 2], "each weigh-in once");
    assert_eq!(fake.count(Endpoint::Notify, "subscribe"), 0);
    assert!(fake.subscriptions(USER).is_empty());
}
