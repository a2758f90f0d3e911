//! The slow path. The webhook only queues; this thread drains the queue:
//! per user with pending notifications, one sync, then the notifications
//! are dropped. Failures leave them queued and back off per user.

pub mod retry;
pub mod session;
pub mod sync;

use crate::context::Context;
use crate::error::Error;
use crate::outputs::Emit;
use crate::timefmt::duration_text;
use crate::worker::retry::{classify, Disposition, Schedule};
use crate::worker::session::Session;
use crate::worker::sync::sync_user;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Why the worker was woken.
pub enum Wake {
    /// A notification was queued.
    Queued,
    /// A user was (re)linked: forget its backoff.
    Linked(String),
}

/// Even with nothing to do, look at the queue this often (milliseconds): a
/// `fetch` or a restarted process may have changed things behind our back.
const IDLE_RESCAN_MS: i64 = 600_000;

struct Backoff {
    attempts: u32,
    /// Unix milliseconds.
    next_at: i64,
}

pub struct Worker {
    pub ctx: Arc<Context>,
    pub out: Box<dyn Emit>,
    backoff: HashMap<String, Backoff>,
    schedule: Schedule,
}

impl Worker {
    pub fn new(ctx: Arc<Context>, out: Box<dyn Emit>) -> Worker {
        Worker {
            ctx,
            out,
            backoff: HashMap::new(),
            schedule: Schedule::default(),
        }
    }

    /// Retries on `schedule` instead of the default one.
    pub fn with_schedule(mut self, schedule: Schedule) -> Worker {
        self.schedule = schedule;
        self
    }

    pub fn run(mut self, wake: Receiver<Wake>) {
        loop {
            let next_due = self.run_due();
            let now = self.ctx.clock.now_millis();
            let wait = next_due.map_or(IDLE_RESCAN_MS, |t| (t - now).clamp(0, IDLE_RESCAN_MS));
            // Clamped to 0..=IDLE_RESCAN_MS just above: the cast is lossless.
            match wake.recv_timeout(Duration::from_millis(wait as u64)) {
                Ok(w) => self.note(w),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.drain_wakes(&wake);
        }
    }

    /// Takes every wake-up already waiting: one pass serves them all.
    fn drain_wakes(&mut self, wake: &Receiver<Wake>) {
        while let Ok(w) = wake.try_recv() {
            self.note(w);
        }
    }

    fn note(&mut self, wake: Wake) {
        if let Wake::Linked(userid) = wake {
            self.backoff.remove(&userid);
        }
    }

    /// Syncs every user whose backoff has passed; returns when (Unix
    /// milliseconds) the earliest postponed user is due again.
    pub fn run_due(&mut self) -> Option<i64> {
        let pending = match self.ctx.store.queue.pending() {
            Ok(p) => p,
            Err(e) => {
                log::error!("cannot read the notification queue: {e}");
                let delay = self.schedule.delay(Disposition::Transient, 3);
                return Some(self.ctx.clock.now_millis() + millis(delay));
            }
        };
        self.backoff
            .retain(|userid, _| pending.contains_key(userid));
        let mut next_due: Option<i64> = None;
        for (userid, files) in pending {
            let now = self.ctx.clock.now_millis();
            if let Some(b) = self.backoff.get(&userid) {
                if b.next_at > now {
                    next_due = Some(next_due.map_or(b.next_at, |t| t.min(b.next_at)));
                    continue;
                }
            }
            match self.sync_one(&userid) {
                Ok(emitted) => {
                    log::info!(
                        "user {userid}: synced {} notification(s), {emitted} new measurement group(s)",
                        files.len()
                    );
                    self.backoff.remove(&userid);
                    if let Err(e) = self.ctx.store.queue.remove(&files) {
                        // Harmless: the next pass syncs again and emits nothing new.
                        log::warn!("user {userid}: synced, but {e}");
                    }
                }
                Err(e) => {
                    let next_at = self.postpone(&userid, &e, now);
                    next_due = Some(next_due.map_or(next_at, |t| t.min(next_at)));
                }
            }
        }
        next_due
    }

    fn sync_one(&mut self, userid: &str) -> crate::error::Result<usize> {
        let mut session = Session::open(&self.ctx, userid)?;
        sync_user(
            &mut session,
            &self.ctx.store,
            &mut *self.out,
            self.ctx.clock.now(),
        )
    }

    fn postpone(&mut self, userid: &str, e: &Error, now: i64) -> i64 {
        let disposition = classify(e);
        let b = self.backoff.entry(userid.to_string()).or_insert(Backoff {
            attempts: 0,
            next_at: now,
        });
        b.attempts = b.attempts.saturating_add(1);
        let wait = self.schedule.delay(disposition, b.attempts);
        b.next_at = now.saturating_add(millis(wait));
        let delay = duration_text(wait);
        match disposition {
            Disposition::Transient => log::warn!(
                "user {userid}: sync failed (attempt {}): {e}; retrying in {delay}, notifications stay queued",
                b.attempts
            ),
            Disposition::Persistent => log::error!(
                "user {userid}: sync failed and will not fix itself (attempt {}): {e}; retrying in {delay}, notifications stay queued",
                b.attempts
            ),
            Disposition::NeedsReauth => log::error!(
                "user {userid}: {e}; waiting for the account to be linked again"
            ),
        }
        b.next_at
    }
}

/// Retry delays are at most an hour: milliseconds fit an i64 many times.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::secret::Secret;
    use crate::store::testdir::TestDir;
    use crate::store::{Notification, StateDir, UserRecord};
    use crate::weburl::BaseUrl;
    use crate::withings::api::Api;
    use crate::withings::oauth::Credentials;

