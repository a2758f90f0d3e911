//! The notification route (facts sheet §3.3, §3.4): validate what Withings
//! POSTs, record it durably, answer 200 at once. The sync happens later in
//! the worker; this never calls Withings.

use crate::context::Context;
use crate::inbound::{Reply, Request, Response};
use crate::store::{is_valid_userid, LockWait, Notification, Unlinked};
use crate::worker::Wake;
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// Applis whose data `getmeas` returns (facts sheet §3.3): weight and body
/// composition, temperature, blood pressure, glucose.
pub const MEASURE_APPLIS: [u32; 4] = [1, 2, 4, 58];

/// The appli of user events: `action` says the user unlinked the app,
/// deleted the account, or changed the profile (facts sheet §3.3).
const USER_EVENT_APPLI: i64 = 46;

type Fields = Vec<(String, String)>;

/// The fields of a form body. Withings documents x-www-form-urlencoded;
/// one older page says form-data, so both are read.
fn form_fields(body: &[u8], content_type: Option<&str>) -> Fields {
    match content_type.and_then(multipart_boundary) {
        Some(boundary) => parse_multipart(body, &boundary),
        None => form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    }
}

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
}

/// Reads the notification from a form body (see [`form_fields`]).
/// Unknown fields are ignored. The webhook itself reads the fields once
/// and goes on from them; this is what the tests feed.
#[cfg(test)]
pub fn parse_notification(
    body: &[u8],
    content_type: Option<&str>,
    now: i64,
) -> Result<Notification, String> {
    notification_from(&form_fields(body, content_type), now)
}

fn notification_from(fields: &Fields, now: i64) -> Result<Notification, String> {
    let get = |name: &str| field(fields, name);
    let userid = get("userid").ok_or("the form has no userid")?;
    if !is_valid_userid(userid) {
        return Err("userid must be a Withings user id (digits only)".into());
    }
    let appli = get("appli")
        .ok_or("the form has no appli")?
        .parse::<i64>()
        .map_err(|_| "appli must be a number")?;
    let number = |name: &str| -> Result<Option<i64>, String> {
        get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{name} must be unix seconds"))
            })
            .transpose()
    };
    Ok(Notification {
        userid: userid.to_string(),
        appli,
        startdate: number("startdate")?,
        enddate: number("enddate")?,
        received_at: now,
    })
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    })
}

fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str())
        .filter_map(|part| {
            let (head, value) = part.split_once("\r\n\r\n")?;
            let name = head
                .split(';')
                .find_map(|p| p.trim().strip_prefix("name="))?
                .split(['\r', '\n'])
                .next()?
                .trim_matches('"');
            Some((name.to_string(), value.trim_end_matches("\r\n").to_string()))
        })
        .collect()
}

pub struct Webhook {
    pub ctx: Arc<Context>,
    pub wake: Sender<Wake>,
}

impl Webhook {
    pub fn handle(&self, request: &Request) -> Reply {
        Reply::Now(match request.method.as_str() {
            // Withings HEAD-checks the URL on subscribe (facts sheet §3.2).
            "HEAD" | "GET" => Response::text(200, "ok\n"),
            "POST" => self.accept(request, self.ctx.clock.now()),
            _ => Response::text(405, "use POST\n").with_header("Allow", "HEAD, GET, POST"),
        })
    }

    fn accept(&self, request: &Request, now: i64) -> Response {
        let fields = form_fields(&request.body, request.header("Content-Type"));
        let n = match notification_from(&fields, now) {
            Ok(n) => n,
            Err(why) => {
                log::warn!("refused a malformed notification: {why}");
                return Response::text(400, format!("{why}\n"));
            }
        };
        // 200 for what we ignore, so Withings does not retry it (§3.4).
        if !self.ctx.store.users.exists(&n.userid) {
            log::warn!(
                "notification for user {}, who is not linked here: ignored (link it with `withings-relay authorize`)",
                n.userid
            );
            return Response::text(200, "ok\n");
        }
        if n.appli == USER_EVENT_APPLI {
            return self.user_event(&n.userid, field(&fields, "action"), now);
        }
        if !u32::try_from(n.appli).is_ok_and(|a| MEASURE_APPLIS.contains(&a)) {
            log::info!(
                "user {}: ignored a notification for appli {}, which carries no measurements",
                n.userid,
                n.appli
            );
            return Response::text(200, "ok\n");
        }
        if let Err(e) = self.ctx.store.queue.push(&n) {
            // Not acknowledged, so Withings retries it later: nothing lost.
            log::error!("user {}: could not queue a notification: {e}", n.userid);
            return Response::text(503, "cannot store the notification right now\n");
        }
        log::info!(
            "user {}: notification for appli {} queued",
            n.userid,
            n.appli
        );
        let _ = self.wake.send(Wake::Queued);
        Response::text(200, "ok\n")
    }
}

