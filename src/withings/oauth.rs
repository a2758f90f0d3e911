//! OAuth 2.0 against Withings (facts sheet §1): the authorization URL, the
//! code exchange and the refresh, all at `/v2/oauth2` with
//! `action=requesttoken` and the secret in the body.

use super::api::Api;
use crate::error::{Error, Result, WithingsKind};
use crate::secret::Secret;
use crate::weburl::{encode_query, BaseUrl};
use crate::withings::lenient;
use serde::Deserialize;

/// Only spot measurements are needed: getmeas, and notify for the applis
/// of [`crate::inbound::webhook::MEASURE_APPLIS`] (1, 2, 4 and 58), all under
/// `user.metrics` (facts sheet §1.2, §3.3). Comma-separated, never
/// space-separated.
pub const SCOPE: &str = "user.metrics";

#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: Secret,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TokenSet {
    #[serde(deserialize_with = "lenient::userid")]
    pub userid: String,
    pub access_token: Secret,
    pub refresh_token: Secret,
    #[serde(deserialize_with = "lenient::int")]
    pub expires_in: i64,
    #[serde(default)]
    pub scope: String,
}

/// The page the user opens to link an account (facts sheet §1.2). The
/// nonce goes out as OAuth's `state` and comes back on the callback.
pub fn authorize_url(
    account: &BaseUrl,
    client_id: &str,
    redirect_uri: &str,
    nonce: &str,
    demo: bool,
) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("scope", SCOPE),
        ("redirect_uri", redirect_uri),
        ("state", nonce),
    ];
    if demo {
        pairs.push(("mode", "demo"));
    }
    format!(
        "{}?{}",
        account.join("/oauth2_user/authorize2"),
        encode_query(&pairs)
    )
}

/// A status-0 answer without the documented token fields (facts sheet
/// §1.3) is a malformed answer, not an outage.
fn parse_tokens(call: &'static str, body: serde_json::Value) -> Result<TokenSet> {
    serde_json::from_value(body).map_err(|e| {
        Error::withings(
            call,
            WithingsKind::Malformed(format!("unexpected token answer ({e})")),
        )
    })
}

/// Trades the 30-second, single-use code for tokens (facts sheet §1.3).
pub fn exchange_code(
    api: &Api,
    creds: &Credentials,
    code: &str,
    redirect_uri: &str,
) -> Result<TokenSet> {
    const CALL: &str = "oauth2 requesttoken";
    let body = api.post(
        CALL,
        "/v2/oauth2",
        None,
        &[
            ("action", "requesttoken"),
            ("grant_type", "authorization_code"),
            ("client_id", &creds.client_id),
            ("client_secret", creds.client_secret.expose()),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
    )?;
    parse_tokens(CALL, body)
}

/// Gets a new token pair. The old refresh token dies once the new access
/// token is used, so the caller persists the result before using it.
pub fn refresh(api: &Api, creds: &Credentials, refresh_token: &Secret) -> Result<TokenSet> {
    const CALL: &str = "oauth2 refresh";
    let body = api.post(
        CALL,
        "/v2/oauth2",
        None,
        &[
            ("action", "requesttoken"),
            ("grant_type", "refresh_token"),
            ("client_id", &creds.client_id),
            ("client_secret", creds.client_secret.expose()),
            ("refresh_token", refresh_token.expose()),
        ],
    )?;
    parse_tokens(CALL, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_has_every_required_parameter() {
        let account = BaseUrl::parse("https://account.withings.com").unwrap();
        let url = authorize_url(&account, "cid", "https://h/oauth/callback", "abc", false);
        assert_eq!(
            url,
            "https://account.withings.com/oauth2_user/authorize2?response_type=code&client_id=cid&scope=user.metrics&redirect_uri=https%3A%2F%2Fh%2Foauth%2Fcallback&state=abc"
        );
        assert!(authorize_url(&account, "c", "r", "s", true).ends_with("&mode=demo"));
    }

    #[test]
    fn token_answers_with_string_or_integer_userid() {
        for userid in [r#""12345678""#, "12345678"] {
            let body = serde_json::from_str(&format!(
                r#"{{"userid":{userid},"access_token":"a","refresh_token":"r","expires_in":10800,"scope":"user.metrics","csrf_token":"x","token_type":"Bearer"}}"#
            ))
            .unwrap();
            let t = parse_tokens("oauth2 requesttoken", body).unwrap();
            assert_eq!(t.userid, "12345678");
            assert_eq!(t.expires_in, 10800);
        }
    }
}
