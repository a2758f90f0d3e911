//! A user leaving: Withings' appli 46 (facts sheet §3.3) and the `unlink`
//! command, with live and with dead tokens.

use crate::fake_withings::{Endpoint, FakeWithings, Fault, Group};
use crate::support::relay::{command, notification_form, start_linked, wait_for, Relay, TestDir};
use serde_json::Value;
use std::path::Path;
use std::process::{Output, Stdio};

const USER: u64 = 5_200_001;
const FOREIGN: &str = "https://ha.example.org/api/webhook/0123abcd";
const SETTINGS: [&str; 4] = ["--check-every", "1h", "--notify-spacing", "10ms"];

fn user_file(relay: &Relay, dir: &str) -> std::path::PathBuf {
    relay.state_dir.join(format!("{dir}/{USER}.json"))
}

fn health(relay: &Relay) -> Value {
    let text = std::fs::read_to_string(user_file(relay, "health")).unwrap_or("{}".into());
    serde_json::from_str(&text).unwrap()
}

/// Leaves one notification queued: its sync fails with an error that is
/// retried only minutes later.
fn queue_one(fake: &FakeWithings, relay: &Relay) {
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(7, t - 5, t - 5, 70_500, -3));
    fake.push_fault(Endpoint::Measure, Fault::Status(503));
    assert_eq!(relay.notify(&notification_form(fake, USER)), 200);
    relay.wait_log("will not fix itself");
    assert_eq!(relay.queued(), 1);
}

fn user_event(relay: &Relay, action: &str) -> u16 {
    relay.notify(&format!("userid={USER}&appli=46{action}"))
}

