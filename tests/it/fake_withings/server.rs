//! The fake as a test holds it: `FakeWithings` starts the server on
//! 127.0.0.1:0, sets it up, looks into what it saw, and plays Withings
//! (posting notifications) and the user's browser (visiting authorize2).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::requests::handle_request;
use super::state::{lock, Shared, State, Subscription};
use super::{Call, Endpoint, Fault, Group, DEFAULT_ACCESS_TOKEN_LIFETIME, DEFAULT_RATE_LIMIT};

/// The fake Withings server. Dropping it stops accepting requests.
pub struct FakeWithings {
    state: Shared,
    server: Arc<tiny_http::Server>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeWithings {
    /// Bind 127.0.0.1:0 and serve on background threads (one thread per request).
    pub fn start() -> FakeWithings {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind fake Withings"));
        let port = server
            .server_addr()
            .to_ip()
            .expect("fake Withings listens on IP")
            .port();
        let state: Shared = Arc::new(Mutex::new(State {
            clock_offset: 0,
            users: BTreeMap::new(),
            first_user: None,
            login: None,
            codes: HashMap::new(),
            faults: HashMap::new(),
            calls: Vec::new(),
            head_checks: Vec::new(),
            callbacks_unreachable: false,
            access_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            userid_as_string: true,
            page_size: 100,
            more_as_bool: false,
            lastupdate_exclusive: false,
            rate_limit: DEFAULT_RATE_LIMIT,
            redirect_uris: Vec::new(),
        }));
        let acceptor = {
            let server = Arc::clone(&server);
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("fake-withings-accept".into())
                .spawn(move || {
                    for request in server.incoming_requests() {
                        let state = Arc::clone(&state);
                        let _ = std::thread::Builder::new()
                            .name("fake-withings-req".into())
                            .spawn(move || handle_request(&state, request));
                    }
                })
                .expect("spawn fake Withings acceptor")
        };
        FakeWithings {
            state,
            server,
            port,
            acceptor: Some(acceptor),
        }
    }

    /// Base URL "http://127.0.0.1:PORT", used as both the API and the account base.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the fake listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Create a Withings account that can log in (the first one added is logged in by default).
    pub fn add_user(&self, userid: u64) {
        lock(&self.state).user(userid);
    }

    /// Make `userid` the account that the next authorize2 visits authorize.
    pub fn login_as(&self, userid: u64) {
        let mut st = lock(&self.state);
        st.user(userid);
        st.login = Some(userid);
    }

    /// Store or replace (same grpid: in-place update, §2) a measure group; creates the user.
    pub fn add_group(&self, userid: u64, group: Group) {
        lock(&self.state)
            .user(userid)
            .groups
            .insert(group.grpid, group);
    }

    /// Store a group given as raw JSON, for shapes `Group` cannot express: real captured
    /// groups, undocumented keys, fields of the wrong type. It is served as given (with
    /// serde_json's key order), among the other groups. The filters read what they can: an
    /// integer `category`; `modified`, else `date`, for `lastupdate` and the sort order (a
    /// group with neither sorts first and never passes `lastupdate`); `date` for
    /// `startdate`/`enddate`. `meastype(s)` does not apply to it. Creates the user.
    pub fn add_raw_group(&self, userid: u64, group: Value) {
        lock(&self.state).user(userid).raw_groups.push(group);
    }

    /// Delete a measure group; it simply disappears from later answers (§2, UNCONFIRMED).
    pub fn remove_group(&self, userid: u64, grpid: i64) -> bool {
        lock(&self.state)
            .user(userid)
            .groups
            .remove(&grpid)
            .is_some()
    }

    /// Queue a one-shot fault for the next call to `endpoint` (FIFO per endpoint).
    pub fn push_fault(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.state)
            .faults
            .entry(endpoint)
            .or_default()
            .push_back(fault);
    }

    /// Number of faults still queued for `endpoint`.
    pub fn pending_faults(&self, endpoint: Endpoint) -> usize {
        lock(&self.state)
            .faults
            .get(&endpoint)
            .map_or(0, VecDeque::len)
    }

