//! When each user's next sync is due, and why: pure decisions on the
//! worker's per-user state, with the clock passed in (milliseconds). The
//! loop in `mod.rs` does the I/O and tells this file what happened.
//!
//! - A notification waits [`DEBOUNCE_MS`] after the first one pending, and
//!   [`DEFAULT_SYNC_GAP`] after that user's previous sync ended, so a burst
//!   (Withings retrying, a replayed or forged flood) costs one getmeas,
//!   and a steady stream one every few seconds, yet never starves.
//! - `--poll` syncs every user on its period, give or take a tenth, so
//!   that users linked together do not stay in step.
//! - A `sync` request syncs at once, then at each follow-up after the
//!   request until a sync finds something new.
//! - After a failure everything waits for the retry time.

use crate::timefmt::millis;
use crate::withings::budget::Priority;
use std::time::Duration;

/// The poll period while webhooks are on: Withings never sends a missed
/// notification again and drops a subscription after failed deliveries
/// (facts sheet §3.4), so a lost weigh-in shows up within 6 h, at 4
/// getmeas a user a day.
pub const POLL_WITH_WEBHOOKS: Duration = Duration::from_secs(6 * 3600);
/// The poll period without webhooks: polling is then the only way in. 10
/// users at 10 minutes are 1 call a minute, far below the 120 a minute an
/// app may make (facts sheet §4.2).
pub const POLL_WITHOUT_WEBHOOKS: Duration = Duration::from_secs(600);
/// A notification waits this long for others to join it. Withings itself
/// takes about 30 s to notify, so this costs nothing.
pub const DEBOUNCE_MS: i64 = 1_500;
/// And at least this long after the user's previous sync ended (the
/// hidden `--sync-gap`).
pub const DEFAULT_SYNC_GAP: Duration = Duration::from_secs(5);

/// Why a sync runs; the order is that of precedence when several are due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// `withings-relay sync` asked just now.
    Requested,
    /// Notifications are queued.
    Notification,
    /// A follow-up of a `sync` request.
    FollowUp,
    /// The safety-net poll.
    Poll,
}

impl Why {
    pub fn priority(self) -> Priority {
        match self {
            Why::Poll => Priority::Background,
            _ => Priority::Foreground,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Why::Requested => "asked by `sync`",
            Why::Notification => "notified",
            Why::FollowUp => "follow-up of `sync`",
            Why::Poll => "poll",
        }
    }
}

/// The periods the schedule follows, in milliseconds.
#[derive(Clone, Debug)]
pub struct Timing {
    /// 0: no polls, not even at start.
    pub poll_ms: i64,
    /// After a `sync` request, sorted.
    pub followups_ms: Vec<i64>,
    /// The least time between a user's notification syncs
    /// ([`DEFAULT_SYNC_GAP`] unless a test shortens it).
    pub gap_ms: i64,
}

/// No polls, no follow-ups, the real gap.
impl Default for Timing {
    fn default() -> Timing {
        Timing::new(Duration::ZERO, &[], DEFAULT_SYNC_GAP)
    }
}

impl Timing {
    pub fn new(poll: Duration, followups: &[Duration], gap: Duration) -> Timing {
        Timing {
            poll_ms: millis(poll),
            followups_ms: followups.iter().map(|d| millis(*d)).collect(),
            gap_ms: millis(gap),
        }
    }
}

/// A `sync` request being followed up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    pub requested_at: i64,
    /// Whether the sync at once has run.
    pub started: bool,
    /// How many follow-ups have passed.
    pub passed: usize,
}

/// What the worker knows about one user's timing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserClock {
    /// When the worker first saw a notification of this user still queued.
    pub pending_since: Option<i64>,
    pub last_sync_end: Option<i64>,
    /// None when polls are off.
    pub next_poll: Option<i64>,
    pub series: Option<Series>,
    /// After a failure: nothing before this.
    pub retry_at: Option<i64>,
    /// Failures in a row, for the backoff.
    pub failures: u32,
}

/// Pure: `period_ms` moved by up to a tenth either way, by `random`.
pub fn jittered(period_ms: i64, random: u32) -> i64 {
    let span = period_ms / 10;
    if span <= 0 {
        return period_ms;
    }
    let offset = i64::from(random) % (2 * span + 1) - span;
    period_ms + offset
}

