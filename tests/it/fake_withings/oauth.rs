//! The OAuth 2 endpoints: authorize2 on the account host (§1.2) and the
//! token endpoint, /v2/oauth2 (§1.3, §1.4).

use serde_json::json;

use super::requests::{error_json, ok_json, param, Reply};
use super::state::{lock, random_hex, AuthCode, Shared};
use super::{Call, CLIENT_ID, CLIENT_SECRET, CODE_LIFETIME, DEMO_USERID};

/// §1.2: GET authorize2 → 302 to `redirect_uri?code=..&state=..`; bad params → HTTP 400.
pub(super) fn authorize(shared: &Shared, call: &Call) -> Reply {
    if call.method != "GET" {
        return Reply::Text(405, "Method Not Allowed".to_string());
    }
    let bad = |what: &str| Reply::Text(400, format!("Invalid request: {what}"));
    if param(call, "response_type") != Some("code") {
        return bad("response_type must be code");
    }
    if param(call, "client_id") != Some(CLIENT_ID) {
        return bad("unknown client_id");
    }
    let Some(scope) = param(call, "scope") else {
        return bad("missing scope");
    };
    // Scopes are comma-separated, never space-separated (§1.2).
    if scope.contains(' ') {
        return bad("scope must be comma-separated");
    }
    if !scope.split(',').any(|s| s == "user.metrics") {
        return bad("scope must include user.metrics");
    }
    let Some(redirect_uri) = param(call, "redirect_uri") else {
        return bad("missing redirect_uri");
    };
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
        return bad("redirect_uri must be an absolute http(s) URL");
    }
    let Some(state) = param(call, "state") else {
        return bad("missing state");
    };
    let mut st = lock(shared);
    if !st.redirect_uris.is_empty() && !st.redirect_uris.iter().any(|u| u == redirect_uri) {
        return bad("redirect_uri is not registered");
    }
    let userid = if param(call, "mode") == Some("demo") {
        st.users.entry(DEMO_USERID).or_default();
        DEMO_USERID
    } else {
        match st.login.or(st.first_user) {
            Some(u) => u,
            None => return bad("no Withings account is logged in"),
        }
    };
    let code = random_hex(40);
    let issued = st.now();
    st.codes.insert(
        code.clone(),
        AuthCode {
            userid,
            redirect_uri: redirect_uri.to_string(),
            scope: scope.to_string(),
            issued,
            used: false,
        },
    );
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", state)
        .finish();
    Reply::Redirect(format!("{redirect_uri}{sep}{query}"))
}

/// §1.3/§1.4: POST /v2/oauth2 action=requesttoken, authorization_code or refresh_token.
pub(super) fn token(shared: &Shared, call: &Call) -> Reply {
    let invalid = |what: &str| Reply::Json(error_json(503, &format!("Invalid Params: {what}")));
    if param(call, "action") != Some("requesttoken") {
        return invalid("action");
    }
    // client_secret_post only; HTTP Basic is UNCONFIRMED (§1.3) and not accepted.
    if param(call, "client_id") != Some(CLIENT_ID)
        || param(call, "client_secret") != Some(CLIENT_SECRET)
    {
        return invalid("invalid client");
    }
    let mut st = lock(shared);
    let now = st.now();
    let (userid, tokens) = match param(call, "grant_type") {
        Some("authorization_code") => {
            let code = param(call, "code").unwrap_or("");
            let redirect_uri = param(call, "redirect_uri").unwrap_or("");
            let Some(info) = st.codes.get_mut(code) else {
                return invalid("invalid code");
            };
            // 30 s, single use, same redirect_uri as at authorize (§1.2, §1.3).
            if info.used || now > info.issued + CODE_LIFETIME || info.redirect_uri != redirect_uri {
                return invalid("invalid code");
            }
            info.used = true;
            let (userid, scope) = (info.userid, info.scope.clone());
            // A new grant replaces the user's previous tokens entirely.
            (userid, st.issue(userid, &scope, None))
        }
        Some("refresh_token") => {
            let token = param(call, "refresh_token").unwrap_or("");
            let Some((userid, previous)) = st.check_refresh(token) else {
                return invalid("invalid refresh_token");
            };
            let scope = st.users[&userid]
                .tokens
                .as_ref()
                .map(|t| t.scope.clone())
                .unwrap_or_default();
            (userid, st.issue(userid, &scope, previous))
        }
        _ => return invalid("grant_type"),
    };
    let userid_json = if st.userid_as_string {
        json!(userid.to_string())
    } else {
        json!(userid)
    };
    Reply::Json(ok_json(json!({
        "userid": userid_json,
        "access_token": tokens.access,
        "refresh_token": tokens.refresh,
        "expires_in": st.access_lifetime,
        "scope": tokens.scope,
        "csrf_token": random_hex(32),
        "token_type": "Bearer",
    })))
}
