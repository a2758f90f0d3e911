//! The [`Report`] as JSON, for monitors: the field names the README
//! documents ("Status"), in that order, on one line (`jq .` indents it).
//!
//! Written by hand into a string: both `json!` and `Serialize` derives
//! cost about 11 KB of the mipsel binary for this one report, where the
//! few lines of [`Writer`] cost a fraction of that (README, "Size"). The
//! tests parse what it writes with serde_json.

use super::assess::{Backlog, Report, UserReport};
use super::redact;
use crate::timefmt::rfc3339_utc;
use std::fmt::Write;

/// Appends JSON: objects and arrays open and close, members name a key.
struct Writer {
    out: String,
    /// Whether the next member or element needs a comma first.
    comma: bool,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            out: String::new(),
            comma: false,
        }
    }

    fn finish(self) -> String {
        self.out
    }

    fn open(&mut self, bracket: char) {
        self.out.push(bracket);
        self.comma = false;
    }

    fn close(&mut self, bracket: char) {
        self.out.push(bracket);
        self.comma = true;
    }

    /// Starts an element of an array, or a member `"key":` of an object.
    fn key(&mut self, key: Option<&str>) {
        if self.comma {
            self.out.push(',');
        }
        self.comma = true;
        if let Some(key) = key {
            self.string(key);
            self.out.push(':');
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", u32::from(c));
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn str(&mut self, key: &str, s: &str) {
        self.key(Some(key));
        self.string(s);
    }

    fn raw(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(Some(key));
        let _ = write!(self.out, "{value}");
    }

    fn null(&mut self, key: &str) {
        self.raw(key, "null");
    }

    /// `{"unix":…,"rfc3339":"…"}`, or null.
    fn time(&mut self, key: &str, at: Option<i64>) {
        let Some(at) = at else {
            return self.null(key);
        };
        self.key(Some(key));
        self.open('{');
        self.raw("unix", at);
        self.str("rfc3339", &rfc3339_utc(at));
        self.close('}');
    }

    fn count(&mut self, key: &str, b: &Backlog) {
        self.key(Some(key));
        self.open('{');
        self.raw("count", b.count);
        self.time("oldest", b.oldest_at);
        self.close('}');
    }

    /// `{"at":…,"<what>":"…"}`, or null.
    fn event(&mut self, key: &str, event: Option<(i64, &str, &str)>) {
        let Some((at, what, text)) = event else {
            return self.null(key);
        };
        self.key(Some(key));
        self.open('{');
        self.time("at", Some(at));
        self.str(what, &redact(text));
        self.close('}');
    }
}

fn user(w: &mut Writer, u: &UserReport) {
    let f = &u.facts;
    let h = &f.health;
    let account = f.account.as_ref();
    w.key(None);
    w.open('{');
    w.str("userid", &f.userid);
    w.str("state", u.state.as_str());
    w.time("linked_at", account.map(|a| a.linked_at));
    w.time("access_expires_at", account.map(|a| a.access_expires_at));
    let unlinked = h.unlinked.as_ref();
    w.event(
        "unlinked",
        unlinked.map(|x| (x.at, "action", x.action.as_str())),
    );
    w.time("last_sync_ok_at", h.last_sync_ok_at);
    let error = h.last_error.as_ref();
    w.event(
        "last_error",
        error.map(|e| (e.at, "message", e.message.as_str())),
    );
    w.time("last_notification_at", h.last_notification_at);
    w.time("cursor", f.cursor);
    w.count("queued", &u.queued);
    match &h.subscriptions {
        None => w.null("subscriptions"),
        Some(c) => {
            w.key(Some("subscriptions"));
            w.open('{');
            w.time("checked_at", Some(c.checked_at));
            w.key(Some("seen"));
            w.open('[');
            for s in &c.seen {
                w.key(None);
                w.open('{');
                w.raw("appli", s.appli);
                w.str("callbackurl", &redact(&s.callbackurl));
                w.close('}');
            }
            w.close(']');
            w.key(Some("problems"));
            w.open('[');
            for p in &c.problems {
                w.key(None);
                w.string(&redact(p));
            }
            w.close(']');
            w.close('}');
        }
    }
    w.close('}');
}

/// The report for monitors, as one line of JSON.
pub fn json(r: &Report) -> String {
    let mut w = Writer::new();
    w.open('{');
    w.raw("ok", r.is_ok());
    w.time("checked_at", Some(r.now));
    match &r.serve {
        None => w.null("serve"),
        Some(s) => {
            w.key(Some("serve"));
            w.open('{');
            w.raw("pid", s.pid);
            w.time("started_at", Some(s.started_at));
            w.raw("poll_secs", s.poll_secs);
            w.raw("webhooks", s.webhooks);
            w.key(Some("applis"));
            w.open('[');
            for a in &s.applis {
                w.key(None);
                let _ = write!(w.out, "{a}");
            }
            w.close(']');
            w.key(Some("outputs"));
            w.open('[');
            for o in &s.outputs {
                w.key(None);
                w.string(o);
            }
            w.close(']');
            w.close('}');
        }
    }
    match r.stale_after {
        Some(secs) => w.raw("stale_after_secs", secs),
        None => w.null("stale_after_secs"),
    }
    w.key(Some("users"));
    w.open('[');
    for u in &r.users {
        user(&mut w, u);
    }
    w.close(']');
    w.count("queued", &r.queued);
    w.key(Some("outputs"));
    w.open('[');
    for o in &r.outputs {
        w.key(None);
        w.open('{');
        w.str("name", &o.name);
        w.raw("waiting", o.waiting);
        w.time("oldest", o.oldest_at);
        w.close('}');
    }
    w.close(']');
    w.key(Some("problems"));
    w.open('[');
    for p in &r.problems {
        w.key(None);
        w.open('{');
        match &p.userid {
            Some(id) => w.str("userid", id),
            None => w.null("userid"),
        }
        w.str("kind", p.kind);
        w.str("message", &p.message);
        w.close('}');
    }
    w.close(']');
    w.close('}');
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::render::tests::report;
    use serde_json::{json, Value};

    #[test]
    fn monitors_read_stable_fields() {
        let text = json(&report());
        let j: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(j["ok"], false);
        let u = &j["users"][0];
        assert_eq!(u["userid"], "42");
        assert_eq!(u["state"], "needs_reauth");
        assert_eq!(u["last_sync_ok_at"]["unix"], 1_800_000_000 - 900);
        assert_eq!(u["last_sync_ok_at"]["rfc3339"], "2027-01-15T07:45:00Z");
        assert_eq!(u["last_notification_at"], Value::Null);
        assert_eq!(u["unlinked"], Value::Null);
        assert_eq!(u["queued"]["count"], 1);
        assert_eq!(
            u["subscriptions"]["seen"][0]["callbackurl"],
            "https://r.example/notify/…"
        );
        assert_eq!(u["last_error"]["message"], "refused at https://r/notify/…");
        assert_eq!(u["last_error"].get("action"), None);
        assert_eq!(j["serve"]["poll_secs"], 21_600);
        assert_eq!(j["stale_after_secs"], 21_600 * 3 + 600);
        assert_eq!(j["outputs"][0]["waiting"], 2);
        assert_eq!(j["problems"][0]["kind"], "needs_reauth");
        assert_eq!(j["problems"][0]["userid"], "42");
        assert!(!text.contains("0123abcd") && !text.contains("cafe"));
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 8, "{keys:?}");
        assert!(
            text.starts_with(r#"{"ok":false,"checked_at":{"unix":"#),
            "{text}"
        );
        assert!(!text.contains('\n'), "one line");
    }

    #[test]
    fn strings_are_escaped() {
        let mut r = report();
        r.problems[0].message = "a \"quoted\" \\ path\nand a \u{1}bell é".into();
        let j: Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(j["problems"][0]["message"], r.problems[0].message.as_str());
    }

    #[test]
    fn nothing_known_is_null_and_no_problem_is_an_empty_list() {
        let mut r = report();
        r.users.clear();
        r.serve = None;
        r.problems.clear();
        let j: Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(j["serve"], Value::Null);
        assert_eq!(j["users"], json!([]));
        assert_eq!(j["problems"], json!([]));
        assert_eq!(j["ok"], true);
    }
}
