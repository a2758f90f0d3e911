//! The slow path. The webhook only queues; this thread decides when each
//! user is synced (`schedule.rs`: notifications after a short debounce,
//! the safety-net poll, `sync` requests and their follow-ups, backoff
//! after failures) and runs one sync at a time. Notifications pending
//! when a sync starts are dropped once it succeeded; those arriving
//! during it wait for the next one. A user whose tokens are dead or gone
//! gets no Withings call until it is linked again.
//!
//! A `sync` request's follow-ups live only in memory: a restart of
//! `serve` forgets them (the sync at start still runs).

pub mod retry;
pub mod schedule;
pub mod session;
pub mod sync;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::outputs::Emit;
use crate::store::{arrival_secs, Failure, Health};
use crate::timefmt::{duration_text, millis};
use crate::withings::budget::Priority;
use crate::worker::retry::{classify, Disposition, Schedule};
use crate::worker::schedule::{Timing, UserClock, Why};
use crate::worker::session::Session;
use crate::worker::sync::sync_user;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Why the worker was woken.
pub enum Wake {
    /// A notification was queued.
    Queued,
    /// A user was (re)linked: forget its backoff, and call Withings for it
    /// again.
    Linked(String),
}

/// Even with nothing due, look at the state dir this often (milliseconds):
/// `sync` requests arrive as files, and `authorize` or `fetch` in another
/// process may have changed things. A few directory listings a second cost
/// nothing, and no inotify means no unsafe code.
const SCAN_MS: i64 = 1_000;

/// Notifications queued for a user, as the last look at `queue/` found them.
type Pending = BTreeMap<String, Vec<PathBuf>>;

/// One user as the worker follows it: linked, or with notifications
/// queued, or both.
struct Tracked {
    userid: String,
    clock: UserClock,
    /// No Withings call until linked again (a dead refresh token, or no
    /// token file at all); said once, when found.
    dead: bool,
}

pub struct Worker {
    pub ctx: Arc<Context>,
    pub out: Box<dyn Emit>,
    /// In the order found; a handful of users, so a list does.
    users: Vec<Tracked>,
    timing: Timing,
    schedule: Schedule,
    /// Whether the state dir was looked at yet: users found the first time
    /// are polled at once.
    started: bool,
}

/// A random number for the poll's jitter: std's hasher keys are random.
fn random() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    // Only the low bits are wanted.
    hasher.finish() as u32
}

impl Worker {
    pub fn new(ctx: Arc<Context>, out: Box<dyn Emit>) -> Worker {
        Worker {
            ctx,
            out,
            users: Vec::new(),
            timing: Timing::default(),
            schedule: Schedule::default(),
            started: false,
        }
    }

    /// Retries on `schedule` instead of the default one.
    pub fn with_schedule(mut self, schedule: Schedule) -> Worker {
        self.schedule = schedule;
        self
    }

    /// Polls and follows up `sync` requests on `timing` (by default: no
    /// polls, no follow-ups).
    pub fn with_timing(mut self, timing: Timing) -> Worker {
        self.timing = timing;
        self
    }

    pub fn run(mut self, wake: Receiver<Wake>) {
        loop {
            let next_due = self.run_due();
            let now = self.ctx.clock.now_millis();
            let wait = next_due.map_or(SCAN_MS, |t| (t - now).clamp(0, SCAN_MS));
            // Clamped to 0..=SCAN_MS just above: the cast is lossless.
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
            self.revive(&userid);
        }
    }

    fn user(&mut self, userid: &str) -> Option<&mut Tracked> {
        self.users.iter_mut().find(|u| u.userid == userid)
    }

    /// The user may be called again: linked anew.
    fn revive(&mut self, userid: &str) {
        if let Some(user) = self.user(userid) {
            if user.dead {
                log::info!("user {userid}: linked again; syncing resumes");
            }
            user.dead = false;
            user.clock.retry_at = None;
            user.clock.failures = 0;
        }
    }

