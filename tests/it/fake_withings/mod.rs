//! A faithful fake of the Withings public API, served over plain HTTP on 127.0.0.1.
//!
//! The behaviour follows the facts sheet `docs/withings-api.md`; comments cite its
//! sections as "§N". One server plays both hosts: the account host (`/oauth2_user/authorize2`)
//! and the API host (`/v2/oauth2`, `/measure`, `/notify`).
//!
//! Where the facts sheet marks something UNCONFIRMED, the fake takes the strictest plausible
//! reading so that a client that copes with the fake copes with the real service.
//!
//! This file holds the vocabulary tests use: the constants, `Endpoint`, `Fault`, `Call`,
//! `Measure` and `Group`. `server.rs` is `FakeWithings` itself; behind it, `state.rs` keeps
//! what the fake remembers, `requests.rs` answers one request, and `oauth.rs`, `measure.rs`
//! and `notify.rs` serve the endpoints.

mod measure;
mod notify;
mod oauth;
mod requests;
mod server;
mod state;

pub use server::FakeWithings;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

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
