//! `withings-relay sync`: a request file that the running `serve` takes,
//! syncing at once and then following up until something new arrives.

use crate::fake_withings::{Endpoint, FakeWithings, Group};
use crate::support::relay::{start_linked, wait_for, TestDir};
use std::time::Duration;

const USER: u64 = 6_170_001;

fn sync_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("queue"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sync"))
        .count()
}

#[test]
fn sync_follows_up_until_the_upload_arrives_then_stops() {
    // Tried: the scale uploads, but Withings shows the group only between
    // the first and the second follow-up (1 s, 3 s, 5 s here instead of
    // 20 s, 1 min, 3 min). Polls are off, so every getmeas is the series'.
    let fake = FakeWithings::start();
    let dir = TestDir::new("sync-followups");
    let relay = start_linked(
        &fake,
        &dir,
        USER,
        &["--poll", "0", "--sync-followups", "1s,3s,5s"],
    );
    assert_eq!(fake.count(Endpoint::Measure, "getmeas"), 0);
    let out = relay.run(&["sync", "--user", &USER.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains(&format!("to sync user {USER} now")), "{said}");

    // At once, then the first follow-up: nothing there yet.
    wait_for("the sync at once and the first follow-up", || {
        (fake.count(Endpoint::Measure, "getmeas") >= 2).then_some(())
    });
    assert_eq!(sync_files(&relay.state_dir), 0, "the request was taken");
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(3, t - 20, t - 2, 70_100, -3));
    let lines = relay.wait_lines(1);
    assert!(lines[0].contains(r#""value":70.1"#), "{}", lines[0]);
    let after = fake.count(Endpoint::Measure, "getmeas");
    assert!(after <= 3, "{after} getmeas");
    // Past the last follow-up: the series stopped once the group came.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(fake.count(Endpoint::Measure, "getmeas"), after);
    assert_eq!(relay.lines().len(), 1);
    relay.wait_log("synced (asked by `sync`)");
}

#[test]
fn sync_refuses_an_unknown_user_and_asks_nothing() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("sync-unknown");
    let relay = start_linked(&fake, &dir, USER, &["--poll", "0"]);
    for user in ["31337", "../1"] {
        let out = relay.run(&["sync", "--user", user]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not linked") && err.contains("authorize"),
            "{err}"
        );
    }
    assert_eq!(sync_files(&relay.state_dir), 0, "no request was left");
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(fake.count(Endpoint::Measure, "getmeas"), 0);
}
