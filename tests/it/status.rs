//! `withings-relay status`, text and `--json`, with its exit code, in each
//! state issue #10 names: healthy, needs re-authorization, stale sync,
//! outbox backlog, unlinked, no users. States the relay produces today
//! (needs re-authorization, backlog) come from driving the real binary
//! against the fake Withings; the others are written into the state dir
//! the way the relay writes them (health/, serve.json, users/, queue/).
//! Every run checks that no token and no webhook secret is printed.

use crate::fake_withings::{FakeWithings, Group};
use crate::support::relay::{
    command, free_port, notification_form, start_linked, wait_for, Relay, TestDir,
};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USER: u64 = 6_060_001;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Writes a state file as the relay does: a temp file renamed over it.
fn put(state: &Path, rel: &str, value: &Value) {
    let path = state.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let temp = path.with_file_name(".tmp-test");
    std::fs::write(&temp, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    std::fs::rename(&temp, &path).unwrap();
}

/// A linked user's token file, in the relay's format.
fn put_user(state: &Path, id: u64, needs_reauth: bool) {
    put(
        state,
        &format!("users/{id}.json"),
        &json!({
            "userid": id.to_string(),
            "access_token": format!("access-token-of-{id}"),
            "access_expires_at": unix_now() + 3 * 3600,
            "refresh_token": format!("refresh-token-of-{id}"),
            "scope": "user.metrics",
            "linked_at": unix_now() - 86_400,
            "needs_reauth": needs_reauth,
        }),
    );
}

fn put_serve_info(state: &Path, poll_secs: u64, started_ago: i64) {
    put(
        state,
        "serve.json",
        &json!({
            "pid": 1, "started_at": unix_now() - started_ago, "poll_secs": poll_secs,
            "webhooks": true, "applis": [1], "outputs": ["output"],
        }),
    );
}

/// Runs `status` on `state`: exit code, stdout, stderr. Fails the test if
/// any token or the webhook secret found in the state dir is printed.
fn status(state: &Path, json: bool) -> (i32, String, String) {
    let mut cmd = command();
    cmd.arg("--state-dir").arg(state).arg("status");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run withings-relay status");
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    for secret in secrets_in(state) {
        assert!(
            !stdout.contains(&secret) && !stderr.contains(&secret),
            "{secret:?} printed:\n{stdout}{stderr}"
        );
    }
    (out.status.code().unwrap(), stdout, stderr)
}

/// Every token in users/ and the webhook secret.
fn secrets_in(state: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(s) = std::fs::read_to_string(state.join("webhook-secret")) {
        found.push(s.trim().to_string());
    }
    for entry in std::fs::read_dir(state.join("users")).into_iter().flatten() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        if let Ok(user) = serde_json::from_str::<Value>(&text) {
            for key in ["access_token", "refresh_token"] {
                found.extend(user[key].as_str().map(str::to_string));
            }
        }
    }
    found
}

fn status_json(state: &Path) -> (i32, Value) {
    let (code, stdout, _) = status(state, true);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (code, report)
}