/// Pure: what an appli-46 `action` means for the relay.
#[derive(Debug, PartialEq, Eq)]
enum UserEvent {
    /// `unlink` or `delete`: the grant is gone; `why` says which, for the log.
    Gone { why: &'static str },
    /// `update`: a profile change, nothing for the relay.
    Update,
    /// Missing or not documented: left alone. Deleting a user's tokens on
    /// a guess could cut off someone who did nothing; and if the grant is
    /// really gone, the next refresh fails and the user is marked as
    /// needing re-authorization, which says the same loudly.
    Unknown,
}

fn user_event(action: Option<&str>) -> UserEvent {
    match action.map(str::to_ascii_lowercase).as_deref() {
        Some("unlink") => UserEvent::Gone {
            why: "unlinked this app from their Withings account",
        },
        Some("delete") => UserEvent::Gone {
            why: "deleted their Withings account",
        },
        Some("update") => UserEvent::Update,
        _ => UserEvent::Unknown,
    }
}

impl Webhook {
    /// Appli 46 (facts sheet §3.3). For a user gone, the tokens are deleted,
    /// so nothing calls Withings for them any more; everything else (sync
    /// state, queued notifications) is kept for when they link again.
    fn user_event(&self, userid: &str, action: Option<&str>, now: i64) -> Response {
        let ok = Response::text(200, "ok\n");
        let why = match user_event(action) {
            UserEvent::Gone { why } => why,
            UserEvent::Update => {
                log::info!("user {userid}: Withings says the profile changed (appli 46, update); nothing to do");
                return ok;
            }
            UserEvent::Unknown => {
                // Quoted by hand: the router builds print a derived Debug
                // (this Option's) as its variant name only.
                let action = match action {
                    Some(a) => format!("action \"{}\"", a.escape_debug()),
                    None => "no action".to_string(),
                };
                log::warn!("user {userid}: appli 46 with {action}, which the relay does not know; ignored, the user stays linked");
                return ok;
            }
        };
        let store = &self.ctx.store;
        // Not while a refresh of this user runs: it would save the tokens
        // again. Withings retries a 503 ten seconds later (§3.4).
        let removed = store
            .lock_user(userid, LockWait::GiveUp)
            .and_then(|_lock| store.users.remove(userid));
        if let Err(e) = removed {
            log::warn!("user {userid}: Withings says the user {why}, but the tokens cannot be deleted right now: {e}; answered 503 so that Withings sends it again");
            return Response::text(503, "cannot handle the notification right now\n");
        }
        let action = action.unwrap_or_default().to_ascii_lowercase();
        if let Err(e) = store
            .health
            .update(userid, |h| h.unlinked = Some(Unlinked { at: now, action }))
        {
            log::warn!("user {userid}: {e}");
        }
        log::error!("user {userid}: Withings says the user {why} (appli 46): the relay deleted their tokens and syncs nothing more for them; their sync state and queued notifications are kept. Run `withings-relay authorize` to link them again.");
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example_and_ignores_unknown_fields() {
        let n = parse_notification(
            b"userid=12345&appli=1&startdate=1530576000&enddate=1530698753&foo=bar",
            Some("application/x-www-form-urlencoded"),
            7,
        )
        .unwrap();
        assert_eq!(
            n,
            Notification {
                userid: "12345".into(),
                appli: 1,
                startdate: Some(1_530_576_000),
                enddate: Some(1_530_698_753),
                received_at: 7
            }
        );
    }

    #[test]
    fn reads_multipart_form_data_too() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"userid\"\r\n\r\n42\r\n--XyZ\r\nContent-Disposition: form-data; name=\"appli\"\r\n\r\n4\r\n--XyZ--\r\n";
        let n = parse_notification(body, Some("multipart/form-data; boundary=XyZ"), 0).unwrap();
        assert_eq!((n.userid.as_str(), n.appli, n.startdate), ("42", 4, None));
    }

    #[test]
    fn user_events_destroy_only_on_a_documented_unlink_or_delete() {
        assert!(matches!(user_event(Some("unlink")), UserEvent::Gone { .. }));
        assert!(matches!(user_event(Some("DELETE")), UserEvent::Gone { .. }));
        assert_eq!(user_event(Some("update")), UserEvent::Update);
        for unknown in [None, Some(""), Some("revoke"), Some("unlinked")] {
            assert_eq!(user_event(unknown), UserEvent::Unknown, "{unknown:?}");
        }
        let fields = form_fields(b"userid=1&appli=46&action=unlink", None);
        assert_eq!(field(&fields, "action"), Some("unlink"));
    }

    #[test]
    fn refuses_what_withings_would_never_send() {
        for (body, why) in [
            (&b""[..], "no userid"),
            (b"appli=1", "no userid"),
            (b"userid=../../etc&appli=1", "digits"),
            (b"userid=1%2F..&appli=1", "digits"),
            (b"userid=1", "no appli"),
            (b"userid=1&appli=x", "appli"),
            (b"userid=1&appli=1&startdate=yesterday", "startdate"),
        ] {
            let err = parse_notification(body, None, 0).unwrap_err();
            assert!(err.contains(why), "{body:?}: {err}");
        }
    }
}
