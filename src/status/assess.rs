//! Pure: what the facts mean at `now`, and what needs a person. Nothing
//! here reads a file or the clock.

use super::facts::{Facts, OutputFacts, UserFacts};
use crate::store::ServeInfo;

/// With `--poll` on, a sync is stale after this many poll periods without
/// success, plus [`STALE_SLACK_SECS`]: one missed poll is a Withings
/// hiccup the next one repairs, three in a row is not (the poll's jitter
/// and the retries fit easily in the slack).
pub const STALE_POLLS: i64 = 3;
pub const STALE_SLACK_SECS: i64 = 600;

/// A queued notification is synced within seconds, or retried with waits
/// of at most 300 s (worker/retry.rs): one still queued after 30 minutes
/// means syncs keep failing. This is the only staleness test when no poll
/// period is known (polling off, or no `serve.json` from a `serve` of this
/// version): with webhooks alone, a long quiet spell is a user who did not
/// weigh in, not a fault.
pub const QUEUE_STUCK_SECS: i64 = 30 * 60;

/// A courier retries a failing output with waits of at most 300 s: a
/// record still undelivered after 15 minutes means the output stayed down
/// through several attempts (a broker restart takes seconds).
pub const BACKLOG_STUCK_SECS: i64 = 15 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserState {
    Linked,
    /// Withings refused the refresh token.
    NeedsReauth,
    /// Withings said the user revoked access (appli 46).
    Unlinked,
}

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Linked => "linked",
            UserState::NeedsReauth => "needs_reauth",
            UserState::Unlinked => "unlinked",
        }
    }
}

/// How many and since when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub count: usize,
    pub oldest_at: Option<i64>,
}

impl Backlog {
    fn of(times: &[i64]) -> Backlog {
        Backlog {
            count: times.len(),
            oldest_at: times.iter().min().copied(),
        }
    }