fn kinds(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_healthy_relay_says_all_is_well_and_exits_0() {
    // Tried: a user linked through the real flow, then the health and
    // serve.json a polling serve writes after a good sync; the callback URL
    // as last checked carries the webhook secret.
    let fake = FakeWithings::start();
    let dir = TestDir::new("status-healthy");
    let mut relay = start_linked(&fake, &dir, USER, &[]);
    let state = relay.state_dir.clone();
    wait_for("the first sync", || {
        state
            .join(format!("sync/{USER}.json"))
            .exists()
            .then_some(())
    });
    // Stopped, so nothing rewrites what the test puts in place.
    relay.kill9();
    let synced = unix_now() - 60;
    put(
        &state,
        &format!("health/{USER}.json"),
        &json!({
            "last_sync_ok_at": synced,
            "last_notification_at": synced - 5,
            "subscriptions": {
                "checked_at": synced,
                "seen": [{"appli": 1, "callbackurl": relay.notify_url()}],
                "problems": []
            }
        }),
    );
    put_serve_info(&state, 600, 3600);

    let (code, text, stderr) = status(&state, false);
    assert_eq!(code, 0, "{text}{stderr}");
    assert!(text.contains(&format!("user {USER}: linked\n")), "{text}");
    assert!(text.contains("  last sync ok       "), "{text}");
    assert!(text.contains("/notify/…"), "{text}");
    assert!(
        text.contains("  poll               every 10 min; webhooks on"),
        "{text}"
    );
    assert!(text.ends_with("all is well\n"), "{text}");

    let (code, report) = status_json(&state);
    assert_eq!(code, 0);
    assert_eq!(report["ok"], true);
    let user = &report["users"][0];
    assert_eq!(user["userid"], USER.to_string());
    assert_eq!(user["state"], "linked");
    assert_eq!(user["last_sync_ok_at"]["unix"], synced);
    assert!(user["last_sync_ok_at"]["rfc3339"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(user["linked_at"]["unix"].as_i64().is_some());
    assert!(user["access_expires_at"]["unix"].as_i64().unwrap() > synced);
    assert!(user["cursor"]["unix"].as_i64().is_some(), "{user}");
    assert_eq!(user["queued"], json!({"count": 0, "oldest": null}));
    let url = user["subscriptions"]["seen"][0]["callbackurl"]
        .as_str()
        .unwrap();
    assert_eq!(url, format!("{}/notify/…", relay.public_url()));
    assert_eq!(report["stale_after_secs"], 3 * 600 + 600);
    assert_eq!(report["problems"], json!([]));
}

/// A weigh-in a year after linking, when the refresh token is dead: the
/// real relay parks the user and keeps the notification.
pub fn weigh_in_a_year_later(fake: &FakeWithings, relay: &Relay, userid: u64) {
    fake.advance_clock(366 * 24 * 3600);
    let t = fake.now() as i64;
    fake.add_group(userid, Group::weight(1, t - 5, t - 5, 70_000, -3));
    assert_eq!(relay.notify(&notification_form(fake, userid)), 200);
}

#[test]
fn a_user_needing_reauthorization_is_a_problem_while_serve_runs() {
    // Tried: the real relay, a year later, when Withings refuses the
    // refresh token: the user is parked and the notification kept.
    let fake = FakeWithings::start();
    let dir = TestDir::new("status-reauth");
    let relay = start_linked(&fake, &dir, USER, &[]);
    weigh_in_a_year_later(&fake, &relay, USER);
    relay.wait_log("run `withings-relay authorize`");

    let (code, report) = status_json(&relay.state_dir);
    assert_eq!(code, 1);
    assert_eq!(report["ok"], false);
    assert_eq!(report["users"][0]["state"], "needs_reauth");
    assert_eq!(report["users"][0]["queued"]["count"], 1, "kept for later");
    assert!(
        kinds(&report).contains(&"needs_reauth".to_string()),
        "{report}"
    );
    let (code, text, stderr) = status(&relay.state_dir, false);
    assert_eq!(code, 1);
    assert!(
        text.contains(&format!("user {USER}: NEEDS RE-AUTHORIZATION")),
        "{text}"
    );
    assert!(
        text.contains("problems\n  - Withings refused the refresh token"),
        "{text}"
    );
    assert!(stderr.contains("need attention"), "{stderr}");
    assert_eq!(relay.queued(), 1, "status took nothing away");
}

#[test]
fn a_sync_is_stale_after_three_polls_and_a_notification_after_half_an_hour() {
    // Tried: the files of a relay whose syncs stopped two hours ago, with
    // polling every 10 min, then with polling off (where a quiet user is
    // no fault), then with a notification queued an hour ago.
    let dir = TestDir::new("status-stale");
    let state = dir.path().join("state");
    put_user(&state, USER, false);
    put(
        &state,
        &format!("sync/{USER}.json"),
        &json!({"cursor": unix_now() - 9000}),
    );
    put(
        &state,
        &format!("health/{USER}.json"),
        &json!({"last_sync_ok_at": unix_now() - 7200,
                "last_error": {"at": unix_now() - 60, "message": "withings unreachable"}}),
    );
    put_serve_info(&state, 600, 5 * 3600);
    let (code, report) = status_json(&state);
    assert_eq!((code, kinds(&report)), (1, vec!["stale_sync".to_string()]));
    assert_eq!(report["problems"][0]["userid"], USER.to_string());
    assert_eq!(
        report["users"][0]["last_error"]["message"],
        "withings unreachable"
    );
    let (_, text, _) = status(&state, false);
    assert!(
        text.contains("has not synced successfully for more than 40 min"),
        "{text}"
    );

    put_serve_info(&state, 0, 5 * 3600);
    let (code, report) = status_json(&state);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["stale_after_secs"], Value::Null);

    let arrived_at = unix_now() - 3600;
    let arrived = arrived_at as u128 * 1_000_000_000;
    put(
        &state,
        &format!("queue/{arrived:020}-1-0-{USER}.json"),
        &json!({}),
    );
    let (code, report) = status_json(&state);
    assert_eq!((code, kinds(&report)), (1, vec!["queue_stuck".to_string()]));
    assert_eq!(report["queued"]["count"], 1);
    assert_eq!(report["queued"]["oldest"]["unix"], arrived_at);
}

#[test]
fn an_output_whose_broker_is_down_shows_its_backlog() {
    // Tried: the real relay with JSON lines and an MQTT broker on a closed
    // port; a weigh-in reaches the file and waits in the outbox for MQTT.
    // Once that wait is older than 15 minutes (the record's time set back),
    // it needs a person.
    let fake = FakeWithings::start();
    let dir = TestDir::new("status-backlog");
    let mqtt = format!("mqtt://127.0.0.1:{}", free_port());
    let relay = start_linked(&fake, &dir, USER, &["--mqtt", &mqtt]);
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 70_000, -3));
    assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    relay.wait_lines(1);
    assert_eq!(relay.outbox_records(), 1, "kept for mqtt");

    let (_, report) = status_json(&relay.state_dir);
    let outputs = report["outputs"].as_array().unwrap();
    let mqtt_out = outputs.iter().find(|o| o["name"] == "mqtt").expect("mqtt");
    assert_eq!(mqtt_out["waiting"], 1);
    assert!(mqtt_out["oldest"]["unix"].as_i64().unwrap() >= unix_now() - 120);
    let output = outputs
        .iter()
        .find(|o| o["name"] == "output")
        .expect("output");
    assert_eq!(output["waiting"], 0);
    assert!(
        !kinds(&report).contains(&"outbox_backlog".to_string()),
        "not yet"
    );

    let record = std::fs::read_dir(relay.state_dir.join("outbox/records"))
        .unwrap()
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .unwrap()
        .path();
    let old = SystemTime::now() - Duration::from_secs(20 * 60);
    std::fs::File::options()
        .write(true)
        .open(&record)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (code, report) = status_json(&relay.state_dir);
    assert_eq!(code, 1);
    assert!(
        kinds(&report).contains(&"outbox_backlog".to_string()),
        "{report}"
    );
    let (code, text, _) = status(&relay.state_dir, false);
    assert_eq!(code, 1);
    assert!(
        text.contains("  outbox mqtt        1 group(s) waiting, oldest 20 min ago"),
        "{text}"
    );
    assert!(
        text.contains("output mqtt has not delivered 1 measurement group(s)"),
        "{text}"
    );
    assert_eq!(relay.outbox_records(), 1, "status took nothing away");
}

