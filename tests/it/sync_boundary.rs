//! The sync boundary: whether getmeas `lastupdate` is inclusive is
//! UNCONFIRMED (facts sheet §2.3), so every test here runs against a fake
//! that reads it one way and a fake that reads it the other. Groups that
//! Withings stamps with a second the relay already synced past must still
//! arrive, and every group must arrive once.

use crate::fake_withings::{FakeWithings, Group};
use crate::support::relay::{notification_form, start_linked, wait_for, Relay, TestDir};

const USER: u64 = 6_160_001;

fn relay_against(fake: &FakeWithings, exclusive: bool, name: &str) -> (TestDir, Relay) {
    fake.set_lastupdate_exclusive(exclusive);
    let dir = TestDir::new(name);
    let relay = start_linked(fake, &dir, USER, &[]);
    (dir, relay)
}

/// Posts a notification and waits until the sync it asked for is done.
fn notify_and_settle(fake: &FakeWithings, relay: &Relay) {
    assert_eq!(relay.notify(&notification_form(fake, USER)), 200);
    wait_for("an empty queue", || (relay.queued() == 0).then_some(()));
}

/// A weigh-in at second T is synced; then three more groups, each also
/// stamped T, appear one at a time with a sync after each. All arrive,
/// once each, and a last notification adds nothing.
fn groups_in_the_synced_second_arrive_once_each(exclusive: bool, name: &str) {
    let fake = FakeWithings::start();
    let (_dir, relay) = relay_against(&fake, exclusive, name);
    let t = fake.now() as i64 - 5;
    fake.add_group(USER, Group::weight(1, t - 20, t, 72_500, -3));
    notify_and_settle(&fake, &relay);
    assert_eq!(relay.grpids(), [1]);
    fake.add_group(USER, Group::blood_pressure(2, t, t, 120, 80, 61));
    notify_and_settle(&fake, &relay);
    fake.add_group(USER, Group::weight(3, t, t, 72_400, -3));
    notify_and_settle(&fake, &relay);
    fake.add_group(USER, Group::weight(4, t, t, 72_300, -3));
    notify_and_settle(&fake, &relay);
    notify_and_settle(&fake, &relay);
    assert_eq!(relay.grpids(), [1, 2, 3, 4], "{}", relay.log_text());
}

#[test]
fn groups_in_the_synced_second_arrive_once_each_when_lastupdate_is_exclusive() {
    groups_in_the_synced_second_arrive_once_each(true, "boundary-exclusive");
}

#[test]
fn groups_in_the_synced_second_arrive_once_each_when_lastupdate_is_inclusive() {
    groups_in_the_synced_second_arrive_once_each(false, "boundary-inclusive");
}

/// A group stamped a minute before the last synced one, but made visible
/// only after that sync (two uploads racing), still arrives: it is inside
/// the overlap.
fn a_group_made_visible_out_of_order_arrives(exclusive: bool, name: &str) {
    let fake = FakeWithings::start();
    let (_dir, relay) = relay_against(&fake, exclusive, name);
    let t = fake.now() as i64 - 5;
    fake.add_group(USER, Group::weight(1, t - 20, t, 72_500, -3));
    notify_and_settle(&fake, &relay);
    fake.add_group(USER, Group::blood_pressure(2, t - 80, t - 60, 120, 80, 61));
    notify_and_settle(&fake, &relay);
    notify_and_settle(&fake, &relay);
    assert_eq!(relay.grpids(), [1, 2], "{}", relay.log_text());
}

#[test]
fn a_group_made_visible_out_of_order_arrives_when_lastupdate_is_exclusive() {
    a_group_made_visible_out_of_order_arrives(true, "late-exclusive");
}

#[test]
fn a_group_made_visible_out_of_order_arrives_when_lastupdate_is_inclusive() {
    a_group_made_visible_out_of_order_arrives(false, "late-inclusive");
}

/// A sync file as the version before the overlap wrote it (no `floor`,
/// `seen` only at the cursor) still loads: nothing it emitted comes again,
/// and the boundary second is no longer lost.
#[test]
fn a_sync_state_from_the_previous_version_keeps_working() {
    let fake = FakeWithings::start();
    let (_dir, mut relay) = relay_against(&fake, true, "old-state");
    let t = fake.now() as i64 - 5;
    fake.add_group(USER, Group::weight(1, t - 90, t - 30, 72_600, -3));
    fake.add_group(USER, Group::weight(2, t - 20, t, 72_500, -3));
    notify_and_settle(&fake, &relay);
    assert_eq!(relay.grpids(), [1, 2]);
    relay.kill9();
    let path = relay.state_dir.join(format!("sync/{USER}.json"));
    std::fs::write(&path, format!(r#"{{"cursor": {t}, "seen": [[2, {t}]]}}"#)).unwrap();
    relay.restart();
    fake.add_group(USER, Group::blood_pressure(3, t, t, 120, 80, 61));
    notify_and_settle(&fake, &relay);
    notify_and_settle(&fake, &relay);
    assert_eq!(relay.grpids(), [1, 2, 3], "{}", relay.log_text());
}