    /// Move the fake clock forward; all lifetimes and the rate-limit window use it.
    pub fn advance_clock(&self, secs: u64) {
        lock(&self.state).clock_offset += secs;
    }

    /// The fake clock now (real unix time + offset).
    pub fn now(&self) -> u64 {
        lock(&self.state).now()
    }

    /// Set `expires_in` for tokens issued from now on (default 10800).
    pub fn set_access_token_lifetime(&self, secs: u64) {
        lock(&self.state).access_lifetime = secs;
    }

    /// Token responses carry `userid` as a JSON string (true, default) or an integer (§1.3).
    pub fn set_userid_as_string(&self, yes: bool) {
        lock(&self.state).userid_as_string = yes;
    }

    /// Maximum number of groups per getmeas page (default 100; 0 is treated as 1).
    pub fn set_page_size(&self, n: usize) {
        lock(&self.state).page_size = n.max(1);
    }

    /// getmeas `more` as true/false instead of 1/0 (default false, §2).
    pub fn set_more_as_bool(&self, yes: bool) {
        lock(&self.state).more_as_bool = yes;
    }

    /// getmeas `lastupdate` as "modified strictly after" (true) or "at or after" (false,
    /// default). Which one Withings does is UNCONFIRMED (§2.3), so a client must cope with
    /// both; the default stays inclusive.
    pub fn set_lastupdate_exclusive(&self, yes: bool) {
        lock(&self.state).lastupdate_exclusive = yes;
    }

    /// Change the API rate limit per 60 s of fake clock (default 120, §4.2).
    pub fn set_rate_limit(&self, per_minute: usize) {
        lock(&self.state).rate_limit = per_minute;
    }

    /// Make every HEAD check of a callback URL fail (true), as when the URL cannot be
    /// reached from the internet, so `subscribe` answers 293 (§3.1, §3.2); or work again.
    pub fn set_callbacks_unreachable(&self, yes: bool) {
        lock(&self.state).callbacks_unreachable = yes;
    }

    /// Registered redirect URIs (§1.1); if non-empty, authorize2 only accepts these exactly.
    pub fn set_redirect_uris(&self, uris: &[&str]) {
        lock(&self.state).redirect_uris = uris.iter().map(|u| u.to_string()).collect();
    }