    /// Looks at the state dir, then runs the most pressing sync that is
    /// due, if any; returns when (Unix milliseconds) to look again.
    pub fn run_due(&mut self) -> Option<i64> {
        let now = self.ctx.clock.now_millis();
        let pending = match self.scan(now) {
            Ok(p) => p,
            Err(e) => {
                log::error!("cannot read the state dir: {e}");
                let delay = self.schedule.delay(Disposition::Transient, 3);
                return Some(now + millis(delay));
            }
        };
        let mut next_due: Option<i64> = None;
        let mut best: Option<(Why, i64, &String)> = None;
        for user in self.users.iter().filter(|u| !u.dead) {
            let Some((at, why)) = user.clock.next_sync(&self.timing, now) else {
                continue;
            };
            if at > now {
                next_due = Some(next_due.map_or(at, |t| t.min(at)));
            } else if best.is_none_or(|(w, a, _)| (why, at) < (w, a)) {
                best = Some((why, at, &user.userid));
            }
        }
        let Some((why, _, userid)) = best else {
            return next_due;
        };
        let userid = userid.clone();
        // Background work waits for the budget here, not inside a call, so
        // that a notification arriving meanwhile goes first.
        if why.priority() == Priority::Background {
            let wait = self.ctx.budget.wait_for(Priority::Background);
            if !wait.is_zero() {
                let at = now + millis(wait);
                return Some(next_due.map_or(at, |t| t.min(at)));
            }
        }
        let files = pending.get(&userid).cloned().unwrap_or_default();
        self.sync(&userid, why, &files, now);
        // More may be due already.
        Some(now)
    }

    /// Takes `sync` requests, lists linked users and queued notifications,
    /// and brings each user's clock up to date with them.
    fn scan(&mut self, now: i64) -> Result<Pending> {
        let store = &self.ctx.store;
        let requests = store.sync_requests.take()?;
        let pending = store.queue.pending()?;
        let linked = store.users.list()?;
        let at_start = !self.started;
        self.started = true;
        let is_linked = |id: &String| linked.binary_search(id).is_ok();
        self.users
            .retain(|u| is_linked(&u.userid) || pending.contains_key(&u.userid));
        for userid in linked.iter().chain(pending.keys()) {
            if self.users.iter().all(|u| u.userid != *userid) {
                let clock = if is_linked(userid) {
                    UserClock::new(&self.timing, now, at_start, random())
                } else {
                    UserClock::default()
                };
                self.users.push(Tracked {
                    userid: userid.clone(),
                    clock,
                    dead: false,
                });
            }
        }
        for user in self.users.iter_mut() {
            if pending.contains_key(&user.userid) {
                user.clock.pending_since.get_or_insert(now);
            } else {
                user.clock.pending_since = None;
            }
        }
        for request in requests {
            let asked = match request {
                Some(userid) if is_linked(&userid) => vec![userid],
                Some(userid) => {
                    log::warn!("`sync` asked for user {userid}, who is not linked here: ignored");
                    continue;
                }
                None => linked.clone(),
            };
            for userid in asked {
                match self.user(&userid) {
                    Some(user) if user.dead => log::warn!("`sync` asked for user {userid}, who must be linked again first (`withings-relay authorize`): not synced"),
                    Some(user) => {
                        log::info!("user {userid}: `sync` asked for a sync");
                        user.clock.request(now);
                    }
                    None => {}
                }
            }
        }
        self.revive_relinked();
        Ok(pending)
    }

    /// Users linked again by another process (`authorize --paste`) send no
    /// wake-up: their token file tells.
    fn revive_relinked(&mut self) {
        let users = &self.ctx.store.users;
        let relinked: Vec<String> = self
            .users
            .iter()
            .filter(|u| u.dead)
            .filter(|u| matches!(users.load(&u.userid), Ok(Some(r)) if !r.needs_reauth))
            .map(|u| u.userid.clone())
            .collect();
        for userid in relinked {
            self.revive(&userid);
        }
    }

