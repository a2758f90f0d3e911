//! The relay's own API budget: one token bucket for every Withings call of
//! the process. Withings allows an app about 120 calls a minute across
//! all its users (facts sheet §4.2) and answers 601 beyond; the relay
//! stays under a lower budget of its own (`--api-budget`, default 100) so
//! that a hand-run `fetch` or another tool on the same app has room too.
//!
//! Calls a person waits for (notification syncs, `sync`, linking) may
//! empty the bucket; background work (polls, subscription checks) stops at
//! a reserve, so it never makes a notification wait. The OAuth code
//! exchange never waits at all: the code dies after 30 s (facts sheet
//! §1.2), so it takes its token on credit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Calls a minute when `--api-budget` is not given.
pub const DEFAULT_PER_MINUTE: u32 = 100;

/// Who is asking, which decides how deep into the bucket it may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Must not wait: the OAuth code exchange. Takes a token even on credit.
    Urgent,
    /// A person is waiting: notification syncs, `sync`, linking, `fetch`.
    Foreground,
    /// Nobody is waiting: polls and subscription checks. Leaves the reserve.
    Background,
}

/// One call, in the bucket's units. A bucket for N calls a minute refills
/// N units a millisecond, so the arithmetic stays in whole numbers.
const CALL: i64 = 60_000;

/// Pure token-bucket arithmetic; time comes in as milliseconds from any
/// fixed origin.
#[derive(Clone, Debug)]
pub struct Bucket {
    per_minute: i64,
    capacity: i64,
    /// What background work leaves untouched.
    reserve: i64,
    level: i64,
    at_ms: i64,
}

impl Bucket {
    /// A full bucket for `per_minute` calls a minute. It holds a tenth of
    /// a minute's calls (at least 2), so even after a burst any 60 s see at
    /// most 110 calls at the default budget; a quarter of it is the reserve.
    pub fn new(per_minute: u32, now_ms: i64) -> Bucket {
        let per_minute = i64::from(per_minute.max(1));
        let capacity = (per_minute / 10).max(2) * CALL;
        Bucket {
            per_minute,
            capacity,
            reserve: capacity / 4,
            level: capacity,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: i64) {
        // A clock that went back refills nothing.
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0);
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.per_minute))
            .min(self.capacity);
        self.at_ms = now_ms.max(self.at_ms);
    }

    /// The level `priority` needs before it may take a call; None for
    /// Urgent, which never waits.
    fn needs(&self, priority: Priority) -> Option<i64> {
        match priority {
            Priority::Urgent => None,
            Priority::Foreground => Some(CALL),
            Priority::Background => Some(CALL + self.reserve),
        }
    }

    /// How long `priority` must wait before a call, at `now_ms`; zero when
    /// it may call now.
    pub fn wait_ms(&mut self, priority: Priority, now_ms: i64) -> i64 {
        self.refill(now_ms);
        match self.needs(priority) {
            Some(need) if self.level < need => {
                let missing = need - self.level;
                // Rounded up: after the wait the level is enough.
                (missing + self.per_minute - 1) / self.per_minute
            }
            _ => 0,
        }
    }

    /// Takes one call for `priority` if it need not wait; otherwise says
    /// how many milliseconds to wait before asking again.
    pub fn try_take(&mut self, priority: Priority, now_ms: i64) -> Result<(), i64> {
        match self.wait_ms(priority, now_ms) {
            0 => {
                self.level -= CALL;
                Ok(())
            }
            wait => Err(wait),
        }
    }

    /// True when the bucket is full again: any backlog has drained.
    pub fn is_full(&self) -> bool {
        self.level >= self.capacity
    }
}

/// The bucket shared by the threads of one process.
pub struct Budget {
    bucket: Mutex<Bucket>,
    per_minute: u32,
    /// A monotonic origin: a router's wall clock jumps when NTP first
    /// answers, which must not empty or fill the bucket.
    origin: Instant,
    /// Set once a caller had to wait; cleared when the bucket is full again.
    backlog: Mutex<bool>,
}

impl Budget {
    pub fn per_minute(per_minute: u32) -> Budget {
        Budget {
            bucket: Mutex::new(Bucket::new(per_minute, 0)),
            per_minute,
            origin: Instant::now(),
            backlog: Mutex::new(false),
        }
    }