    /// Every request received, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state).calls.clone()
    }

    /// Calls to `endpoint` with this `action` (an empty `action` matches any call).
    pub fn count(&self, endpoint: Endpoint, action: &str) -> usize {
        lock(&self.state)
            .calls
            .iter()
            .filter(|c| c.endpoint == Some(endpoint))
            .filter(|c| action.is_empty() || c.action.as_deref() == Some(action))
            .count()
    }

    /// Forget all recorded calls and HEAD checks (state, tokens and data are kept).
    pub fn clear_calls(&self) {
        let mut st = lock(&self.state);
        st.calls.clear();
        st.head_checks.clear();
    }

    /// Callback URLs HEAD-checked on subscribe, with the status got (None = request failed).
    pub fn head_checks(&self) -> Vec<(String, Option<u16>)> {
        lock(&self.state).head_checks.clone()
    }

    /// The user's subscriptions as (appli, callbackurl), in subscription order.
    pub fn subscriptions(&self, userid: u64) -> Vec<(u32, String)> {
        self.subscriptions_with_comments(userid)
            .into_iter()
            .map(|(appli, url, _)| (appli, url))
            .collect()
    }

    /// Subscribe `userid` as another application would (its own URL and comment), without
    /// a HEAD check: the subscription a relay must leave alone (§3.1).
    pub fn add_subscription(&self, userid: u64, appli: u32, callbackurl: &str, comment: &str) {
        lock(&self.state).user(userid).subs.push(Subscription {
            appli,
            callbackurl: callbackurl.to_string(),
            comment: comment.to_string(),
        });
    }

    /// Withings drops a subscription on its side, as after failed deliveries (§3.4);
    /// false if there was none.
    pub fn drop_subscription(&self, userid: u64, appli: u32, callbackurl: &str) -> bool {
        let mut st = lock(&self.state);
        let subs = &mut st.user(userid).subs;
        let before = subs.len();
        subs.retain(|s| !(s.appli == appli && s.callbackurl == callbackurl));
        subs.len() != before
    }

    /// The user's subscriptions as (appli, callbackurl, comment), in subscription order.
    pub fn subscriptions_with_comments(&self, userid: u64) -> Vec<(u32, String, String)> {
        lock(&self.state)
            .users
            .get(&userid)
            .map(|u| {
                u.subs
                    .iter()
                    .map(|s| (s.appli, s.callbackurl.clone(), s.comment.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The user revokes the application's access: its tokens die (access and refresh, the
    /// latter's grace too) and its subscriptions are removed with the grant (§3.1).
    pub fn revoke_grant(&self, userid: u64) {
        let mut st = lock(&self.state);
        let user = st.user(userid);
        user.tokens = None;
        user.subs.clear();
    }

    /// The (access, refresh) pair most recently issued to the user.
    pub fn current_tokens(&self, userid: u64) -> Option<(String, String)> {
        lock(&self.state)
            .users
            .get(&userid)
            .and_then(|u| u.tokens.as_ref())
            .map(|t| (t.access.clone(), t.refresh.clone()))
    }

    /// Issue a token pair directly (as a completed OAuth flow would), without an HTTP call.
    pub fn issue_tokens(&self, userid: u64) -> (String, String) {
        let t = lock(&self.state).issue(userid, "user.metrics", None);
        (t.access, t.refresh)
    }

    /// Whether a refresh with `token` for `userid` would succeed now (no side effects).
    pub fn refresh_token_usable(&self, userid: u64, token: &str) -> bool {
        lock(&self.state)
            .check_refresh(token)
            .is_some_and(|(uid, _)| uid == userid)
    }

    /// Whether `token` is the user's current, unexpired access token (no side effects).
    pub fn access_token_valid(&self, userid: u64, token: &str) -> bool {
        let st = lock(&self.state);
        let now = st.now();
        st.users
            .get(&userid)
            .and_then(|u| u.tokens.as_ref())
            .is_some_and(|t| t.access == token && now < t.access_expires)
    }

    /// POST a form body to a URL as Withings does (§3.3); the HTTP status, or 0 if the
    /// request failed at the transport level.
    pub fn notify_via_post(&self, callback_url: &str, form: &str) -> u16 {
        let agent = client_agent(Duration::from_secs(10));
        match agent
            .post(callback_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(form)
        {
            Ok(resp) => resp.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Deliver `userid=..&appli=..&startdate=..&enddate=..` (§3.3) to every callback URL the
    /// user subscribed for `appli`; returns (url, status) per delivery (0 = transport failure).
    pub fn send_notification(
        &self,
        userid: u64,
        appli: u32,
        startdate: i64,
        enddate: i64,
    ) -> Vec<(String, u16)> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("userid", &userid.to_string())
            .append_pair("appli", &appli.to_string())
            .append_pair("startdate", &startdate.to_string())
            .append_pair("enddate", &enddate.to_string())
            .finish();
        let urls: Vec<String> = self
            .subscriptions(userid)
            .into_iter()
            .filter(|(a, _)| *a == appli)
            .map(|(_, u)| u)
            .collect();
        urls.into_iter()
            .map(|u| {
                let status = self.notify_via_post(&u, &form);
                (u, status)
            })
            .collect()
    }

    /// Act as the user's browser: GET `url` without following redirects; returns the HTTP
    /// status and the `Location` header, if any (0 = transport failure).
    pub fn browser_get(&self, url: &str) -> (u16, Option<String>) {
        let agent = client_agent(Duration::from_secs(10));
        match agent.get(url).call() {
            Ok(resp) => {
                let loc = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                (resp.status().as_u16(), loc)
            }
            Err(_) => (0, None),
        }
    }
}

impl Drop for FakeWithings {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// A client that ignores proxy env vars, follows no redirects and treats no status as an error.
pub(super) fn client_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}
