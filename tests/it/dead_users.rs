//! A user whose refresh token Withings rejected gets no Withings call at
//! all until linked again: not from polls, notifications or `sync`. Its
//! notifications wait, and linking again brings them in.

use crate::fake_withings::{FakeWithings, Group};
use crate::support::relay::{notification_form, start_linked, wait_for, TestDir};
use std::time::Duration;

const USER: u64 = 6_180_001;

#[test]
fn a_user_needing_reauthorization_costs_no_call_and_keeps_its_notifications() {
    // Tried: a year passes, so the refresh token is dead; then a
    // notification, `sync` and several 1 s polls and follow-ups.
    let fake = FakeWithings::start();
    let dir = TestDir::new("dead-user");
    let relay = start_linked(
        &fake,
        &dir,
        USER,
        &["--poll", "1s", "--sync-followups", "1s"],
    );
    fake.advance_clock(366 * 24 * 3600);
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 70_000, -3));
    assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    relay.wait_log("no Withings call for this user until then");
    assert!(relay.user_file(USER)["needs_reauth"].as_bool().unwrap());
    let calls = fake.calls().len();

    assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    let all = relay.run(&["sync"]);
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let one = relay.run(&["sync", "--user", &USER.to_string()]);
    assert_eq!(one.status.code(), Some(1), "nothing would happen: refused");
    assert!(String::from_utf8_lossy(&one.stderr).contains("withings-relay authorize"));
    relay.wait_log("must be linked again first");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fake.calls().len(),
        calls,
        "no call: {:?}",
        &fake.calls()[calls..]
    );
    assert_eq!(relay.queued(), 2, "both notifications wait");
    assert!(relay.lines().is_empty());
    let log = relay.log_text();
    assert_eq!(
        log.matches("no Withings call for this user").count(),
        1,
        "said once"
    );
    let health =
        std::fs::read_to_string(relay.state_dir.join(format!("health/{USER}.json"))).unwrap();
    assert!(health.contains("authorize"), "{health}");

    // Linked again: the kept notifications are synced, once.
    let (status, page) = relay.link(&fake, USER);
    assert_eq!(status, 200, "{page}");
    relay.wait_lines(1);
    wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
    relay.wait_log("linked again; syncing resumes");
    assert_eq!(relay.lines().len(), 1);
}