impl UserClock {
    /// A user the worker has not seen before: polled at once when the
    /// worker starts, one period later when linked while it runs.
    pub fn new(timing: &Timing, now: i64, at_start: bool, random: u32) -> UserClock {
        let next_poll = match (timing.poll_ms, at_start) {
            (0, _) => None,
            (_, true) => Some(now),
            (period, false) => Some(now.saturating_add(jittered(period, random))),
        };
        UserClock {
            next_poll,
            ..UserClock::default()
        }
    }

    /// A `sync` request noticed at `now`: a new request restarts the series.
    pub fn request(&mut self, now: i64) {
        self.series = Some(Series {
            requested_at: now,
            started: false,
            passed: 0,
        });
    }

    /// When the next sync is due and why, as seen at `now`; None when
    /// nothing is. Of everything due by then, the most pressing reason
    /// counts: a notification behind an overdue poll is still a
    /// notification.
    pub fn next_sync(&self, timing: &Timing, now: i64) -> Option<(i64, Why)> {
        let notification = self.pending_since.map(|since| {
            let after_gap = self
                .last_sync_end
                .map_or(i64::MIN, |end| end + timing.gap_ms);
            (
                since.saturating_add(DEBOUNCE_MS).max(after_gap),
                Why::Notification,
            )
        });
        let series = self.series.as_ref().and_then(|s| {
            if !s.started {
                return Some((s.requested_at, Why::Requested));
            }
            let offset = timing.followups_ms.get(s.passed)?;
            Some((s.requested_at.saturating_add(*offset), Why::FollowUp))
        });
        let poll = self.next_poll.map(|at| (at, Why::Poll));
        let retry_at = self.retry_at.unwrap_or(i64::MIN);
        let candidates =
            [notification, series, poll].map(|c| c.map(|(at, why)| (at.max(retry_at), why)));
        let earliest = candidates.iter().flatten().map(|&(at, _)| at).min()?;
        let horizon = earliest.max(now);
        let why = candidates
            .iter()
            .flatten()
            .filter(|&&(at, _)| at <= horizon)
            .map(|&(_, why)| why)
            .min()?;
        Some((earliest, why))
    }

    /// A sync that ran from `started` to `ended` and emitted `emitted`
    /// groups: the notifications pending before it are done, the poll
    /// starts over, and a `sync` series ends once something new came.
    pub fn synced(
        &mut self,
        timing: &Timing,
        started: i64,
        ended: i64,
        emitted: usize,
        random: u32,
    ) {
        self.pending_since = None;
        self.last_sync_end = Some(ended);
        self.retry_at = None;
        self.failures = 0;
        if timing.poll_ms > 0 {
            self.next_poll = Some(ended.saturating_add(jittered(timing.poll_ms, random)));
        }
        if let Some(s) = &mut self.series {
            s.started = true;
            // Follow-ups this sync already covered are skipped.
            s.passed = timing
                .followups_ms
                .iter()
                .take_while(|&&f| s.requested_at.saturating_add(f) <= started)
                .count();
            if emitted > 0 || s.passed >= timing.followups_ms.len() {
                self.series = None;
            }
        }
    }

