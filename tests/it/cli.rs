//! The command line as a person meets it: help that explains, one-line
//! errors that say how to fix them, and the secret never in argv.

use crate::fake_withings::{FakeWithings, Group, CLIENT_SECRET};
use crate::support::relay::{command, notification_form, start_linked, TestDir};
use std::process::Output;

fn run(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// Help text with its line wrapping undone.
fn help_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A failure is one line on stderr naming what to do, and exit code 1.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("withings-relay: "), "{err}");
    for n in needles {
        assert!(last.contains(n), "{n:?} missing from {last:?}");
    }
}

#[test]
fn help_documents_every_option_with_its_default() {
    let help = help_of(&["--help"]);
    for option in [
        "--state-dir",
        "--public-url",
        "--api-url",
        "--account-url",
        "--client-id",
        "--client-secret-file",
        "--ca-file",
        "--log-level",
        "--version",
    ] {
        assert!(help.contains(option), "{option} missing from --help");
    }
    for text in [
        "WITHINGS_CLIENT_ID",
        "Defaults to /var/lib/withings-relay",
        "Defaults to https://wbsapi.withings.net",
        "serve",
        "authorize",
        "fetch",
        "unlink",
    ] {
        assert!(help.contains(text), "{text:?} missing from --help");
    }
    let serve = help_of(&["serve", "--help"]);
    for text in [
        "--listen",
        "Defaults to 127.0.0.1:8080",
        "LAN address",
        "--output",
        "Defaults to - unless",
        "--appli",
        "Defaults to 1",
        "--mqtt ",
        "--mqtt-password-file",
        "$WITHINGS_MQTT_PASSWORD",
        "--mqtt-ca",
        "--mqtt-timeout",
        "Defaults to 10s",
        "--mqtt-prefix",
        "Defaults to withings.",
        "--mqtt-client-id",
        "--ha-discovery-prefix",
        "Defaults to homeassistant",
        "--exec ",
        "--exec-arg",
        "--exec-timeout",
        "Defaults to 30",
    ] {
        assert!(serve.contains(text), "{text:?} missing from serve --help");
    }
    for hidden in ["--retry-first", "--check-every", "--notify-spacing"] {
        assert!(
            !serve.contains(hidden),
            "a test-only option stays out of --help: {hidden}"
        );
    }
    let fetch = help_of(&["fetch", "--help"]);
    assert!(fetch.contains("--since") && fetch.contains("--user"));
    assert!(help_of(&["unlink", "--help"]).contains("--user"));
}

