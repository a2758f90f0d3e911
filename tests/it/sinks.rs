//! Several outputs at once: each is independent, and a group waits in the
//! durable outbox while its output is down, then goes out once, in order.

use crate::fake_withings::{self, FakeWithings, Group};
use crate::support;
use crate::support::relay::{notification_form, start_linked, wait_for, TestDir};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const USER: u64 = 3_030_001;

/// A hook that appends stdin and one variable to files, and fails while a
/// flag file exists, the way a flaky HTTP push script would.
fn write_hook(dir: &Path) -> String {
    let hook = dir.join("hook.sh");
    let script = format!(
        "#!/bin/sh\nif [ -e '{flag}' ]; then echo 'speaker unreachable' >&2; exit 1; fi\ncat >> '{log}'\necho \"$WITHINGS_USERID $WITHINGS_WEIGHT_KG\" >> '{env}'\necho hook ran\n",
        flag = dir.join("fail").display(),
        log = dir.join("hook.jsonl").display(),
        env = dir.join("hook.env").display(),
    );
    std::fs::write(&hook, script).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    hook.display().to_string()
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_failing_hook_holds_up_nothing_and_catches_up_in_order_after_a_restart() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("exec-hook");
    let hook = write_hook(dir.path());
    let mut relay = start_linked(&fake, &dir, USER, &["--exec", &hook]);
    let notify = |relay: &support::relay::Relay, grpid: i64, grams: i64| {
        let t = fake.now() as i64;
        fake.add_group(USER, Group::weight(grpid, t - 5, t - 5, grams, -3));
        assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    };

    notify(&relay, 1, 70_100);
    relay.wait_lines(1);
    wait_for("the hook's first run", || {
        (read_lines(&dir.path().join("hook.env")).len() == 1).then_some(())
    });
    assert_eq!(
        read_lines(&dir.path().join("hook.env")),
        [format!("{USER} 70.1")]
    );
    // The hook's output goes to the log, written after the hook exits:
    // waited for, since the hook's files appear before that.
    relay.wait_log("hook ran");

    // The hook fails: JSON lines still flow, the hook's groups wait.
    std::fs::write(dir.path().join("fail"), b"").unwrap();
    fake.advance_clock(10);
    notify(&relay, 2, 70_200);
    relay.wait_lines(2);
    fake.advance_clock(10);
    notify(&relay, 3, 70_300);
    relay.wait_lines(3);
    relay.wait_log("speaker unreachable");
    relay.wait_log("exec is down");

    // Killed while the hook is down; it comes back after the restart.
    // Not before the sync has ended: a kill between a group's emit and
    // the save of the handled set would have the sync at start emit that
    // one group again (at-least-once for the group in flight).
    wait_for("the sync to end", || (relay.queued() == 0).then_some(()));
    relay.kill9();
    std::fs::remove_file(dir.path().join("fail")).unwrap();
    relay.restart();
    wait_for("the hook to catch up", || {
        (read_lines(&dir.path().join("hook.env")).len() >= 3).then_some(())
    });
    wait_for("an empty outbox", || {
        (relay.outbox_records() == 0).then_some(())
    });
    assert_eq!(
        read_lines(&dir.path().join("hook.env")),
        [
            format!("{USER} 70.1"),
            format!("{USER} 70.2"),
            format!("{USER} 70.3")
        ],
        "in order, each once"
    );
    let hook_json = read_lines(&dir.path().join("hook.jsonl"));
    assert_eq!(
        hook_json,
        relay.lines(),
        "the hook got the same objects as the JSON lines"
    );
}