    /// A sync that failed; everything due stays due, from `retry_at` on.
    /// The backoff alone spaces the retries: the gap after a sync counts
    /// from the last one that worked.
    pub fn failed(&mut self, retry_at: i64) {
        self.retry_at = Some(retry_at);
        self.failures = self.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            poll_ms: 60_000,
            followups_ms: vec![20_000, 60_000, 180_000],
            gap_ms: millis(DEFAULT_SYNC_GAP),
        }
    }

    #[test]
    fn jitter_stays_within_a_tenth_and_covers_it() {
        assert_eq!(jittered(1_000, 0), 900);
        assert_eq!(jittered(1_000, 100), 1_000);
        assert_eq!(jittered(1_000, 200), 1_100);
        assert_eq!(jittered(1_000, 201), 900);
        for r in [1, 77, 12_345, u32::MAX] {
            let j = jittered(3_600_000, r);
            assert!((3_240_000..=3_960_000).contains(&j), "{j}");
        }
        assert_eq!(jittered(5, 3), 5, "too short to move");
    }

    #[test]
    fn users_known_at_start_are_polled_at_once_later_ones_a_period_later() {
        let t = timing();
        let at_start = UserClock::new(&t, 1_000, true, 0);
        assert_eq!(at_start.next_sync(&t, 0), Some((1_000, Why::Poll)));
        // 6_000 moves a 60 s period by nothing.
        let linked_later = UserClock::new(&t, 1_000, false, 6_000);
        assert_eq!(linked_later.next_sync(&t, 0), Some((61_000, Why::Poll)));
        let off = Timing::default();
        assert_eq!(
            UserClock::new(&off, 1_000, true, 0).next_sync(&off, 0),
            None
        );
    }

    #[test]
    fn a_notification_waits_for_company_and_for_the_gap_after_the_last_sync() {
        let t = Timing::default();
        let mut u = UserClock {
            pending_since: Some(10_000),
            ..UserClock::default()
        };
        assert_eq!(u.next_sync(&t, 0), Some((11_500, Why::Notification)));
        u.synced(&t, 11_500, 12_000, 0, 0);
        assert_eq!(u.next_sync(&t, 0), None, "the notifications are done");
        // One came during the sync: it waits for the gap, not 1.5 s.
        u.pending_since = Some(12_100);
        assert_eq!(u.next_sync(&t, 0), Some((17_000, Why::Notification)));
    }

    #[test]
    fn a_steady_flood_syncs_every_few_seconds_and_never_starves() {
        // A notification every 100 ms for a minute, each sync taking 200 ms.
        let t = Timing::default();
        let mut u = UserClock::default();
        let mut syncs = 0;
        let mut now = 0;
        while now < 60_000 {
            if u.pending_since.is_none() {
                u.pending_since = Some(now);
            }
            if let Some((at, _)) = u.next_sync(&t, now).filter(|&(at, _)| at <= now) {
                assert!(at <= now);
                u.synced(&t, now, now + 200, 1, 0);
                syncs += 1;
            }
            now += 100;
        }
        assert!((10..=13).contains(&syncs), "{syncs}");
    }

    #[test]
    fn a_request_syncs_at_once_then_follows_up_until_something_new_comes() {
        let t = timing();
        let mut u = UserClock::new(&t, 0, false, 6_000);
        u.request(5_000);
        assert_eq!(u.next_sync(&t, 0), Some((5_000, Why::Requested)));
        u.synced(&t, 5_000, 5_300, 0, 6_000);
        assert_eq!(u.next_sync(&t, 0), Some((25_000, Why::FollowUp)));
        u.synced(&t, 25_000, 25_300, 0, 6_000);
        assert_eq!(u.next_sync(&t, 0), Some((65_000, Why::FollowUp)));
        u.synced(&t, 65_000, 65_300, 1, 6_000);
        assert_eq!(u.series, None, "something new: the series ends early");
        assert_eq!(u.next_sync(&t, 0), Some((125_300, Why::Poll)));
    }

    #[test]
    fn a_series_ends_after_its_last_follow_up_and_a_new_request_restarts_it() {
        let t = Timing {
            poll_ms: 0,
            followups_ms: vec![1_000],
            gap_ms: millis(DEFAULT_SYNC_GAP),
        };
        let mut u = UserClock::default();
        u.request(0);
        u.synced(&t, 0, 10, 0, 0);
        u.request(500);
        assert_eq!(u.next_sync(&t, 0), Some((500, Why::Requested)));
        u.synced(&t, 500, 510, 0, 0);
        assert_eq!(u.next_sync(&t, 0), Some((1_500, Why::FollowUp)));
        // A notification sync after the follow-up time covers it.
        u.synced(&t, 1_600, 1_700, 0, 0);
        assert_eq!(u.series, None);
        assert_eq!(u.next_sync(&t, 0), None);
    }

    #[test]
    fn after_a_failure_everything_waits_and_the_foreground_goes_first() {
        let t = timing();
        let mut u = UserClock::new(&t, 0, true, 0);
        u.failed(2_100);
        assert_eq!(u.next_sync(&t, 0), Some((2_100, Why::Poll)));
        u.pending_since = Some(150);
        assert_eq!(u.next_sync(&t, 0), Some((2_100, Why::Notification)));
        // A notification behind an overdue poll is served as one.
        let mut behind = UserClock::new(&t, 0, true, 0);
        behind.pending_since = Some(10_000);
        assert_eq!(behind.next_sync(&t, 5_000), Some((0, Why::Poll)));
        assert_eq!(behind.next_sync(&t, 11_500), Some((0, Why::Notification)));
        assert_eq!(Why::Notification.priority(), Priority::Foreground);
        assert_eq!(Why::Poll.priority(), Priority::Background);
        assert_eq!(u.failures, 1);
        u.synced(&t, 2_100, 2_200, 0, 0);
        assert_eq!((u.failures, u.retry_at), (0, None));
    }
}
