//! The clock is passed in, so token expiry, backoff and link windows are
//! tested without sleeping.

use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Unix seconds, UTC.
    fn now(&self) -> i64;

    /// Unix milliseconds, for waits shorter than a second (retries in
    /// tests). A clock that only knows seconds gives whole seconds.
    fn now_millis(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            // A clock before 1970 is a broken router clock; 0 keeps every
            // expiry check conservative (tokens look fresh, not expired).
            .unwrap_or(0)
    }

    fn now_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(crate::timefmt::millis)
            .unwrap_or(0)
    }
}

/// A clock that says what the test tells it.
#[cfg(test)]
pub struct FixedClock(pub std::sync::Mutex<i64>);

#[cfg(test)]
impl FixedClock {
    pub fn at(now: i64) -> FixedClock {
        FixedClock(std::sync::Mutex::new(now))
    }
    pub fn advance(&self, secs: i64) {
        *self.0.lock().unwrap() += secs;
    }
}

#[cfg(test)]
impl Clock for FixedClock {
    fn now(&self) -> i64 {
        *self.0.lock().unwrap()
    }
}