    /// A worker whose Withings is a closed port on loopback: every call
    /// fails the way a network outage does.
    fn worker_with_outage(dir: &TestDir, clock: Arc<FixedClock>) -> Worker {
        let store = StateDir::open(&dir.path().join("state")).unwrap();
        store
            .users
            .save(
                "42",
                &UserRecord {
                    userid: "42".into(),
                    access_token: Secret::new("a"),
                    access_expires_at: i64::MAX,
                    refresh_token: Secret::new("r"),
                    scope: String::new(),
                    linked_at: 0,
                    needs_reauth: false,
                },
            )
            .unwrap();
        store
            .queue
            .push(&Notification {
                userid: "42".into(),
                appli: 1,
                startdate: None,
                enddate: None,
                received_at: 0,
            })
            .unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = Api::new(
            BaseUrl::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap(),
            vec![],
        );
        drop(closed);
        let creds = Credentials {
            client_id: "c".into(),
            client_secret: Secret::new("s"),
        };
        let outbox = Arc::new(store.outbox(&[]).unwrap());
        let out = crate::outputs::delivery::start(outbox, Vec::new(), Schedule::default());
        let ctx = Context {
            api,
            creds,
            store,
            clock,
        };
        Worker::new(Arc::new(ctx), Box::new(out))
    }

    /// When the earliest postponed user is due, in Unix seconds.
    fn due_secs(worker: &mut Worker) -> Option<i64> {
        worker.run_due().map(|ms| ms / 1000)
    }

    #[test]
    fn an_outage_backs_off_per_user_and_keeps_the_notification() {
        let dir = TestDir::new("worker-backoff");
        let clock = Arc::new(FixedClock::at(1_000));
        let mut worker = worker_with_outage(&dir, Arc::clone(&clock));
        assert_eq!(due_secs(&mut worker), Some(1_002), "first retry after 2 s");
        clock.advance(1);
        assert_eq!(
            due_secs(&mut worker),
            Some(1_002),
            "not due yet: no new attempt"
        );
        clock.advance(1);
        assert_eq!(due_secs(&mut worker), Some(1_006), "then 4 s");
        clock.advance(4);
        assert_eq!(due_secs(&mut worker), Some(1_014), "then 8 s");
        assert_eq!(
            worker.ctx.store.queue.pending().unwrap()["42"].len(),
            1,
            "still queued"
        );
    }

    #[test]
    fn relinking_forgets_the_backoff() {
        let dir = TestDir::new("worker-relink");
        let clock = Arc::new(FixedClock::at(1_000));
        let mut worker = worker_with_outage(&dir, Arc::clone(&clock));
        worker.run_due();
        worker.run_due();
        assert_eq!(worker.backoff["42"].attempts, 1);
        let (wake, woken) = std::sync::mpsc::channel();
        wake.send(Wake::Linked("42".into())).unwrap();
        drop(wake);
        worker.drain_wakes(&woken);
        assert!(!worker.backoff.contains_key("42"));
    }
}