#[test]
fn appli_46_unlinks_the_user_keeping_their_data_until_they_link_again() {
    // Tried: a profile update, an appli 46 without an action, then an
    // unlink, then a weigh-in notification, then linking again. Checked:
    // only the unlink deletes anything (the tokens alone), the later
    // notification costs no API call, and linking again syncs what was
    // kept queued, with nothing lost.
    let fake = FakeWithings::start();
    let dir = TestDir::new("appli46");
    let mut relay = start_linked(&fake, &dir, USER, &SETTINGS);
    queue_one(&fake, &relay);

    assert_eq!(user_event(&relay, "&action=update"), 200);
    assert_eq!(user_event(&relay, ""), 200);
    assert_eq!(user_event(&relay, "&action=whatever"), 200);
    relay.wait_log("appli 46 with action \"whatever\"");
    assert!(
        user_file(&relay, "users").exists(),
        "nothing destroyed on a guess"
    );
    assert!(health(&relay)["unlinked"].is_null());

    assert_eq!(user_event(&relay, "&action=unlink"), 200);
    relay.wait_log("Run `withings-relay authorize` to link them again");
    assert!(!user_file(&relay, "users").exists(), "tokens deleted");
    assert!(user_file(&relay, "sync").exists(), "sync state kept");
    assert_eq!(relay.queued(), 1, "queued notification kept");
    let h = health(&relay);
    assert_eq!(h["unlinked"]["action"], "unlink");
    assert!(h["unlinked"]["at"].as_i64().unwrap() > 0);

    let calls = fake.calls().len();
    assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    relay.wait_log("who is not linked here");
    assert_eq!(relay.queued(), 1, "not queued for a user who left");
    // A restart looks at every user at once: still nothing to call for.
    relay.kill9();
    relay.restart();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        fake.calls().len(),
        calls,
        "no API call for an unlinked user"
    );

    let (status, page) = relay.link(&fake, USER);
    assert_eq!(status, 200, "{page}");
    assert!(user_file(&relay, "users").exists());
    wait_for("health no longer unlinked", || {
        health(&relay)["unlinked"].is_null().then_some(())
    });
    let lines = relay.wait_lines(1);
    assert!(lines[0].contains(r#""value":70.5"#), "{lines:?}");
    wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
}

fn unlink(relay: &Relay, public_url: bool) -> Output {
    let mut cmd = command();
    cmd.args(["--state-dir", &relay.state_dir.display().to_string()])
        .args(["--api-url", &relay.api_url]);
    if public_url {
        cmd.args(["--public-url", &relay.public_url()]);
    }
    cmd.args(["unlink", "--user", &USER.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn assert_nothing_left(relay: &Relay) {
    for dir in ["users", "sync", "health", "callbacks"] {
        assert!(
            !user_file(relay, dir).exists(),
            "{dir}/ still holds the user"
        );
    }
    assert_eq!(relay.queued(), 0);
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn unlink_with_live_tokens_revokes_the_relays_own_subscriptions_and_deletes_the_rest() {
    // Tried: `unlink` while serve runs, without --public-url (the recorded
    // URL must do), for a user with a queued notification and another
    // app's subscription. Checked: only the relay's subscription is
    // revoked, every local file of the user is gone, each step is said,
    // and the secret never reaches the terminal. Then an unknown user.
    let fake = FakeWithings::start();
    let dir = TestDir::new("unlink-live");
    let relay = start_linked(&fake, &dir, USER, &SETTINGS);
    fake.add_subscription(USER, 1, FOREIGN, "Home Assistant");
    queue_one(&fake, &relay);

    let out = unlink(&relay, false);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("{}/notify/<secret>", relay.public_url());
    for line in [
        format!("user {USER}: revoked the subscription for appli 1 at {url}"),
        format!("user {USER}: left 1 subscription(s) of other apps alone"),
        format!("user {USER}: deleted the tokens (users/{USER}.json)"),
        format!("user {USER}: deleted the sync state (sync/{USER}.json)"),
        format!("user {USER}: deleted 1 queued notification(s)"),
        format!("user {USER}: deleted the record of this relay's notification URLs (callbacks/{USER}.json)"),
        format!("user {USER}: unlinked; `withings-relay authorize` links the account again"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
    }
    assert!(!text.contains(&relay.webhook_secret()));
    assert_eq!(fake.subscriptions(USER), vec![(1, FOREIGN.to_string())]);
    assert_eq!(fake.count(Endpoint::Notify, "revoke"), 1);
    assert_nothing_left(&relay);

    let again = unlink(&relay, true);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("nothing to unlink"), "{err}");
}

#[test]
fn unlink_with_a_revoked_grant_still_cleans_up_and_says_why_revoking_was_skipped() {
    // Tried: the user revoked the app at Withings (access token refused,
    // refresh token refused, subscriptions gone with the grant); serve is
    // stopped. Checked: unlink exits 0, deletes everything, and says why
    // the skipped revoke does no harm.
    let fake = FakeWithings::start();
    let dir = TestDir::new("unlink-dead");
    let mut relay = start_linked(&fake, &dir, USER, &SETTINGS);
    queue_one(&fake, &relay);
    relay.kill9();
    fake.revoke_grant(USER);

    let out = unlink(&relay, true);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("the subscriptions could not be revoked") && text.contains("harmless"),
        "{text}"
    );
    assert!(text.contains("deleted the tokens"), "{text}");
    assert_eq!(fake.count(Endpoint::Notify, "revoke"), 0);
    assert_nothing_left(&relay);
}

#[test]
fn unlink_without_withings_deletes_nothing_and_says_to_run_it_again() {
    // Tried: Withings' front answers 502 to the list. Checked: exit 1,
    // every file of the user is still there, and a later run (Withings
    // back) finishes the job.
    let fake = FakeWithings::start();
    let dir = TestDir::new("unlink-outage");
    let mut relay = start_linked(&fake, &dir, USER, &SETTINGS);
    relay.kill9();
    fake.push_fault(Endpoint::Notify, Fault::Http(502));

    let out = unlink(&relay, true);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("nothing was deleted"));
    for dir in ["users", "sync", "callbacks"] {
        assert!(user_file(&relay, dir).exists(), "{dir}/ kept");
    }
    assert!(Path::new(&user_file(&relay, "users")).exists());
    assert_eq!(fake.subscriptions(USER).len(), 1);

    assert!(unlink(&relay, true).status.success());
    assert!(fake.subscriptions(USER).is_empty());
    assert_nothing_left(&relay);
}
