//! The relay's own limits on Withings calls: a per-user debounce, so a
//! flood of notifications costs a handful of getmeas, and a budget of
//! calls a minute shared by all users, with notifications first.

use crate::fake_withings::{Endpoint, FakeWithings, Group};
use crate::support::relay::{notification_form, start_linked, wait_for, Relay, TestDir};
use std::time::{Duration, Instant};

const USER: u64 = 6_190_001;

#[test]
fn fifty_notifications_in_five_seconds_make_a_handful_of_getmeas() {
    // Tried: 50 notifications for one user, 100 ms apart (a replayed or
    // forged flood, or Withings retrying), with a new group every tenth.
    let fake = FakeWithings::start();
    let dir = TestDir::new("flood");
    // The real gap between a user's syncs: it is what this test is about.
    let relay = start_linked(&fake, &dir, USER, &["--poll", "0", "--sync-gap", "5s"]);
    for i in 0..50 {
        if i % 10 == 0 {
            let t = fake.now() as i64;
            let grpid = i / 10 + 1;
            fake.add_group(USER, Group::weight(grpid, t - 5, t, 70_000 + grpid, -3));
        }
        assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    relay.wait_lines(5);
    wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
    let getmeas = fake.count(Endpoint::Measure, "getmeas");
    // A figure for the notes (`-- --nocapture`), not a timing.
    eprintln!("figure: {getmeas} getmeas for 50 notifications 100 ms apart");
    assert!(
        (1..=6).contains(&getmeas),
        "{getmeas} getmeas for 50 notifications"
    );
    assert_eq!(relay.grpids(), [1, 2, 3, 4, 5], "each group once, in order");
}

#[test]
fn a_tiny_budget_holds_polls_back_and_a_notification_goes_first() {
    // Tried: three users, a poll every second, and a budget of 6 calls a
    // minute: a burst of 2, then one every 10 s, of which polls leave a
    // reserve. A notification for the last user comes while the polls of
    // the others wait for the budget.
    let fake = FakeWithings::start();
    let dir = TestDir::new("budget");
    let users = [USER + 1, USER + 2, USER + 3];
    let relay = start_linked(&fake, &dir, users[0], &["--poll", "0", "--sync-gap", "5s"]);
    for &user in &users[1..] {
        fake.add_user(user);
        let (status, page) = relay.link(&fake, user);
        assert_eq!(status, 200, "{page}");
    }
    drop(relay);
    fake.clear_calls();

    let started = Instant::now();
    // --no-webhook: the subscription keeper's three `notify list` calls at
    // start would otherwise share these few tokens with the polls, and on a
    // slow machine (qemu) take them all for the first 20 s. Notifications
    // are still taken.
    let relay = Relay::start(
        &fake,
        dir.path(),
        &[
            "--poll",
            "1s",
            "--api-budget",
            "6",
            "--sync-gap",
            "5s",
            "--no-webhook",
        ],
    );
    wait_for("the first poll", || {
        (fake.count(Endpoint::Measure, "getmeas") >= 1).then_some(())
    });
    let last = users[2];
    let t = fake.now() as i64;
    fake.add_group(last, Group::weight(9, t - 5, t - 1, 80_500, -3));
    assert_eq!(relay.notify(&notification_form(&fake, last)), 200);
    relay.wait_lines(1);

    // Whose getmeas came in which order, by the bearer token.
    let token_of = |user: u64| {
        relay.user_file(user)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let order: Vec<u64> = fake
        .calls()
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::Measure))
        .map(|c| {
            *users
                .iter()
                .find(|&&u| c.bearer.as_deref() == Some(token_of(u).as_str()))
                .unwrap()
        })
        .collect();
    assert_eq!(
        order[..2],
        [users[0], last],
        "the notification went before the second poll"
    );
    assert!(relay.lines()[0].contains(r#""value":80.5"#));

    // Whatever the polls want, the budget holds: 2 at once, then 1 per 10 s.
    std::thread::sleep(Duration::from_secs(8));
    let elapsed = started.elapsed().as_secs();
    let allowed = 2 + (elapsed * 6) / 60;
    let calls = fake.calls().len();
    assert!(
        calls as u64 <= allowed,
        "{calls} calls in {elapsed} s, {allowed} allowed"
    );
    relay.wait_log("the API budget of 6 calls a minute");
}
