//! A faithful fake of the Withings public API, served over plain HTTP on 127.0.0.1.
//!
//! The behaviour follows the facts sheet `docs/withings-api.md`; comments cite its
//! sections as "§N". One server plays both hosts: the account host (`/oauth2_user/authorize2`)
//! and the API host (`/v2/oauth2`, `/measure`, `/notify`).
//!
//! Where the facts sheet marks something UNCONFIRMED, the fake takes the strictest plausible
//! reading so that a client that copes with the fake copes with the real service.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

/// The client id the fake accepts on authorize2 and on the token endpoint.
pub const CLIENT_ID: &str = "fake-client-id";
/// The client secret the fake accepts on the token endpoint.
pub const CLIENT_SECRET: &str = "fake-client-secret";
/// The user id authorized by `mode=demo` (§1.2); created on first use.
pub const DEMO_USERID: u64 = 999_999;
/// Default `expires_in` of access tokens, in seconds (§1.4: 3 h).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: u64 = 10_800;
/// Lifetime of an authorization code, in seconds (§1.2, §1.4).
pub const CODE_LIFETIME: u64 = 30;
/// How long the previous refresh token survives a refresh at most, in seconds (§1.4: 8 h).
pub const REFRESH_GRACE: u64 = 8 * 3600;
/// Lifetime of a refresh token, in seconds (§1.4: 1 year).
pub const REFRESH_TOKEN_LIFETIME: u64 = 365 * 86_400;
/// Default application-wide rate limit per 60 s window (§4.2).
pub const DEFAULT_RATE_LIMIT: usize = 120;
/// The `expires` value reported by `notify list` (§3.1: 2038-01-19, "never").
pub const SUBSCRIPTION_EXPIRES: i64 = 2_147_483_647;
/// The exact `error` text for a missing, unknown or expired access token (§0, observed).
pub const INVALID_TOKEN_ERROR: &str =
    "XRequestID: Not provided invalid_token: The access token provided is invalid";
/// The `error` text of status 293 from `notify subscribe` (§3.1).
pub const CALLBACK_INVALID_ERROR: &str = "The callback URL is either unknown or invalid";
/// The `timezone` reported by `getmeas`.
pub const TIMEZONE: &str = "Europe/Paris";

/// One of the fake's endpoints, used to inject faults and to count calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /oauth2_user/authorize2` on the account host (§1.2).
    Authorize,
    /// `POST /v2/oauth2` (§1.3).
    Token,
    /// `POST /measure` (§2).
    Measure,
    /// `POST /notify` (§3.1).
    Notify,
}

impl Endpoint {
    /// The URL path of this endpoint.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Authorize => "/oauth2_user/authorize2",
            Endpoint::Token => "/v2/oauth2",
            Endpoint::Measure => "/measure",
            Endpoint::Notify => "/notify",
        }
    }

    /// The endpoint served at `path`, if any.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        [
            Endpoint::Authorize,
            Endpoint::Token,
            Endpoint::Measure,
            Endpoint::Notify,
        ]
        .into_iter()
        .find(|e| e.path() == path)
    }

    /// Whether calls to this endpoint count towards the API rate limit (§4.2).
    pub fn is_api(self) -> bool {
        !matches!(self, Endpoint::Authorize)
    }
}

/// A one-shot fault, consumed by the next call to the endpoint it was pushed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer HTTP 200 with `{"status":N,"error":"..."}` (Withings-style error, §0).
    Status(i64),
    /// Answer this HTTP status with a short HTML body (edge / proxy failure).
    Http(u16),
    /// Wait this long, then answer normally.
    Stall(Duration),
    /// Answer the normal JSON cut in half, with the Content-Length of the cut body.
    Truncated,
}

