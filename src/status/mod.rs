//! How the relay is doing, from the state dir alone: `facts.rs` reads it
//! (never writing, never waiting on a lock), `assess.rs` judges what it
//! read at a given time (pure), `render.rs` prints the judgement for a
//! person, `json.rs` for monitors. `withings-relay status` and the Home Assistant
//! diagnostics (`outputs/diagnostics.rs`) both go through [`look`], so the
//! two never disagree.

pub mod assess;
pub mod facts;
pub mod json;
pub mod render;

pub use assess::Report;

use crate::store::StateDir;

/// Reads the state dir and judges it at `now` (unix seconds).
pub fn look(store: &StateDir, now: i64) -> Report {
    assess::assess(facts::collect(store), now)
}

/// Hides the webhook secret in a callback URL (or any text holding one):
/// whatever follows `/notify/` up to the next `/`, `?`, `#` or space.
pub fn redact(text: &str) -> String {
    const ROUTE: &str = "/notify/";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(ROUTE) {
        let (before, after) = rest.split_at(at + ROUTE.len());
        out.push_str(before);
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        if end > 0 {
            out.push('…');
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn the_secret_after_the_notify_route_is_hidden() {
        assert_eq!(
            redact("https://r.example/notify/0123abcd"),
            "https://r.example/notify/…"
        );
        assert_eq!(
            redact("a http://x/p/notify/s1?x=1 and http://y/notify/s2 end"),
            "a http://x/p/notify/…?x=1 and http://y/notify/… end"
        );
        assert_eq!(
            redact("https://r.example/notify/"),
            "https://r.example/notify/"
        );
        assert_eq!(redact("no url"), "no url");
    }
}
