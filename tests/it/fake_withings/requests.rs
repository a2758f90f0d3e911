//! One request, from reading to answering: record the call, apply a queued
//! fault, enforce the rate limit (§4.2), dispatch to the endpoint, and write
//! the reply; with the envelope and parameter helpers the endpoints share.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

use super::state::{lock, Shared};
use super::{measure, notify, oauth};
use super::{Call, Endpoint, Fault, CALLBACK_INVALID_ERROR, INVALID_TOKEN_ERROR};

/// What a handler wants to send back.
pub(super) enum Reply {
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

pub(super) fn handle_request(shared: &Shared, mut request: tiny_http::Request) {
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
pub(super) fn error_json(status: i64, error: &str) -> Value {
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

pub(super) fn ok_json(body: Value) -> Value {
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
        Endpoint::Authorize => oauth::authorize(shared, call),
        Endpoint::Token => oauth::token(shared, call),
        Endpoint::Measure => measure::measure(shared, call),
        Endpoint::Notify => notify::notify(shared, call),
    }
}

pub(super) fn param<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The access token of a call: the Bearer header (§1.5), else the legacy `access_token` field.
pub(super) fn call_token(call: &Call) -> Option<&str> {
    call.bearer
        .as_deref()
        .or_else(|| call.params.get("access_token").map(String::as_str))
}

pub(super) fn unauthorized() -> Reply {
    Reply::Json(error_json(401, INVALID_TOKEN_ERROR))
}

pub(super) fn int_param(call: &Call, name: &str) -> Result<Option<i64>, Reply> {
    match param(call, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| Reply::Json(error_json(503, &format!("Invalid Params: {name}")))),
    }
}