    /// Syncs one user, then records the outcome: in its clock, in the queue
    /// (the notifications `files` are done), in `health/`.
    fn sync(&mut self, userid: &str, why: Why, files: &[PathBuf], started: i64) {
        let result = self.sync_one(userid, why.priority());
        let ended = self.ctx.clock.now_millis();
        let now = self.ctx.clock.now();
        match result {
            Ok(emitted) => {
                if !files.is_empty() {
                    log::info!(
                        "user {userid}: synced {} notification(s), {emitted} new measurement group(s)",
                        files.len()
                    );
                    if let Err(e) = self.ctx.store.queue.remove(files) {
                        // Harmless: the next pass syncs again and emits nothing new.
                        log::warn!("user {userid}: synced, but {e}");
                    }
                } else if emitted > 0 || why != Why::Poll {
                    log::info!(
                        "user {userid}: synced ({}), {emitted} new measurement group(s)",
                        why.as_str()
                    );
                } else {
                    log::debug!("user {userid}: polled, nothing new");
                }
                let newest = files.iter().filter_map(|f| arrival_secs(f)).max();
                self.note_health(userid, |h| {
                    h.last_sync_ok_at = Some(now);
                    if newest > h.last_notification_at {
                        h.last_notification_at = newest;
                    }
                });
                let timing = &self.timing;
                if let Some(user) = self.users.iter_mut().find(|u| u.userid == userid) {
                    user.clock.synced(timing, started, ended, emitted, random());
                }
            }
            Err(e @ (Error::ReauthNeeded { .. } | Error::UnknownUser(_))) => {
                log::error!(
                    "user {userid}: {e}; no Withings call for this user until then, and its {} queued notification(s) wait",
                    files.len()
                );
                if let Some(user) = self.user(userid) {
                    user.dead = true;
                }
                self.note_failure(userid, &e, now);
            }
            Err(e) => {
                self.postpone(userid, &e, ended);
                self.note_failure(userid, &e, now);
            }
        }
    }

    fn sync_one(&mut self, userid: &str, priority: Priority) -> Result<usize> {
        let mut session = Session::open(&self.ctx, userid)?.with_priority(priority);
        sync_user(
            &mut session,
            &self.ctx.store,
            &mut *self.out,
            self.ctx.clock.now(),
        )
    }

    /// Records in `health/` how the user is doing; a report only, so a
    /// failure to write it is logged and the relay goes on.
    fn note_health(&self, userid: &str, change: impl FnOnce(&mut Health)) {
        if let Err(e) = self.ctx.store.health.update(userid, change) {
            log::warn!("user {userid}: cannot record the sync in health/: {e}");
        }
    }

    fn note_failure(&self, userid: &str, e: &Error, now: i64) {
        let message = e.to_string();
        self.note_health(userid, |h| {
            h.last_error = Some(Failure { at: now, message })
        });
    }

    fn postpone(&mut self, userid: &str, e: &Error, now: i64) {
        let disposition = classify(e);
        let schedule = self.schedule;
        let Some(user) = self.user(userid) else {
            return;
        };
        let attempts = user.clock.failures.saturating_add(1);
        let wait = schedule.delay(disposition, attempts);
        user.clock.failed(now.saturating_add(millis(wait)));
        let delay = duration_text(wait);
        match disposition {
            Disposition::Transient => log::warn!(
                "user {userid}: sync failed (attempt {attempts}): {e}; retrying in {delay}, notifications stay queued"
            ),
            Disposition::Persistent | Disposition::NeedsReauth => log::error!(
                "user {userid}: sync failed and will not fix itself (attempt {attempts}): {e}; retrying in {delay}, notifications stay queued"
            ),
        }
    }
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
    use crate::withings::budget::Budget;
    use crate::withings::oauth::Credentials;