#[test]
fn an_unlinked_user_and_a_damaged_file_are_problems_not_crashes() {
    // Tried: Withings unlinked user 7 (appli 46: tokens gone, health says
    // so), and user 8's token file is torn.
    let dir = TestDir::new("status-unlinked");
    let state = dir.path().join("state");
    put(
        &state,
        "health/7.json",
        &json!({"unlinked": {"at": unix_now() - 600, "action": "unlink"}, "last_sync_ok_at": 5}),
    );
    std::fs::create_dir_all(state.join("users")).unwrap();
    std::fs::write(state.join("users/8.json"), b"{\"userid\":\"8\",").unwrap();

    let (code, report) = status_json(&state);
    assert_eq!(code, 1);
    assert_eq!(kinds(&report), ["unlinked", "damaged"]);
    let users = report["users"].as_array().unwrap();
    assert_eq!(users[0]["userid"], "7");
    assert_eq!(users[0]["state"], "unlinked");
    assert_eq!(users[0]["unlinked"]["action"], "unlink");
    assert_eq!(users[0]["linked_at"], Value::Null, "the tokens are gone");
    assert_eq!(users[1]["userid"], "8");
    assert!(report["problems"][1]["message"]
        .as_str()
        .unwrap()
        .contains("users/8.json"));
    let (code, text, _) = status(&state, false);
    assert_eq!(code, 1);
    assert!(
        text.contains("user 7: UNLINKED\n  unlinked           "),
        "{text}"
    );
    assert!(text.contains("by Withings (unlink)"), "{text}");
}

#[test]
fn no_linked_user_or_no_state_dir_is_said_plainly() {
    // Tried: a state dir `authorize` made but nobody linked; then a path
    // where there is no state dir at all (a wrong --state-dir).
    let dir = TestDir::new("status-empty");
    let state = dir.path().join("state");
    let relay = Relay::configure(&FakeWithings::start(), dir.path(), &[]);
    assert!(relay.run(&["authorize"]).status.success());
    let (code, report) = status_json(&state);
    assert_eq!(code, 1);
    assert_eq!(kinds(&report), ["no_users"]);
    assert_eq!(report["users"], json!([]));
    let (code, text, _) = status(&state, false);
    assert_eq!(code, 1);
    assert!(text.contains("no Withings account is linked"), "{text}");

    let missing = dir.path().join("nowhere");
    let (code, stdout, stderr) = status(&missing, false);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("there is no state dir at"), "{stderr}");
    assert!(!missing.exists(), "status creates nothing");
}