/// Tried: a hook that prints its whole environment, with the relay started
/// as the OpenWrt init script starts it (client secret and MQTT password in
/// the environment) plus an unrelated variable. The hook's output goes to
/// the log, so whatever it inherits would leak there: it must see only the
/// allow-list and its measurement variables.
#[test]
fn a_hook_inherits_no_secret_from_the_relay() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("exec-env");
    fake.add_user(USER);
    let mut relay =
        support::relay::Relay::configure(&fake, dir.path(), &["--exec", "/usr/bin/env"]);
    relay.set_env("WITHINGS_MQTT_PASSWORD", "mqtt-secret-4711");
    relay.set_env("UNRELATED_SETTING", "should-not-pass");
    relay.set_env("TZ", "Europe/Paris");
    relay.restart();
    let (status, page) = relay.link(&fake, USER);
    assert_eq!(status, 200, "{page}");
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 72_500, -3));
    assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    relay.wait_log("WITHINGS_WEIGHT_KG=72.5");
    wait_for("an empty outbox", || {
        (relay.outbox_records() == 0).then_some(())
    });
    let log = relay.log_text();
    let hook_env: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("exec /usr/bin/env stdout: ").map(|(_, v)| v))
        .collect();
    let names: Vec<&str> = hook_env
        .iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(names.contains(&"TZ"), "allow-listed TZ passes: {names:?}");
    assert!(names.contains(&"WITHINGS_USERID"), "{names:?}");
    for name in &names {
        assert!(
            ["PATH", "HOME", "LANG", "TZ"].contains(name)
                || ["USERID", "GRPID", "DATE", "TIME", "ATTRIB", "WEIGHT_KG"]
                    .iter()
                    .any(|v| *name == format!("WITHINGS_{v}")),
            "the hook inherited {name}: {names:?}"
        );
    }
    for secret in [
        fake_withings::CLIENT_SECRET,
        "mqtt-secret-4711",
        "should-not-pass",
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

/// Tried: two outbox records damaged while the relay was stopped (one cut
/// short, one not even text), as a failing SD card might leave them. They
/// must not block any output: each goes to `outbox/rejected/`, the log says
/// where and why, and the next weigh-in reaches every output.
#[test]
fn a_damaged_outbox_record_moves_aside_and_every_output_goes_on() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("outbox-damaged");
    let hook = write_hook(dir.path());
    let mut relay = start_linked(&fake, &dir, USER, &["--exec", &hook]);
    relay.kill9();
    let records = relay.state_dir.join("outbox/records");
    let cut_short = format!("{:020}.json", 1);
    let binary = format!("{:020}.json", 2);
    std::fs::write(records.join(&cut_short), br#"{"userid":"3030001","grp"#).unwrap();
    std::fs::write(records.join(&binary), b"\xff\xfe\x00garbage").unwrap();
    relay.restart();

    let rejected = relay.state_dir.join("outbox/rejected");
    wait_for("both records moved aside", || {
        (rejected.join(&cut_short).exists() && rejected.join(&binary).exists()).then_some(())
    });
    relay.wait_log(&format!(
        "outbox record {} is damaged",
        records.join(&cut_short).display()
    ));
    relay.wait_log(&format!("moved to {}", rejected.join(&binary).display()));
    assert_eq!(
        std::fs::read(rejected.join(&binary)).unwrap(),
        b"\xff\xfe\x00garbage",
        "kept byte for byte"
    );

    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 70_400, -3));
    assert_eq!(relay.notify(&notification_form(&fake, USER)), 200);
    wait_for("the hook to run", || {
        (read_lines(&dir.path().join("hook.env")).len() == 1).then_some(())
    });
    assert_eq!(
        read_lines(&dir.path().join("hook.env")),
        [format!("{USER} 70.4")]
    );
    let lines = relay.wait_lines(1);
    assert_eq!(lines.len(), 1, "no garbage in the JSON lines: {lines:?}");
    assert!(lines[0].contains(r#""value":70.4"#), "{}", lines[0]);
    wait_for("an empty outbox", || {
        (relay.outbox_records() == 0).then_some(())
    });
    assert!(
        !relay.log_text().contains("link the user again"),
        "no advice that does not fit"
    );
}