    fn user(needs_reauth: bool) -> UserRecord {
        UserRecord {
            userid: "42".into(),
            access_token: Secret::new("a"),
            access_expires_at: i64::MAX,
            refresh_token: Secret::new("r"),
            scope: String::new(),
            linked_at: 0,
            needs_reauth,
        }
    }

    /// A worker whose Withings is a closed port on loopback: every call
    /// fails the way a network outage does.
    fn worker_with_outage(dir: &TestDir, clock: Arc<FixedClock>) -> Worker {
        let store = StateDir::open(&dir.path().join("state")).unwrap();
        store.users.save("42", &user(false)).unwrap();
        store.queue.push(&Notification::for_tests("42")).unwrap();
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
            budget: Budget::per_minute(1_000),
            store,
            clock,
        };
        Worker::new(Arc::new(ctx), Box::new(out))
    }

    /// When the worker looks again, in Unix seconds (rounded down).
    fn due_secs(worker: &mut Worker) -> Option<i64> {
        worker.run_due().map(|ms| ms / 1000)
    }

    #[test]
    fn an_outage_backs_off_per_user_and_keeps_the_notification() {
        let dir = TestDir::new("worker-backoff");
        let clock = Arc::new(FixedClock::at(1_000));
        let mut worker = worker_with_outage(&dir, Arc::clone(&clock));
        assert_eq!(due_secs(&mut worker), Some(1_001), "the debounce: 1.5 s");
        clock.advance(2);
        assert_eq!(due_secs(&mut worker), Some(1_002), "tried, failed");
        assert_eq!(worker.user("42").unwrap().clock.failures, 1);
        assert_eq!(due_secs(&mut worker), Some(1_004), "first retry after 2 s");
        clock.advance(1);
        assert_eq!(due_secs(&mut worker), Some(1_004), "not due yet");
        assert_eq!(
            worker.user("42").unwrap().clock.failures,
            1,
            "no new attempt"
        );
        clock.advance(1);
        worker.run_due();
        assert_eq!(due_secs(&mut worker), Some(1_008), "then 4 s");
        let health = worker.ctx.store.health.load("42");
        assert!(health.last_error.is_some_and(|f| f.at == 1_004));
        assert_eq!(health.last_sync_ok_at, None);
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
        clock.advance(2);
        worker.run_due();
        assert_eq!(worker.user("42").unwrap().clock.failures, 1);
        let (wake, woken) = std::sync::mpsc::channel();
        wake.send(Wake::Linked("42".into())).unwrap();
        drop(wake);
        worker.drain_wakes(&woken);
        assert_eq!(worker.user("42").unwrap().clock.failures, 0);
        assert_eq!(worker.user("42").unwrap().clock.retry_at, None);
    }

    #[test]
    fn a_user_needing_reauthorization_is_left_alone_until_linked_again() {
        let dir = TestDir::new("worker-dead");
        let clock = Arc::new(FixedClock::at(1_000));
        let mut worker = worker_with_outage(&dir, Arc::clone(&clock));
        let store = &worker.ctx.store;
        store.users.save("42", &user(true)).unwrap();
        store.sync_requests.push(Some("42")).unwrap();
        worker.run_due();
        assert!(worker.user("42").unwrap().dead, "found without any call");
        let failure = worker.ctx.store.health.load("42").last_error.unwrap();
        assert!(failure.message.contains("authorize"), "{}", failure.message);
        clock.advance(3_600);
        assert_eq!(due_secs(&mut worker), None, "nothing is due for it");
        assert_eq!(worker.ctx.store.queue.pending().unwrap()["42"].len(), 1);
        // `authorize` in another process writes fresh tokens.
        worker.ctx.store.users.save("42", &user(false)).unwrap();
        worker.run_due();
        assert!(!worker.user("42").unwrap().dead);
        assert_eq!(
            worker.user("42").unwrap().clock.failures,
            1,
            "tried again: the outage"
        );
    }
}