    fn now_ms(&self) -> i64 {
        crate::timefmt::millis(self.origin.elapsed())
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket is plain numbers: a panic elsewhere cannot leave it
        // half-changed, so a poisoned lock is taken as it is.
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long a `priority` call would wait now, without taking anything:
    /// the worker defers background syncs by this rather than sleep in them.
    /// Work deferred is a backlog too.
    pub fn wait_for(&self, priority: Priority) -> Duration {
        let wait = self.bucket().wait_ms(priority, self.now_ms());
        if wait > 0 {
            self.backlog_formed();
        }
        Duration::from_millis(u64::try_from(wait).unwrap_or(0))
    }

    /// Warns when the budget starts holding calls back, once until the
    /// bucket is full again.
    fn backlog_formed(&self) {
        if self.set_backlog(true) {
            log::warn!(
                "the API budget of {} calls a minute (--api-budget) is used up: Withings calls now wait their turn, notifications first",
                self.per_minute
            );
        }
    }

    /// Takes one call, sleeping until the bucket allows it. `userid` is
    /// whose call it is, for the log.
    pub fn take(&self, priority: Priority, userid: &str) {
        loop {
            let (taken, full) = {
                let mut bucket = self.bucket();
                let taken = bucket.try_take(priority, self.now_ms());
                (taken, bucket.is_full())
            };
            let wait = match taken {
                Ok(()) => {
                    if full {
                        self.set_backlog(false);
                    }
                    return;
                }
                Err(ms) => Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
            };
            self.backlog_formed();
            log::debug!(
                "user {userid}: a Withings call waits {} for the API budget",
                crate::timefmt::duration_text(wait)
            );
            std::thread::sleep(wait);
        }
    }

    /// Records whether a backlog exists; true when one has just formed.
    fn set_backlog(&self, now: bool) -> bool {
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        let formed = now && !*backlog;
        *backlog = now;
        formed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_burst_then_one_call_per_share_of_a_minute() {
        // 100 a minute: a burst of 10, then one call every 600 ms.
        let mut b = Bucket::new(100, 0);
        for _ in 0..10 {
            assert_eq!(b.try_take(Priority::Foreground, 0), Ok(()));
        }
        assert_eq!(b.try_take(Priority::Foreground, 0), Err(600));
        assert_eq!(b.try_take(Priority::Foreground, 599), Err(1));
        assert_eq!(b.try_take(Priority::Foreground, 600), Ok(()));
        assert_eq!(b.try_take(Priority::Foreground, 600), Err(600));
    }

    #[test]
    fn any_minute_holds_at_most_the_budget_plus_the_burst() {
        let mut b = Bucket::new(100, 0);
        let mut calls = 0;
        for ms in 0..60_000 {
            while b.try_take(Priority::Foreground, ms).is_ok() {
                calls += 1;
            }
        }
        assert!(calls <= 110, "{calls}");
        assert!(calls >= 100, "{calls}");
    }

    #[test]
    fn background_work_leaves_the_reserve_to_the_foreground() {
        // 6 a minute: holds 2 calls, a reserve of half a call, one call
        // every 10 s.
        let mut b = Bucket::new(6, 0);
        assert_eq!(b.try_take(Priority::Background, 0), Ok(()));
        // 1 call left: below the 1.5 background needs, enough for a person.
        assert_eq!(b.wait_ms(Priority::Background, 0), 5_000);
        assert_eq!(b.try_take(Priority::Foreground, 0), Ok(()));
        assert_eq!(b.wait_ms(Priority::Foreground, 0), 10_000);
        assert_eq!(b.wait_ms(Priority::Background, 0), 15_000);
        // When the bucket refills, the foreground's turn comes first.
        assert_eq!(b.try_take(Priority::Background, 10_000), Err(5_000));
        assert_eq!(b.try_take(Priority::Foreground, 10_000), Ok(()));
    }

    #[test]
    fn the_code_exchange_never_waits_and_its_debt_is_paid_by_the_others() {
        let mut b = Bucket::new(6, 0);
        for _ in 0..3 {
            assert_eq!(b.try_take(Priority::Urgent, 0), Ok(()));
        }
        // Two held, three taken: one in debt, and a call needs one more.
        assert_eq!(b.wait_ms(Priority::Foreground, 0), 20_000);
        assert!(!b.is_full());
        assert_eq!(b.wait_ms(Priority::Foreground, 40_000), 0);
        assert!(b.is_full());
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing_and_never_panics() {
        let mut b = Bucket::new(6, 50_000);
        assert_eq!(b.try_take(Priority::Foreground, 50_000), Ok(()));
        assert_eq!(b.try_take(Priority::Foreground, 50_000), Ok(()));
        assert_eq!(b.wait_ms(Priority::Foreground, 0), 10_000);
        assert_eq!(b.wait_ms(Priority::Foreground, i64::MAX), 0);
        let mut tiny = Bucket::new(0, 0);
        assert_eq!(tiny.try_take(Priority::Background, 0), Ok(()));
    }

    #[test]
    fn the_shared_budget_takes_at_once_while_calls_are_left() {
        // 6 a minute: two calls at once, the next one 10 s later.
        let budget = Budget::per_minute(6);
        assert_eq!(budget.wait_for(Priority::Background), Duration::ZERO);
        budget.take(Priority::Foreground, "test");
        budget.take(Priority::Foreground, "test");
        assert!(budget.wait_for(Priority::Foreground) > Duration::from_secs(5));
    }
}