/// One request received by the fake, recorded faithfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// URL path without the query string.
    pub path: String,
    /// HTTP method, e.g. "POST".
    pub method: String,
    /// The `action` parameter, if any.
    pub action: Option<String>,
    /// Query parameters and form body merged (body wins on duplicates).
    pub params: BTreeMap<String, String>,
    /// The token from `Authorization: Bearer <token>`, if any.
    pub bearer: Option<String>,
    /// Fake-clock time at which the request arrived.
    pub at: u64,
    /// The endpoint the path maps to (None for unknown paths).
    pub endpoint: Option<Endpoint>,
    /// The raw query string (without `?`).
    pub query: String,
    /// The raw request body, lossily decoded as UTF-8.
    pub body: String,
    /// All request headers as (name, value), in the order received.
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One measure inside a group (§2); `type_` serializes as `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Measure {
    /// Integer mantissa; real value = value × 10^unit.
    pub value: i64,
    /// Power-of-ten exponent.
    pub unit: i32,
    /// Measure type code (§2.2), e.g. 1 = weight.
    #[serde(rename = "type")]
    pub type_: i32,
}

/// One measure group (one physical measurement session, §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Group id; stable across in-place updates.
    pub grpid: i64,
    /// When the measurement was taken (unix s).
    pub date: i64,
    /// When the group was last modified (unix s); drives `lastupdate`.
    pub modified: i64,
    /// Attribution code (§2.1).
    pub attrib: i64,
    /// 1 = real measurement, 2 = goal.
    pub category: i64,
    /// Device id (hex) or None for manual entries.
    pub deviceid: Option<String>,
    /// The measures in this group.
    pub measures: Vec<Measure>,
}

/// The device id used by the convenience constructors.
pub const FAKE_DEVICEID: &str = "3f8a9c2e71b04d5a8e6f1c2b3a4d5e6f7a8b9c0d";

impl Group {
    /// A device-captured (attrib 0), category-1 weight group with one type-1 measure.
    pub fn weight(grpid: i64, date: i64, modified: i64, value: i64, unit: i32) -> Group {
        Group {
            grpid,
            date,
            modified,
            attrib: 0,
            category: 1,
            deviceid: Some(FAKE_DEVICEID.to_string()),
            measures: vec![Measure {
                value,
                unit,
                type_: 1,
            }],
        }
    }

    /// A device-captured blood-pressure group: types 10 (systolic), 9 (diastolic), 11 (pulse).
    pub fn blood_pressure(
        grpid: i64,
        date: i64,
        modified: i64,
        systolic: i64,
        diastolic: i64,
        pulse: i64,
    ) -> Group {
        let m = |type_, value| Measure {
            value,
            unit: 0,
            type_,
        };
        Group {
            grpid,
            date,
            modified,
            attrib: 0,
            category: 1,
            deviceid: Some(FAKE_DEVICEID.to_string()),
            measures: vec![m(10, systolic), m(9, diastolic), m(11, pulse)],
        }
    }
}

#[derive(Clone, Debug)]
struct Subscription {
    appli: u32,
    callbackurl: String,
    comment: String,
}

#[derive(Clone, Debug)]
struct Tokens {
    access: String,
    access_expires: u64,
    access_used: bool,
    refresh: String,
    refresh_expires: u64,
    scope: String,
    /// The refresh token that was exchanged for the current pair, and the end of its grace.
    previous: Option<(String, u64)>,
}

#[derive(Clone, Debug, Default)]
struct User {
    groups: BTreeMap<i64, Group>,
    /// Groups given as JSON, served as given (see `add_raw_group`).
    raw_groups: Vec<Value>,
    subs: Vec<Subscription>,
    tokens: Option<Tokens>,
}

#[derive(Clone, Debug)]
struct AuthCode {
    userid: u64,
    redirect_uri: String,
    scope: String,
    issued: u64,
    used: bool,
}

#[derive(Debug)]
struct State {
    clock_offset: u64,
    users: BTreeMap<u64, User>,
    first_user: Option<u64>,
    login: Option<u64>,
    codes: HashMap<String, AuthCode>,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    calls: Vec<Call>,
    head_checks: Vec<(String, Option<u16>)>,
    access_lifetime: u64,
    userid_as_string: bool,
    page_size: usize,
    more_as_bool: bool,
    lastupdate_exclusive: bool,
    rate_limit: usize,
    redirect_uris: Vec<String>,
}

impl State {
    fn now(&self) -> u64 {
        real_now() + self.clock_offset
    }

    fn user(&mut self, userid: u64) -> &mut User {
        if self.first_user.is_none() {
            self.first_user = Some(userid);
        }
        self.users.entry(userid).or_default()
    }

    /// Issue a fresh token pair for `userid`, revoking the previous access token (strict
    /// reading of the UNCONFIRMED point in §1.4).
    fn issue(&mut self, userid: u64, scope: &str, previous: Option<(String, u64)>) -> Tokens {
        let now = self.now();
        let tokens = Tokens {
            access: random_hex(40),
            access_expires: now + self.access_lifetime,
            access_used: false,
            refresh: random_hex(40),
            refresh_expires: now + REFRESH_TOKEN_LIFETIME,
            scope: scope.to_string(),
            previous,
        };
        self.user(userid).tokens = Some(tokens.clone());
        tokens
    }

    /// Which user a refresh with `token` would succeed for, and the grace entry the new pair
    /// would carry (§1.4). No side effects.
    fn check_refresh(&self, token: &str) -> Option<(u64, Option<(String, u64)>)> {
        let now = self.now();
        for (&uid, user) in &self.users {
            let Some(t) = &user.tokens else { continue };
            if t.refresh == token && now < t.refresh_expires {
                // The current refresh token: it becomes the "previous" one for 8 h.
                return Some((uid, Some((token.to_string(), now + REFRESH_GRACE))));
            }
            if let Some((prev, grace_end)) = &t.previous {
                if prev == token && !t.access_used && now < *grace_end {
                    // Replaying the previous token within its grace: it stays the previous
                    // one, but its original deadline is kept (no extension by replay).
                    return Some((uid, Some((prev.clone(), *grace_end))));
                }
            }
        }
        None
    }

    /// Authenticate an access token; using a user's newest access token ends the grace of
    /// the previous refresh token (§1.4).
    fn authenticate(&mut self, token: Option<&str>) -> Option<u64> {
        let token = token.filter(|t| !t.is_empty())?;
        let now = self.now();
        for (&uid, user) in self.users.iter_mut() {
            let Some(t) = user.tokens.as_mut() else {
                continue;
            };
            if t.access == token {
                if now >= t.access_expires {
                    return None;
                }
                t.access_used = true;
                t.previous = None;
                return Some(uid);
            }
        }
        None
    }

    fn api_calls_in_window(&self, now: u64) -> usize {
        self.calls
            .iter()
            .rev()
            .take_while(|c| c.at + 60 > now)
            .filter(|c| c.endpoint.is_some_and(Endpoint::is_api))
            .count()
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `len` random lowercase hex characters (std only: SipHash with random keys).
fn random_hex(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.write_u128(nanos);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

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
        lock(&self.state)
            .users
            .get(&userid)
            .map(|u| {
                u.subs
                    .iter()
                    .map(|s| (s.appli, s.callbackurl.clone()))
                    .collect()
            })
            .unwrap_or_default()
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
fn client_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

// ---------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------

/// What a handler wants to send back.
enum Reply {
    /// HTTP 200 with a JSON document (the Withings envelope, §0).
    Json(Value),
    /// HTTP 302 to this Location (authorize2 success, §1.2).
    Redirect(String),
    /// This HTTP status with a plain-text body.
    Text(u16, String),
    /// This HTTP status with a short HTML body.
    Html(u16),
}

fn parse_form(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(s.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

fn handle_request(shared: &Shared, mut request: tiny_http::Request) {
    let mut raw = Vec::new();
    let _ = request.as_reader().read_to_end(&mut raw);
    let body = String::from_utf8_lossy(&raw).into_owned();
    let url = request.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    // §0: the body is application/x-www-form-urlencoded; a body of another type (e.g. JSON)
    // is not understood as parameters, as on a form-only server.
    let form_body = header("Content-Type").is_none_or(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let mut params: BTreeMap<String, String> = parse_form(&query).collect();
    if form_body {
        params.extend(parse_form(&body));
    }
    let bearer = header("Authorization").and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
    });
    let endpoint = Endpoint::from_path(&path);

    let (call, fault) = {
        let mut st = lock(shared);
        let call = Call {
            path,
            method: request.method().as_str().to_string(),
            action: params.get("action").cloned(),
            params,
            bearer,
            at: st.now(),
            endpoint,
            query,
            body,
            headers,
        };
        st.calls.push(call.clone());
        let fault = endpoint.and_then(|e| st.faults.get_mut(&e).and_then(VecDeque::pop_front));
        (call, fault)
    };

    let mut truncate = false;
    let reply = match fault {
        Some(Fault::Status(n)) => Reply::Json(error_json(n, &fault_error_text(n))),
        Some(Fault::Http(n)) => Reply::Html(n),
        Some(Fault::Stall(d)) => {
            std::thread::sleep(d);
            dispatch(shared, &call)
        }
        Some(Fault::Truncated) => {
            truncate = true;
            dispatch(shared, &call)
        }
        None => dispatch(shared, &call),
    };
    let _ = respond(request, reply, truncate);
}

fn respond(request: tiny_http::Request, reply: Reply, truncate: bool) -> std::io::Result<()> {
    let header = |k: &str, v: &str| {
        tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
    };
    let (status, content_type, mut bytes, location) = match reply {
        Reply::Json(v) => (200, "application/json", v.to_string().into_bytes(), None),
        Reply::Redirect(loc) => (
            302,
            "text/html; charset=UTF-8",
            b"<html><body>Redirecting</body></html>".to_vec(),
            Some(loc),
        ),
        Reply::Text(code, text) => (code, "text/plain; charset=UTF-8", text.into_bytes(), None),
        Reply::Html(code) => (
            code,
            "text/html; charset=UTF-8",
            format!("<html><head><title>{code}</title></head><body><h1>{code}</h1></body></html>")
                .into_bytes(),
            None,
        ),
    };
    if truncate {
        // Cut mid-document; the Content-Length announces the cut length, so the client sees
        // a complete HTTP response whose JSON is invalid.
        bytes.truncate(bytes.len() / 2);
    }
    let mut response = tiny_http::Response::from_data(bytes)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type));
    if let Some(loc) = location {
        response = response.with_header(header("Location", &loc));
    }
    request.respond(response)
}

/// A Withings error envelope: HTTP 200, non-zero status, an `error` text (§0). The 401 shape
/// (`body: {}`) and the 503 shape (no body) follow the observed examples in §0.
fn error_json(status: i64, error: &str) -> Value {
    if status == 503 {
        json!({ "status": status, "error": error })
    } else {
        json!({ "status": status, "body": {}, "error": error })
    }
}

fn fault_error_text(status: i64) -> String {
    match status {
        401 => INVALID_TOKEN_ERROR.to_string(),
        503 => "Invalid Params".to_string(),
        293 => CALLBACK_INVALID_ERROR.to_string(),
        522 => "Timeout".to_string(),
        601 => "Too many requests".to_string(),
        _ => format!("An error occurred (injected status {status})"),
    }
}

fn ok_json(body: Value) -> Value {
    json!({ "status": 0, "body": body })
}

fn dispatch(shared: &Shared, call: &Call) -> Reply {
    let Some(endpoint) = call.endpoint else {
        return Reply::Text(404, "Not Found".to_string());
    };
    if endpoint.is_api() {
        // §4.2: more than `rate_limit` API requests in any 60 s of fake clock → status 601.
        // Every received API request (including faulted and rejected ones) is counted.
        let st = lock(shared);
        if st.api_calls_in_window(st.now()) > st.rate_limit {
            return Reply::Json(error_json(601, "Too many requests"));
        }
    }
    match endpoint {
        Endpoint::Authorize => authorize(shared, call),
        Endpoint::Token => token(shared, call),
        Endpoint::Measure => measure(shared, call),
        Endpoint::Notify => notify(shared, call),
    }
}

fn param<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// §1.2: GET authorize2 → 302 to `redirect_uri?code=..&state=..`; bad params → HTTP 400.
fn authorize(shared: &Shared, call: &Call) -> Reply {
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
fn token(shared: &Shared, call: &Call) -> Reply {
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

/// The access token of a call: the Bearer header (§1.5), else the legacy `access_token` field.
fn call_token(call: &Call) -> Option<&str> {
    call.bearer
        .as_deref()
        .or_else(|| call.params.get("access_token").map(String::as_str))
}

fn unauthorized() -> Reply {
    Reply::Json(error_json(401, INVALID_TOKEN_ERROR))
}

fn int_param(call: &Call, name: &str) -> Result<Option<i64>, Reply> {
    match param(call, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| Reply::Json(error_json(503, &format!("Invalid Params: {name}")))),
    }
}

/// §2: POST /measure action=getmeas with filters and offset/more pagination.
fn measure(shared: &Shared, call: &Call) -> Reply {
    let mut st = lock(shared);
    let Some(userid) = st.authenticate(call_token(call)) else {
        return unauthorized();
    };
    if param(call, "action") != Some("getmeas") {
        return Reply::Json(error_json(503, "Invalid Params: action"));
    }
    let parsed = (|| {
        Ok::<_, Reply>((
            int_param(call, "category")?,
            int_param(call, "lastupdate")?,
            int_param(call, "startdate")?,
            int_param(call, "enddate")?,
            int_param(call, "offset")?,
        ))
    })();
    let (category, lastupdate, startdate, enddate, offset) = match parsed {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let mut types: Vec<i32> = Vec::new();
    for name in ["meastype", "meastypes"] {
        if let Some(v) = param(call, name) {
            for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                match t.parse::<i32>() {
                    Ok(t) => types.push(t),
                    Err(_) => {
                        return Reply::Json(error_json(503, &format!("Invalid Params: {name}")))
                    }
                }
            }
        }
    }
    let exclusive = st.lastupdate_exclusive;
    let user = &st.users[&userid];
    // (modified, grpid, JSON): the sort key and what is served.
    let typed = user
        .groups
        .values()
        .filter(|g| category.is_none_or(|c| g.category == c))
        // Whether lastupdate is inclusive is UNCONFIRMED (§2.3): inclusive unless
        // set_lastupdate_exclusive, so clients must both dedupe and not lose the boundary.
        .filter(|g| lastupdate.is_none_or(|l| after_lastupdate(g.modified, l, exclusive)))
        .filter(|g| startdate.is_none_or(|s| g.date >= s))
        .filter(|g| enddate.is_none_or(|e| g.date <= e))
        .filter_map(|g| {
            if types.is_empty() {
                return Some(g.clone());
            }
            let mut g = g.clone();
            g.measures.retain(|m| types.contains(&m.type_));
            (!g.measures.is_empty()).then_some(g)
        })
        .map(|g| (g.modified, g.grpid, group_json(&g)));
    let raw = user.raw_groups.iter().filter_map(|g| {
        let int = |key: &str| g.get(key).and_then(Value::as_i64);
        let modified = int("modified").or(int("date")).unwrap_or(i64::MIN);
        let keep = int("category").is_none_or(|c| category.is_none_or(|want| c == want))
            && lastupdate.is_none_or(|l| after_lastupdate(modified, l, exclusive))
            && startdate.is_none_or(|s| int("date").is_some_and(|d| d >= s))
            && enddate.is_none_or(|e| int("date").is_some_and(|d| d <= e));
        keep.then(|| (modified, int("grpid").unwrap_or(0), g.clone()))
    });
    let mut groups: Vec<(i64, i64, Value)> = typed.chain(raw).collect();
    groups.sort_by_key(|(modified, grpid, _)| (*modified, *grpid));
    let start = offset.unwrap_or(0).max(0) as usize;
    let end = start.saturating_add(st.page_size).min(groups.len());
    let page = groups.get(start..end).unwrap_or(&[]);
    let more = end < groups.len();
    let next_offset = if more { end } else { 0 };
    let more_json = if st.more_as_bool {
        json!(more)
    } else {
        json!(u8::from(more))
    };
    let measuregrps: Vec<Value> = page.iter().map(|(_, _, g)| g.clone()).collect();
    Reply::Json(ok_json(json!({
        "updatetime": st.now(),
        "timezone": TIMEZONE,
        "measuregrps": measuregrps,
        "more": more_json,
        "offset": next_offset,
    })))
}

/// Whether a group modified at `modified` is "created or modified after" `lastupdate` (§2).
fn after_lastupdate(modified: i64, lastupdate: i64, exclusive: bool) -> bool {
    if exclusive {
        modified > lastupdate
    } else {
        modified >= lastupdate
    }
}

fn group_json(g: &Group) -> Value {
    let device = g.deviceid.is_some();
    let measures: Vec<Value> = g
        .measures
        .iter()
        .map(|m| json!({ "value": m.value, "type": m.type_, "unit": m.unit, "algo": 0, "fm": 3 }))
        .collect();
    json!({
        "grpid": g.grpid,
        "attrib": g.attrib,
        "date": g.date,
        "created": g.date,
        "modified": g.modified,
        "category": g.category,
        "deviceid": g.deviceid,
        "hash_deviceid": g.deviceid,
        "model": if device { json!("Body+") } else { Value::Null },
        "modelid": if device { json!(5) } else { Value::Null },
        "comment": Value::Null,
        "measures": measures,
        // Undocumented extra key, as seen in real answers (§2): clients must ignore it.
        "apppfmid": 7,
    })
}

/// §3.1: POST /notify subscribe (with a real HEAD check, §3.2) / list / get / revoke.
fn notify(shared: &Shared, call: &Call) -> Reply {
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
            let head = client_agent(Duration::from_secs(5))
                .head(&url)
                .call()
                .ok()
                .map(|r| r.status().as_u16());
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
