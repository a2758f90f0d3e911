//! Which path does what. Everything else is 404.

use crate::inbound::allow::{allows, Cidr};
use crate::inbound::oauth_callback::Linker;
use crate::inbound::webhook::Webhook;
use crate::inbound::{Handler, Reply, Request, Response};
use crate::secret::Secret;
use crate::weburl::BaseUrl;
use std::sync::Arc;

pub const CALLBACK_PATH: &str = "/oauth/callback";
pub const NOTIFY_PREFIX: &str = "/notify/";

/// The OAuth redirect URI to register in the Withings dashboard.
pub fn callback_url(public: &BaseUrl) -> String {
    public.join(CALLBACK_PATH)
}

/// Where Withings posts notifications; the secret makes it unguessable.
pub fn notify_url(public: &BaseUrl, secret: &Secret) -> String {
    public.join(&format!("{NOTIFY_PREFIX}{}", secret.expose()))
}

/// `<public URL>/notify/`: where every notification URL of this relay
/// starts, whatever its secret.
pub fn notify_url_prefix(public: &BaseUrl) -> String {
    public.join(NOTIFY_PREFIX)
}

/// A notification URL fit for a log line or a terminal: the secret after
/// `/notify/` is replaced, since whoever holds it can post notifications.
pub fn redacted(url: &str) -> String {
    match url.rfind(NOTIFY_PREFIX) {
        Some(i) => format!("{}{NOTIFY_PREFIX}<secret>", &url[..i]),
        None => "<a URL not of this relay's form>".into(),
    }
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub struct Routes {
    /// The path part of --public-url; requests may arrive with or without
    /// it, depending on whether the TLS front strips it.
    pub prefix: String,
    pub webhook_secret: Secret,
    pub webhook: Webhook,
    pub linker: Arc<Linker>,
    /// `--allow-from`: the networks notifications (POSTs) may come from;
    /// None takes them from anywhere. Other routes are not restricted.
    pub allow_notify: Option<Vec<Cidr>>,
}

impl Handler for Routes {
    fn handle(&self, request: Request) -> Reply {
        let path = request
            .path
            .strip_prefix(self.prefix.as_str())
            .filter(|p| p.starts_with('/'))
            .unwrap_or(&request.path);
        if path == CALLBACK_PATH {
            return self.linker.handle(&request);
        }
        if let Some(secret) = path.strip_prefix(NOTIFY_PREFIX) {
            if same_secret(secret, self.webhook_secret.expose()) {
                // Only the POST that queues: Withings' HEAD check on
                // subscribe (facts sheet §3.2) may come from its front
                // ranges rather than the notify ones, and answering it
                // tells nothing the secret in the path does not.
                let posting = request.method == "POST";
                if let (true, Some(allowed)) = (posting, &self.allow_notify) {
                    if !request.peer.is_some_and(|ip| allows(allowed, ip)) {
                        log::warn!(
                            "refused a notification from {}, outside --allow-from",
                            request
                                .peer
                                .map_or("an unknown address".into(), |ip| ip.to_string())
                        );
                        return Reply::Now(Response::text(403, "not from an allowed network\n"));
                    }
                }
                return self.webhook.handle(&request);
            }
        }
        Reply::Now(Response::text(404, "not found\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hang_under_the_public_url() {
        let public = BaseUrl::parse("https://relay.example.org/w").unwrap();
        assert_eq!(
            callback_url(&public),
            "https://relay.example.org/w/oauth/callback"
        );
        let secret = Secret::new("00ff");
        assert_eq!(
            notify_url(&public, &secret),
            "https://relay.example.org/w/notify/00ff"
        );
        assert!(notify_url(&public, &secret).starts_with(&notify_url_prefix(&public)));
        assert_eq!(
            redacted(&notify_url(&public, &secret)),
            "https://relay.example.org/w/notify/<secret>"
        );
        assert!(!redacted("https://other/hook?token=00ff").contains("00ff"));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