#[test]
fn version_prints_name_and_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("withings-relay {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_configuration_stops_with_one_line_that_says_how_to_fix_it() {
    let dir = TestDir::new("config");
    let state = dir.path().join("state").display().to_string();
    let no_id = command()
        .env_remove("WITHINGS_CLIENT_ID")
        .args([
            "--state-dir",
            &state,
            "--public-url",
            "https://relay.example.org",
            "authorize",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&no_id, &["WITHINGS_CLIENT_ID", "--client-id"]);

    let no_secret = command()
        .env_remove("WITHINGS_CLIENT_SECRET")
        .args([
            "--state-dir",
            &state,
            "--public-url",
            "https://r.example.org",
            "serve",
        ])
        .output()
        .unwrap();
    assert_one_line_error(
        &no_secret,
        &["WITHINGS_CLIENT_SECRET", "--client-secret-file"],
    );

    assert_one_line_error(
        &run(&["--state-dir", &state, "authorize"]),
        &["--public-url is required"],
    );
    assert_one_line_error(
        &run(&[
            "--state-dir",
            &state,
            "--public-url",
            "relay.example.org",
            "authorize",
        ]),
        &["--public-url", "https://"],
    );
    assert_one_line_error(
        &run(&[
            "--state-dir",
            &state,
            "--public-url",
            "https://r.example.org",
            "serve",
            "--appli",
            "16",
        ]),
        &["--appli"],
    );

    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let under_file = blocker.join("state").display().to_string();
    assert_one_line_error(
        &run(&[
            "--state-dir",
            &under_file,
            "--public-url",
            "https://r.example.org",
            "authorize",
        ]),
        &["a-file"],
    );

    let out = run(&["--state-dir", &state, "fetch"]);
    assert_one_line_error(&out, &["no Withings account is linked", "authorize"]);
    let out = run(&["--state-dir", &state, "fetch", "--user", "12"]);
    assert_one_line_error(&out, &["user 12 is not linked"]);
    // A bad value exits 1 like every other; 2 is for a command line that
    // does not parse (README, "Exit codes").
    let out = run(&["--state-dir", &state, "--log-level", "loud", "fetch"]);
    assert_one_line_error(&out, &["--log-level"]);
    let out = run(&["serve", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--help"));
}

#[test]
fn a_taken_port_is_reported_with_the_flag_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TestDir::new("port");
    let out = run(&[
        "--state-dir",
        &dir.path().display().to_string(),
        "--public-url",
        "https://r.example.org",
        "serve",
        "--listen",
        &addr,
    ]);
    assert_one_line_error(&out, &["cannot listen on", "--listen"]);
}

#[test]
fn authorize_prints_only_the_link_and_shared_options_may_follow_the_command() {
    let dir = TestDir::new("authorize");
    let state = dir.path().display().to_string();
    let out = run(&[
        "authorize",
        "--demo",
        "--state-dir",
        &state,
        "--public-url",
        "https://relay.example.org/w",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let url = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(url.lines().count(), 1);
    assert!(url.starts_with("https://account.withings.com/oauth2_user/authorize2?response_type=code&client_id=fake-client-id&scope=user.metrics&redirect_uri=https%3A%2F%2Frelay.example.org%2Fw%2Foauth%2Fcallback&state="), "{url}");
    assert!(url.trim_end().ends_with("&mode=demo"));
    assert!(!url.contains(CLIENT_SECRET) && !stderr(&out).contains(CLIENT_SECRET));
    assert!(
        stderr(&out).contains("10 minutes"),
        "says how long the link works"
    );
    assert!(
        !stderr(&out).contains("Withings will refuse"),
        "https on 443 is fine"
    );
}

#[test]
fn fetch_prints_the_linked_users_measurements_as_json_lines() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("fetch");
    let user = 7_070_001;
    let relay = start_linked(&fake, &dir, user, &[]);
    let t = fake.now() as i64;
    fake.add_group(
        user,
        Group::weight(1, t - 9 * 86_400, t - 9 * 86_400, 90_000, -3),
    );
    fake.add_group(user, Group::weight(2, t - 100, t - 100, 89_500, -3));

    let recent = relay.run(&["fetch"]);
    assert!(recent.status.success(), "{}", stderr(&recent));
    let text = String::from_utf8(recent.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "the default window is 7 days: {text}"
    );
    assert!(text.contains(r#""value":89.5"#));

    let since = (t - 10 * 86_400).to_string();
    let all = relay.run(&["fetch", "--user", &user.to_string(), "--since", &since]);
    assert_eq!(String::from_utf8(all.stdout).unwrap().lines().count(), 2);

    // fetch takes nothing away from serve: a notification still emits the
    // group in serve's own window (the last 24 h before linking).
    assert_eq!(relay.notify(&notification_form(&fake, user)), 200);
    assert_eq!(relay.wait_lines(1).len(), 1);
}

#[test]
fn a_hook_argument_that_looks_like_a_shared_option_goes_to_the_hook() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("exec-arg-option");
    let user = 7_070_002;
    // Once read as `--log-level debug` after the command, and refused.
    let relay = start_linked(
        &fake,
        &dir,
        user,
        &[
            "--exec",
            "/bin/echo",
            "--exec-arg",
            "--log-level",
            "--exec-arg",
            "debug",
        ],
    );
    let t = fake.now() as i64;
    fake.add_group(user, Group::weight(1, t - 5, t - 5, 70_000, -3));
    assert_eq!(relay.notify(&notification_form(&fake, user)), 200);
    relay.wait_log("exec /bin/echo stdout: --log-level debug");
}
