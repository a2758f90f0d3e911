//! The [`Report`] for a person: one block per user, then the relay, then
//! the problems (`json.rs` writes it for monitors). No token is ever in a
//! report; callback URLs and messages pass through [`redact`] on their
//! way out.

use super::assess::{span, Backlog, Report, UserReport, UserState};
use super::redact;
use crate::timefmt::rfc3339_utc;
use std::fmt::Write;

/// `2026-11-24T11:30:00Z (15 min ago)`, or `never`.
fn when(at: Option<i64>, now: i64) -> String {
    match at {
        None => "never".into(),
        Some(at) if at > now => format!("{} (in {})", rfc3339_utc(at), span(at - now)),
        Some(at) => format!("{} ({} ago)", rfc3339_utc(at), span(now - at)),
    }
}

fn backlog_text(b: &Backlog, what: &str, now: i64) -> String {
    match b.oldest_at {
        Some(at) if b.count > 0 => format!("{} {what}, oldest {} ago", b.count, span(now - at)),
        _ if b.count > 0 => format!("{} {what}", b.count),
        _ => "none".into(),
    }
}

fn user_text(out: &mut String, u: &UserReport, now: i64) {
    let f = &u.facts;
    let h = &f.health;
    let _ = match u.state {
        UserState::Linked => writeln!(out, "user {}: linked", f.userid),
        UserState::NeedsReauth => writeln!(out, "user {}: NEEDS RE-AUTHORIZATION", f.userid),
        UserState::Unlinked => writeln!(out, "user {}: UNLINKED", f.userid),
    };
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<18} {value}");
    };
    if let Some(u) = &h.unlinked {
        line(
            "unlinked",
            format!("{} by Withings ({})", when(Some(u.at), now), u.action),
        );
    }
    if let Some(a) = &f.account {
        line("linked since", when(Some(a.linked_at), now));
        line(
            "access token",
            format!("expires {}", when(Some(a.access_expires_at), now)),
        );
    }
    line("last sync ok", when(h.last_sync_ok_at, now));
    if let Some(e) = &h.last_error {
        line(
            "last error",
            format!("{}: {}", when(Some(e.at), now), redact(&e.message)),
        );
    }
    line("last notification", when(h.last_notification_at, now));
    line("cursor", when(f.cursor, now));
    line("queued", backlog_text(&u.queued, "notification(s)", now));
    match &h.subscriptions {
        None => line("subscriptions", "not checked yet".into()),
        Some(check) => {
            line(
                "subscriptions",
                format!("checked {}", when(Some(check.checked_at), now)),
            );
            for s in &check.seen {
                line(
                    "",
                    format!("appli {} -> {}", s.appli, redact(&s.callbackurl)),
                );
            }
        }
    }
}

/// The report for a person.
pub fn text(r: &Report) -> String {
    let now = r.now;
    let mut out = String::new();
    for u in &r.users {
        user_text(&mut out, u, now);
    }
    out.push_str("relay\n");
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<18} {value}");
    };
    match &r.serve {
        Some(s) => {
            line(
                "serve",
                format!("pid {}, started {}", s.pid, when(Some(s.started_at), now)),
            );
            let poll = match s.poll_secs {
                0 => "off".to_string(),
                secs => format!("every {}", span(i64::try_from(secs).unwrap_or(i64::MAX))),
            };
            let webhooks = if s.webhooks { "on" } else { "off" };
            line("poll", format!("{poll}; webhooks {webhooks}"));
        }
        None => line(
            "serve",
            "no serve.json: `serve` has not run with this version".into(),
        ),
    }
    line(
        "stale after",
        match r.stale_after {
            Some(limit) => format!("{} without a successful sync", span(limit)),
            None => "no poll period known: only a notification waiting too long is stale".into(),
        },
    );
    line("queued", backlog_text(&r.queued, "notification(s)", now));
    for o in &r.outputs {
        let b = Backlog {
            count: o.waiting,
            oldest_at: o.oldest_at,
        };
        line(
            &format!("outbox {}", o.name),
            backlog_text(&b, "group(s) waiting", now),
        );
    }
    if r.problems.is_empty() {
        out.push_str("all is well\n");
    } else {
        out.push_str("problems\n");
        for p in &r.problems {
            let _ = writeln!(out, "  - {}", p.message);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::status::assess::assess;
    use crate::status::facts::{Account, Facts, OutputFacts, UserFacts};
    use crate::store::{Failure, Health, ServeInfo, Subscription, SubscriptionCheck};

    const NOW: i64 = 1_800_000_000;

    /// A report with one user and one output, for the renderers' tests.
    pub(crate) fn report() -> Report {
        let user = UserFacts {
            userid: "42".into(),
            account: Some(Account {
                linked_at: NOW - 86_400 * 4,
                access_expires_at: NOW + 3 * 3600,
                needs_reauth: true,
            }),
            health: Health {
                last_sync_ok_at: Some(NOW - 900),
                last_error: Some(Failure {
                    at: NOW - 60,
                    message: "refused at https://r/notify/cafe".into(),
                }),
                subscriptions: Some(SubscriptionCheck {
                    checked_at: NOW - 7200,
                    seen: vec![Subscription {
                        appli: 1,
                        callbackurl: "https://r.example/notify/0123abcd".into(),
                    }],
                    problems: Vec::new(),
                }),
                ..Health::default()
            },
            cursor: Some(NOW - 1000),
        };
        let mut facts = Facts {
            serve: Some(ServeInfo {
                pid: 7,
                started_at: NOW - 3600,
                poll_secs: 21_600,
                webhooks: true,
                applis: vec![1],
                outputs: vec!["mqtt".into()],
            }),
            users: vec![user],
            outputs: vec![OutputFacts {
                name: "mqtt".into(),
                waiting: 2,
                oldest_at: Some(NOW - 120),
            }],
            ..Facts::default()
        };
        facts.queue = vec![("42".into(), vec![NOW - 180])];
        assess(facts, NOW)
    }

    #[test]
    fn a_person_reads_one_block_per_user_then_the_relay_then_the_problems() {
        let t = text(&report());
        for expected in [
            "user 42: NEEDS RE-AUTHORIZATION\n",
            "  access token       expires 2027-01-15T11:00:00Z (in 3 h)\n",
            "  last sync ok       2027-01-15T07:45:00Z (15 min ago)\n",
            "  queued             1 notification(s), oldest 3 min ago\n",
            "  subscriptions      checked 2027-01-15T06:00:00Z (2 h ago)\n",
            "                     appli 1 -> https://r.example/notify/…\n",
            "relay\n  serve              pid 7, started",
            "  poll               every 6 h; webhooks on\n",
            "  stale after        18 h without a successful sync\n",
            "  outbox mqtt        2 group(s) waiting, oldest 2 min ago\n",
            "problems\n  - Withings refused the refresh token of user 42",
        ] {
            assert!(t.contains(expected), "{expected:?} not in:\n{t}");
        }
        assert!(!t.contains("0123abcd") && !t.contains("cafe"), "{t}");
    }

    #[test]
    fn all_is_well_is_said() {
        let r = assess(
            Facts {
                users: vec![UserFacts {
                    userid: "1".into(),
                    ..UserFacts::default()
                }],
                ..Facts::default()
            },
            NOW,
        );
        let t = text(&r);
        assert!(t.ends_with("all is well\n"), "{t}");
        assert!(t.contains("no serve.json"), "{t}");
    }
}
