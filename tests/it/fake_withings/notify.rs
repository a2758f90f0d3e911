//! /notify (§3.1): subscribe with its HEAD check (§3.2), list, get and
//! revoke.

use std::time::Duration;

use serde_json::{json, Value};

use super::requests::{call_token, error_json, int_param, ok_json, param, unauthorized, Reply};
use super::server::client_agent;
use super::state::{lock, Shared, Subscription};
use super::{Call, CALLBACK_INVALID_ERROR, SUBSCRIPTION_EXPIRES};

/// §3.1: POST /notify subscribe (with a real HEAD check, §3.2) / list / get / revoke.
pub(super) fn notify(shared: &Shared, call: &Call) -> Reply {
    let invalid = |what: &str| Reply::Json(error_json(503, &format!("Invalid Params: {what}")));
    let userid = match lock(shared).authenticate(call_token(call)) {
        Some(u) => u,
        None => return unauthorized(),
    };
    let appli = match int_param(call, "appli") {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let appli = match appli.map(u32::try_from) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => return invalid("appli"),
    };
    let callbackurl = param(call, "callbackurl").map(str::to_string);
    match param(call, "action") {
        Some("subscribe") => {
            let (Some(url), Some(appli)) = (callbackurl, appli) else {
                return invalid(if call.params.contains_key("callbackurl") {
                    "appli"
                } else {
                    "callbackurl"
                });
            };
            // The HEAD check runs before answering, without holding the state lock (§3.2).
            let unreachable = lock(shared).callbacks_unreachable;
            let head = match unreachable {
                true => None,
                false => client_agent(Duration::from_secs(5))
                    .head(&url)
                    .call()
                    .ok()
                    .map(|r| r.status().as_u16()),
            };
            let mut st = lock(shared);
            st.head_checks.push((url.clone(), head));
            if !head.is_some_and(|s| (200..300).contains(&s)) {
                return Reply::Json(error_json(293, CALLBACK_INVALID_ERROR));
            }
            let comment = param(call, "comment").unwrap_or("").to_string();
            let user = st.user(userid);
            match user
                .subs
                .iter_mut()
                .find(|s| s.appli == appli && s.callbackurl == url)
            {
                Some(existing) => existing.comment = comment,
                None => user.subs.push(Subscription {
                    appli,
                    callbackurl: url,
                    comment,
                }),
            }
            Reply::Json(ok_json(json!({})))
        }
        Some("list") => {
            let mut st = lock(shared);
            let profiles: Vec<Value> = st
                .user(userid)
                .subs
                .iter()
                .filter(|s| appli.is_none_or(|a| s.appli == a))
                .map(|s| {
                    json!({
                        "appli": s.appli,
                        "callbackurl": s.callbackurl,
                        "comment": s.comment,
                        "expires": SUBSCRIPTION_EXPIRES,
                    })
                })
                .collect();
            Reply::Json(ok_json(json!({ "profiles": profiles })))
        }
        Some("get") => {
            let Some(url) = callbackurl else {
                return invalid("callbackurl");
            };
            let appli = appli.unwrap_or(1);
            let mut st = lock(shared);
            match st
                .user(userid)
                .subs
                .iter()
                .rev()
                .find(|s| s.appli == appli && s.callbackurl == url)
            {
                Some(s) => Reply::Json(ok_json(json!({
                    "appli": s.appli,
                    "callbackurl": s.callbackurl,
                    "comment": s.comment,
                }))),
                None => Reply::Json(error_json(294, "No such subscription")),
            }
        }
        Some("revoke") => {
            let Some(url) = callbackurl else {
                return invalid("callbackurl");
            };
            let mut st = lock(shared);
            // Idempotent: revoking a subscription that does not exist still answers 0.
            st.user(userid)
                .subs
                .retain(|s| !(s.callbackurl == url && appli.is_none_or(|a| s.appli == a)));
            Reply::Json(ok_json(json!({})))
        }
        _ => invalid("action"),
    }
}
