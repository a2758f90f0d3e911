//! The subscription keeper: a thread of `serve` that keeps each linked
//! user subscribed at the relay's current notification URL. Withings drops
//! a subscription after failed deliveries and never says so (facts sheet
//! §3.4), and a new `--public-url` or webhook secret leaves the old URL
//! subscribed; the advice is a daily `notify list` and a subscribe wherever
//! one is missing. The keeper checks every user at start, then every
//! `--check-every` (a day), and a user linked meanwhile within a minute.
//!
//! `plan.rs` decides (pure), `check.rs` calls Withings for one user, and
//! this file only schedules.

pub mod check;
pub mod plan;

use crate::timefmt::millis;
use check::{Keeper, Outcome};
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the list of users is looked at for new ones, at most; a new
/// user also waits this long, so the OAuth callback's own subscribes
/// (5 s apart) are done before the check lists them. Both together keep
/// "within a minute".
const SCAN: Duration = Duration::from_secs(30);
/// After a failed check, the next one comes this soon at the latest.
const RETRY: Duration = Duration::from_secs(3600);

/// Pure: when each known user is due next, in Unix milliseconds.
#[derive(Debug)]
pub struct Due {
    every: Duration,
    started: bool,
    next: BTreeMap<String, i64>,
}

impl Due {
    pub fn new(every: Duration) -> Due {
        Due {
            every,
            started: false,
            next: BTreeMap::new(),
        }
    }

    /// The scan period: a short `--check-every` (tests) scans as often.
    pub fn scan(&self) -> Duration {
        SCAN.min(self.every)
    }

    /// The users due at `now` among the linked `users`. Users seen for the
    /// first time are due at once on the first call (start), else after
    /// one scan period; users no longer linked are forgotten.
    pub fn due(&mut self, users: &[String], now: i64) -> Vec<String> {
        self.next.retain(|u, _| users.contains(u));
        let first = match self.started {
            false => now,
            true => now.saturating_add(millis(self.scan())),
        };
        self.started = true;
        for u in users {
            self.next.entry(u.clone()).or_insert(first);
        }
        self.next
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Records how the check of `user` ended at `now`.
    pub fn checked(&mut self, user: &str, outcome: Outcome, now: i64) {
        let wait = match outcome {
            Outcome::Checked => self.every,
            Outcome::Problems => self.every.min(RETRY),
            Outcome::Skipped => self.scan(),
        };
        self.next
            .insert(user.to_string(), now.saturating_add(millis(wait)));
    }

    /// How long to sleep at `now`: until the next user is due, and no
    /// longer than a scan period.
    pub fn sleep(&self, now: i64) -> Duration {
        let scan = millis(self.scan());
        let until = self.next.values().min().map_or(scan, |&t| t - now);
        // Clamped to 0..=scan, which came from a Duration: lossless.
        Duration::from_millis(until.clamp(0, scan) as u64)
    }
}

/// Starts the keeper thread; it runs as long as `serve`.
pub fn start(keeper: Keeper, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("keeper".into())
        .spawn(move || run(&keeper, Due::new(every)))
        .map(|_| ())
}

fn run(keeper: &Keeper, mut due: Due) -> ! {
    let (store, clock) = (&keeper.ctx.store, &keeper.ctx.clock);
    loop {
        match store.users.list() {
            Ok(users) => {
                for user in due.due(&users, clock.now_millis()) {
                    let outcome = keeper.check(&user);
                    due.checked(&user, outcome, clock.now_millis());
                }
            }
            Err(e) => log::error!("subscription check: {e}"),
        }
        std::thread::sleep(due.sleep(clock.now_millis()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn users(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn everyone_at_start_then_daily_and_newcomers_within_a_minute() {
        let mut due = Due::new(DAY);
        assert_eq!(due.due(&users(&["1", "2"]), 0), ["1", "2"]);
        due.checked("1", Outcome::Checked, 1_000);
        due.checked("2", Outcome::Problems, 1_000);
        assert!(due.due(&users(&["1", "2", "3"]), 2_000).is_empty());
        assert!(due.sleep(2_000) <= SCAN);
        assert_eq!(due.due(&users(&["1", "2", "3"]), 32_000), ["3"]);
        due.checked("3", Outcome::Checked, 33_000);
        assert_eq!(
            due.due(&users(&["1", "2", "3"]), 3_601_000),
            ["2"],
            "retry within the hour"
        );
        due.checked("2", Outcome::Checked, 3_601_000);
        assert_eq!(due.due(&users(&["1", "2", "3"]), 86_401_000), ["1"]);
    }

    #[test]
    fn skipped_users_come_back_after_a_scan_and_gone_ones_are_forgotten() {
        let mut due = Due::new(DAY);
        due.due(&users(&["1"]), 0);
        due.checked("1", Outcome::Skipped, 0);
        assert_eq!(due.due(&users(&["1"]), 30_000), ["1"]);
        due.due(&users(&[]), 30_000);
        assert_eq!(due.sleep(30_000), SCAN, "nobody due");
        assert!(
            due.due(&users(&["1"]), 30_001).is_empty(),
            "back: a newcomer"
        );
    }

    #[test]
    fn a_short_period_scans_as_often() {
        let mut due = Due::new(Duration::from_millis(500));
        assert_eq!(due.scan(), Duration::from_millis(500));
        due.due(&users(&["1"]), 0);
        due.checked("1", Outcome::Checked, 0);
        assert_eq!(due.sleep(100), Duration::from_millis(400));
        assert_eq!(due.due(&users(&["1"]), 500), ["1"]);
    }
}