    fn older_than(&self, now: i64, secs: i64) -> bool {
        self.oldest_at
            .is_some_and(|at| now.saturating_sub(at) > secs)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserReport {
    pub facts: UserFacts,
    pub state: UserState,
    pub queued: Backlog,
}

/// Something a person has to look at. `kind` is a stable code for
/// monitors; `message` says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub userid: Option<String>,
    pub kind: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub now: i64,
    pub serve: Option<ServeInfo>,
    pub users: Vec<UserReport>,
    /// Every queued notification, of any user.
    pub queued: Backlog,
    pub outputs: Vec<OutputFacts>,
    /// Seconds without a successful sync after which a user's sync is
    /// stale; None when no poll period is known.
    pub stale_after: Option<i64>,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Pure: the staleness limit for a poll period in seconds (0: off).
pub fn stale_after(poll_secs: u64) -> Option<i64> {
    let poll = i64::try_from(poll_secs).unwrap_or(i64::MAX);
    (poll > 0).then(|| {
        poll.saturating_mul(STALE_POLLS)
            .saturating_add(STALE_SLACK_SECS)
    })
}

fn state_of(user: &UserFacts) -> UserState {
    let linked_at = user.account.as_ref().map(|a| a.linked_at);
    match (&user.health.unlinked, &user.account) {
        // Linking again after the unlink clears it; a newer link wins even
        // if the flag was left behind.
        (Some(u), _) if linked_at.is_none_or(|l| l <= u.at) => UserState::Unlinked,
        (_, Some(a)) if a.needs_reauth => UserState::NeedsReauth,
        _ => UserState::Linked,
    }
}

fn problem(userid: Option<&str>, kind: &'static str, message: String) -> Problem {
    Problem {
        userid: userid.map(str::to_string),
        kind,
        message,
    }
}

/// The problems of one user.
fn user_problems(
    u: &UserReport,
    now: i64,
    stale_after: Option<i64>,
    serve_started: Option<i64>,
) -> Vec<Problem> {
    let id = u.facts.userid.as_str();
    let who = Some(id);
    let mut out = Vec::new();
    match u.state {
        UserState::NeedsReauth => out.push(problem(
            who,
            "needs_reauth",
            format!("Withings refused the refresh token of user {id}: run `withings-relay authorize` and link the account again (queued notifications are kept)"),
        )),
        UserState::Unlinked => out.push(problem(
            who,
            "unlinked",
            format!("Withings says user {id} revoked the relay's access: nothing is synced for them until `withings-relay authorize` links the account again"),
        )),
        UserState::Linked => {
            let health = &u.facts.health;
            // Never synced: count from linking or from the start of
            // `serve`, which syncs every user at start.
            let since = [
                health.last_sync_ok_at,
                u.facts.account.as_ref().map(|a| a.linked_at),
                serve_started,
            ]
            .into_iter()
            .flatten()
            .max();
            if let (Some(limit), Some(since)) = (stale_after, since) {
                if now.saturating_sub(since) > limit {
                    out.push(problem(
                        who,
                        "stale_sync",
                        format!("user {id} has not synced successfully for more than {} although `serve` polls every {}: see the last error, and whether `serve` is running", span(limit), span((limit - STALE_SLACK_SECS) / STALE_POLLS)),
                    ));
                }
            }
            if u.queued.older_than(now, QUEUE_STUCK_SECS) {
                out.push(problem(
                    who,
                    "queue_stuck",
                    format!("a notification for user {id} has waited more than {} for its sync: see the last error, and whether `serve` is running", span(QUEUE_STUCK_SECS)),
                ));
            }
            if let Some(check) = &health.subscriptions {
                for p in &check.problems {
                    out.push(problem(
                        who,
                        "subscription",
                        format!("user {id}: {}", super::redact(p)),
                    ));
                }
            }
        }
    }
    out
}

fn output_problem(o: &OutputFacts, now: i64) -> Option<Problem> {
    let backlog = Backlog {
        count: o.waiting,
        oldest_at: o.oldest_at,
    };
    backlog.older_than(now, BACKLOG_STUCK_SECS).then(|| {
        problem(
            None,
            "outbox_backlog",
            format!(
                "output {} has not delivered {} measurement group(s) for more than {}: see the relay's log for why",
                o.name,
                o.waiting,
                span(BACKLOG_STUCK_SECS)
            ),
        )
    })
}

/// Pure: judges `facts` at `now` (unix seconds).
pub fn assess(facts: Facts, now: i64) -> Report {
    let Facts {
        serve,
        users,
        queue,
        outputs,
        unreadable,
    } = facts;
    let stale_after = serve.as_ref().and_then(|s| stale_after(s.poll_secs));
    let serve_started = serve.as_ref().map(|s| s.started_at);
    let users: Vec<UserReport> = users
        .into_iter()
        .map(|u| UserReport {
            state: state_of(&u),
            queued: queue
                .iter()
                .find(|(id, _)| *id == u.userid)
                .map_or_else(Backlog::default, |(_, times)| Backlog::of(times)),
            facts: u,
        })
        .collect();
    let all: Vec<i64> = queue.iter().flat_map(|(_, times)| times).copied().collect();
    let mut problems = Vec::new();
    if users.is_empty() {
        problems.push(problem(
            None,
            "no_users",
            "no Withings account is linked: run `withings-relay authorize` while `serve` runs"
                .into(),
        ));
    }
    for u in &users {
        problems.extend(user_problems(u, now, stale_after, serve_started));
    }
    problems.extend(outputs.iter().filter_map(|o| output_problem(o, now)));
    for text in unreadable {
        problems.push(problem(None, "damaged", text));
    }
    Report {
        now,
        serve,
        users,
        queued: Backlog::of(&all),
        outputs,
        stale_after,
        problems,
    }
}

/// A span of seconds in the largest unit that keeps it short: `45 s`,
/// `12 min`, `5 h`, `3 d`.
pub fn span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::facts::Account;
    use crate::store::{Health, SubscriptionCheck, Unlinked};

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;

    fn linked(id: &str, last_sync: Option<i64>) -> UserFacts {
        UserFacts {
            userid: id.into(),
            account: Some(Account {
                linked_at: NOW - 100 * HOUR,
                access_expires_at: NOW + HOUR,
                needs_reauth: false,
            }),
            health: Health {
                last_sync_ok_at: last_sync,
                ..Health::default()
            },
            cursor: Some(NOW - 5 * HOUR),
        }
    }

    fn serve(poll_secs: u64) -> Option<ServeInfo> {
        Some(ServeInfo {
            started_at: NOW - 50 * HOUR,
            poll_secs,
            ..ServeInfo::default()
        })
    }

    fn facts(users: Vec<UserFacts>, serve: Option<ServeInfo>) -> Facts {
        Facts {
            serve,
            users,
            ..Facts::default()
        }
    }

    fn kinds(r: &Report) -> Vec<&'static str> {
        r.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn a_recent_sync_with_polling_is_healthy() {
        let r = assess(
            facts(vec![linked("1", Some(NOW - HOUR))], serve(6 * 3600)),
            NOW,
        );
        assert!(r.is_ok(), "{:?}", r.problems);
        assert_eq!(r.stale_after, Some(18 * HOUR + 600));
        assert_eq!(r.users[0].state, UserState::Linked);
    }

    #[test]
    fn no_success_for_three_polls_and_ten_minutes_is_stale() {
        let limit = 3 * 600 + 600;
        let ok = assess(facts(vec![linked("1", Some(NOW - limit))], serve(600)), NOW);
        assert!(ok.is_ok(), "exactly at the limit");
        let stale = assess(
            facts(vec![linked("1", Some(NOW - limit - 1))], serve(600)),
            NOW,
        );
        assert_eq!(kinds(&stale), ["stale_sync"]);
        assert!(
            stale.problems[0].message.contains("40 min"),
            "{:?}",
            stale.problems
        );
        assert_eq!(stale.problems[0].userid.as_deref(), Some("1"));
    }

    #[test]
    fn never_synced_counts_from_the_start_of_serve_or_linking() {
        let mut s = serve(600);
        s.as_mut().unwrap().started_at = NOW - 60;
        assert!(assess(facts(vec![linked("1", None)], s), NOW).is_ok());
        let r = assess(facts(vec![linked("1", None)], serve(600)), NOW);
        assert_eq!(kinds(&r), ["stale_sync"]);
    }

    #[test]
    fn without_a_poll_period_only_a_stuck_notification_is_stale() {
        let quiet = linked("1", Some(NOW - 1000 * HOUR));
        for s in [None, serve(0)] {
            let mut f = facts(vec![quiet.clone()], s);
            assert!(assess(f.clone(), NOW).is_ok(), "a quiet user is no fault");
            f.queue = vec![("1".into(), vec![NOW - 60, NOW - QUEUE_STUCK_SECS - 1])];
            let r = assess(f, NOW);
            assert_eq!(kinds(&r), ["queue_stuck"]);
            assert_eq!(r.users[0].queued.count, 2);
            assert_eq!(r.queued.oldest_at, Some(NOW - QUEUE_STUCK_SECS - 1));
        }
    }

    #[test]
    fn needs_reauth_and_unlinked_need_a_person_but_are_not_also_stale() {
        let mut parked = linked("1", Some(NOW - 1000 * HOUR));
        parked.account.as_mut().unwrap().needs_reauth = true;
        let mut gone = linked("2", None);
        gone.account = None;
        gone.health.unlinked = Some(Unlinked {
            at: NOW - HOUR,
            action: "unlink".into(),
        });
        let mut f = facts(vec![parked, gone], serve(600));
        f.queue = vec![("1".into(), vec![NOW - 100 * HOUR])];
        let r = assess(f, NOW);
        assert_eq!(kinds(&r), ["needs_reauth", "unlinked"]);
        assert_eq!(r.users[0].state, UserState::NeedsReauth);
        assert_eq!(r.users[1].state, UserState::Unlinked);
    }

    #[test]
    fn linking_again_after_an_unlink_wins() {
        let mut back = linked("1", Some(NOW));
        back.health.unlinked = Some(Unlinked {
            at: NOW - 200 * HOUR,
            action: "unlink".into(),
        });
        assert_eq!(
            assess(facts(vec![back], None), NOW).users[0].state,
            UserState::Linked
        );
    }

    #[test]
    fn no_users_subscription_problems_backlog_and_damage_are_listed() {
        assert_eq!(kinds(&assess(Facts::default(), NOW)), ["no_users"]);

        let mut user = linked("1", Some(NOW));
        user.health.subscriptions = Some(SubscriptionCheck {
            checked_at: NOW,
            seen: Vec::new(),
            problems: vec!["appli 1 to https://x/notify/0123abcd: refused".into()],
        });
        let mut f = facts(vec![user], None);
        f.outputs = vec![
            OutputFacts {
                name: "mqtt".into(),
                waiting: 3,
                oldest_at: Some(NOW - BACKLOG_STUCK_SECS - 1),
            },
            OutputFacts {
                name: "exec".into(),
                waiting: 1,
                oldest_at: Some(NOW - 60),
            },
        ];
        f.unreadable = vec!["state file users/2.json is damaged".into()];
        let r = assess(f, NOW);
        assert_eq!(kinds(&r), ["subscription", "outbox_backlog", "damaged"]);
        assert!(
            !r.problems[0].message.contains("0123abcd"),
            "secret redacted"
        );
        assert!(r.problems[1].message.contains("mqtt"));
    }

    #[test]
    fn spans_read_short() {
        assert_eq!(span(45), "45 s");
        assert_eq!(span(-45), "45 s");
        assert_eq!(span(12 * 60), "12 min");
        assert_eq!(span(5 * HOUR), "5 h");
        assert_eq!(span(3 * 86_400), "3 d");
        assert_eq!(stale_after(0), None);
        assert_eq!(stale_after(u64::MAX), Some(i64::MAX));
    }
}
