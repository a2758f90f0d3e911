//! One group Withings sends in a shape the relay cannot read must not hold
//! up the others: real captured groups (tests/fixtures/SOURCES.md) arrive,
//! the odd one is kept in `rejected/` and logged with its grpid and field,
//! and the cursor moves past it.

use crate::fake_withings::{Endpoint, FakeWithings, Group};
use crate::support::realdata::{fixture, shifted};
use crate::support::relay::{notification_form, start_linked, wait_for, Relay, TestDir};
use serde_json::Value;

const USER: u64 = 6_170_001;
const BROKEN: i64 = 5_109_691_999;

fn notify_and_settle(fake: &FakeWithings, relay: &Relay) {
    assert_eq!(relay.notify(&notification_form(fake, USER)), 200);
    wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
    // The queue empties once the groups are in the outbox; the JSON lines
    // are written by the courier thread after that.
    wait_for("an empty outbox", || {
        (relay.outbox_records() == 0).then_some(())
    });
}

fn rejected_files(relay: &Relay) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(relay.state_dir.join("rejected"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn cursor(relay: &Relay) -> i64 {
    let path = relay.state_dir.join(format!("sync/{USER}.json"));
    let state: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    state["cursor"].as_i64().unwrap()
}

fn last_lastupdate(fake: &FakeWithings) -> i64 {
    let calls = fake.calls();
    let getmeas = calls
        .iter()
        .rfind(|c| c.endpoint == Some(Endpoint::Measure))
        .unwrap();
    getmeas.params["lastupdate"].parse().unwrap()
}

#[test]
fn a_broken_group_is_kept_aside_and_the_real_ones_arrive() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("odd-group");
    let relay = start_linked(&fake, &dir, USER, &[]);

    // Three Body Scan groups and the issue #145 group (model 10), as
    // captured, moved into the last minutes: the Body Scan ones to the same
    // second (as captured), the other 30 s later.
    let page = fixture("shapes/mixed_3_real_groups_plus_issue145.json");
    let groups = page["body"]["measuregrps"].as_array().unwrap().clone();
    let now = fake.now() as i64;
    let recent = |g: &Value, at: i64| shifted(g.clone(), at - g["modified"].as_i64().unwrap());
    for g in &groups[..3] {
        fake.add_raw_group(USER, recent(g, now - 120));
    }
    fake.add_raw_group(USER, recent(&groups[3], now - 90));
    // A copy of the first one with a measure value of letters, stamped
    // last, so it is what the cursor must move to.
    let mut broken = recent(&groups[0], now - 60);
    broken["grpid"] = BROKEN.into();
    broken["measures"][0]["value"] = "abc".into();
    fake.add_raw_group(USER, broken);

    notify_and_settle(&fake, &relay);
    let records = relay.records();
    let ids: Vec<i64> = records
        .iter()
        .map(|r| r["grpid"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [5_109_691_080, 5_109_691_089, 5_109_691_092, 1],
        "every readable group, in modified order"
    );
    let lines = relay.lines();
    assert!(
        lines[1].contains(r#""type":198,"name":"type_198","value":59.05,"#)
            || lines[1].contains(r#""value":59.05"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[0].contains(r#""value":95.817,"unit":"kg""#),
        "{}",
        lines[0]
    );
    assert_eq!(records[3]["model"], "10", "model 10 kept as text");

    // The broken group: on disk verbatim, with the reason; in the log as an
    // error naming the grpid and the field; the cursor past it.
    let files = rejected_files(&relay);
    assert_eq!(files, [format!("{USER}-{BROKEN}-{}.json", now - 60)]);
    let kept = std::fs::read_to_string(relay.state_dir.join("rejected").join(&files[0])).unwrap();
    let kept: Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(kept["grpid"], BROKEN);
    assert_eq!(kept["group"]["measures"][0]["value"], "abc");
    assert!(
        kept["reason"]
            .as_str()
            .unwrap()
            .starts_with("measures[0].value:"),
        "{kept}"
    );
    let log = relay.log_text();
    let complaint = log
        .lines()
        .find(|l| l.contains(&BROKEN.to_string()))
        .unwrap_or_else(|| panic!("no log line names the group: {log}"));
    assert!(
        complaint.starts_with("ERROR") && complaint.contains("measures[0].value"),
        "{complaint}"
    );
    assert!(
        !log.contains("unreachable") && !log.contains("sync failed"),
        "{log}"
    );
    assert_eq!(cursor(&relay), now - 60);

    // The next sync reads the overlap again but does not reject it again.
    notify_and_settle(&fake, &relay);
    assert_eq!(relay.lines().len(), 4);
    assert_eq!(
        relay.log_text().matches("cannot be read").count(),
        1,
        "{}",
        relay.log_text()
    );

    // Once a later weigh-in moves the cursor on, it is no longer asked for.
    fake.advance_clock(600);
    let later = fake.now() as i64 - 5;
    fake.add_group(USER, Group::weight(77, later, later, 95_900, -3));
    notify_and_settle(&fake, &relay);
    assert_eq!(relay.lines().len(), 5);
    notify_and_settle(&fake, &relay);
    assert!(
        last_lastupdate(&fake) > now - 60,
        "the broken group is behind"
    );
    assert_eq!(relay.lines().len(), 5);
    assert_eq!(rejected_files(&relay).len(), 1);
}

#[test]
fn fetch_prints_the_readable_groups_and_keeps_the_broken_one() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("odd-fetch");
    let relay = start_linked(&fake, &dir, USER, &[]);
    let now = fake.now() as i64;
    let mut broken = fixture("withoutings/withings-resp-measure-getmeas-0-weight.json")["body"]
        ["measuregrps"][0]
        .clone();
    broken = shifted(
        broken.clone(),
        now - 100 - broken["modified"].as_i64().unwrap(),
    );
    let good = broken.clone();
    broken["grpid"] = BROKEN.into();
    broken["measures"][0]["unit"] = (-((1i64 << 32) + 3)).into();
    fake.add_raw_group(USER, good);
    fake.add_raw_group(USER, broken);

    let out = relay.run(&["fetch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(r#""value":80.094"#), "{stdout}");
    assert!(
        stderr.contains(&BROKEN.to_string()) && stderr.contains("measures[0].unit"),
        "{stderr}"
    );
    assert_eq!(rejected_files(&relay).len(), 1);
}
