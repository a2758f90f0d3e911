//! Pure: which listed subscriptions are the relay's own, and what one
//! check does about a user's `notify list` (facts sheet §3.1, §3.4).
//!
//! A subscription is the relay's own when its URL is the current one, or
//! one the relay recorded subscribing with (`callbacks/<id>.json`), or,
//! with the relay's comment, a URL under this relay's own notification
//! path (`<public URL>/notify/`). The last rule finds what a lost state dir
//! left behind (the secret changed with it, so the recorded URLs are gone
//! too), yet cannot reach another relay's subscription, which lives at
//! another public URL: the comment alone would, and two relays of one app
//! revoking each other's URLs every day is Home Assistant's revoke-all
//! churn again. Anything else is left alone: another app, or a relay
//! elsewhere.

use crate::withings::notify::{Profile, OWN_COMMENT};

/// What the relay knows to be its own notification URLs for one user.
#[derive(Clone, Debug, Default)]
pub struct OwnUrls {
    /// The URL Withings should call now; None when unknown (`unlink`
    /// without `--public-url`).
    pub current: Option<String>,
    /// Every URL the relay recorded subscribing this user with.
    pub recorded: Vec<String>,
    /// `<public URL>/notify/`, when the public URL is known.
    pub notify_prefix: Option<String>,
}

impl OwnUrls {
    pub fn owns(&self, p: &Profile) -> bool {
        let url = p.callbackurl.as_str();
        self.current.as_deref() == Some(url)
            || self.recorded.iter().any(|u| u == url)
            || (p.comment.as_deref() == Some(OWN_COMMENT)
                && self
                    .notify_prefix
                    .as_deref()
                    .is_some_and(|prefix| url.starts_with(prefix)))
    }
}

/// What one check does, in this order: subscribe first, so the user is
/// never without a working subscription, then revoke the stale ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Applis whose subscription at the current URL is missing.
    pub subscribe: Vec<u32>,
    /// The relay's own subscriptions at URLs that are no longer current,
    /// each revoked by its URL and appli.
    pub revoke: Vec<Profile>,
}

/// The plan for a user whose subscriptions are `listed`, who should be
/// subscribed at `current` for each of `applis`. The current URL's
/// subscriptions for other applis (after `--appli` shrank) are kept: they
/// only bring notifications the relay handles anyway.
pub fn plan(listed: &[Profile], current: &str, own: &OwnUrls, applis: &[u32]) -> Plan {
    let subscribe = applis
        .iter()
        .copied()
        .filter(|&a| {
            !listed
                .iter()
                .any(|p| p.appli == a && p.callbackurl == current)
        })
        .collect();
    let revoke = listed
        .iter()
        .filter(|p| p.callbackurl != current && own.owns(p))
        .cloned()
        .collect();
    Plan { subscribe, revoke }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "https://relay.example.org/notify/new";
    const OLD: &str = "https://relay.example.org/notify/old";
    const FOREIGN: &str = "https://ha.example.org/api/webhook/abc";

    fn profile(appli: u32, url: &str, comment: Option<&str>) -> Profile {
        Profile {
            appli,
            callbackurl: url.into(),
            comment: comment.map(String::from),
        }
    }

    fn own(recorded: &[&str]) -> OwnUrls {
        OwnUrls {
            current: Some(NOW.into()),
            recorded: recorded.iter().map(|u| u.to_string()).collect(),
            notify_prefix: Some("https://relay.example.org/notify/".into()),
        }
    }

    #[test]
    fn a_missing_subscription_is_made_and_nothing_foreign_revoked() {
        let listed = [profile(1, FOREIGN, Some("Home Assistant"))];
        let p = plan(&listed, NOW, &own(&[NOW]), &[1, 4]);
        assert_eq!(p.subscribe, [1, 4]);
        assert!(p.revoke.is_empty());
    }

    #[test]
    fn all_in_place_means_nothing_to_do() {
        let listed = [
            profile(1, NOW, Some(OWN_COMMENT)),
            profile(4, NOW, None),
            profile(1, FOREIGN, None),
        ];
        assert_eq!(plan(&listed, NOW, &own(&[NOW]), &[1, 4]), Plan::default());
    }

    #[test]
    fn a_changed_url_is_subscribed_and_only_the_old_own_one_revoked() {
        let listed = [
            profile(1, OLD, Some(OWN_COMMENT)),
            profile(4, OLD, Some(OWN_COMMENT)),
            profile(1, FOREIGN, Some(OWN_COMMENT)),
        ];
        let p = plan(&listed, NOW, &own(&[OLD]), &[1]);
        assert_eq!(p.subscribe, [1]);
        assert_eq!(p.revoke, listed[..2], "appli 4 at the old URL is ours too");
    }

    #[test]
    fn an_unrecorded_url_is_ours_only_under_our_path_and_with_our_comment() {
        let o = own(&[]);
        assert!(
            o.owns(&profile(1, OLD, Some(OWN_COMMENT))),
            "lost state dir"
        );
        assert!(
            !o.owns(&profile(1, OLD, None)),
            "no comment: maybe not ours"
        );
        assert!(!o.owns(&profile(1, OLD, Some("other"))));
        assert!(
            !o.owns(&profile(1, FOREIGN, Some(OWN_COMMENT))),
            "another relay of the same app, elsewhere"
        );
        assert!(o.owns(&profile(1, NOW, None)), "the current URL");
        let unknown_public = OwnUrls {
            current: None,
            recorded: vec![OLD.into()],
            notify_prefix: None,
        };
        assert!(unknown_public.owns(&profile(1, OLD, None)));
        assert!(!unknown_public.owns(&profile(1, NOW, Some(OWN_COMMENT))));
    }

    #[test]
    fn the_current_urls_other_applis_are_kept() {
        let listed = [profile(1, NOW, None), profile(4, NOW, None)];
        assert_eq!(plan(&listed, NOW, &own(&[NOW]), &[1]), Plan::default());
    }
}
