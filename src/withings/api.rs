//! The HTTP edge towards Withings: POST a form, unwrap the
//! `{"status", "body"}` envelope. Errors arrive as HTTP 200 with a non-zero
//! status (facts sheet §0), so HTTP success means little here.

use crate::error::{Error, Result, WithingsKind};
use crate::secret::Secret;
use crate::tls_roots;
use crate::weburl::{encode_query, BaseUrl};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::time::Duration;
use ureq::Agent;

/// getmeas pages are small; this only stops a misbehaving server from
/// filling a 64 MB router.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct Envelope<'a> {
    status: i64,
    /// Borrowed as text, so a caller can keep parts of it byte for byte.
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<String>,
}

pub struct Api {
    base: BaseUrl,
    /// Tried in order; a later one only when an earlier one's TLS
    /// verification failed. That is how `--ca-file` adds a CA to the bundled
    /// roots: ureq takes one root set per agent (see `tls_roots.rs`).
    agents: Vec<Agent>,
}

/// Pure: what kind of failure a ureq error is.
fn kind_of(e: &ureq::Error) -> WithingsKind {
    match e {
        ureq::Error::Timeout(_) => WithingsKind::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => WithingsKind::Timeout,
        e if tls_roots::is_tls_failure(e) => WithingsKind::Tls(e.to_string()),
        e => WithingsKind::Unreachable(e.to_string()),
    }
}

impl Api {
    /// `extra_ca`: the `--ca-file` certificates, from [`tls_roots::read_pem`].
    pub fn new(base: BaseUrl, extra_ca: Vec<CertificateDer<'static>>) -> Api {
        let agents = tls_roots::https_agents(&extra_ca, CONNECT_TIMEOUT, CALL_TIMEOUT);
        Api { base, agents }
    }

    /// POSTs `form` to `path` and returns the envelope's `body` when status
    /// is 0. `what` names the call in errors and logs ("measure getmeas");
    /// form values never reach a log, since they hold codes and secrets.
    pub fn post(
        &self,
        what: &'static str,
        path: &str,
        bearer: Option<&Secret>,
        form: &[(&str, &str)],
    ) -> Result<Value> {
        parse_envelope(what, &self.post_text(what, path, bearer, form)?)
    }

    /// Like [`Api::post`], but returns the whole answer as text, for
    /// [`envelope_body`]: getmeas keeps a group it cannot read verbatim.
    pub fn post_text(
        &self,
        what: &'static str,
        path: &str,
        bearer: Option<&Secret>,
        form: &[(&str, &str)],
    ) -> Result<String> {
        let url = self.base.join(path);
        let body = encode_query(form);
        let mut last_err = None;
        for agent in &self.agents {
            let mut request = agent
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded");
            if let Some(token) = bearer {
                request = request.header("Authorization", format!("Bearer {}", token.expose()));
            }
            match request.send(&body) {
                Ok(response) => return read_answer(what, response),
                Err(e) if tls_roots::is_tls_failure(&e) => last_err = Some(e),
                Err(e) => return Err(Error::withings(what, kind_of(&e))),
            }
        }
        let e = last_err.map_or_else(String::new, |e| e.to_string());
        Err(Error::withings(what, WithingsKind::Tls(e)))
    }
}

fn read_answer(
    what: &'static str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<String> {
    let http_status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .map_err(|e| {
            let kind = match kind_of(&e) {
                WithingsKind::Unreachable(why) => {
                    WithingsKind::Unreachable(format!("reading the answer failed: {why}"))
                }
                other => other,
            };
            Error::withings(what, kind)
        })?;
    if http_status != 200 {
        return Err(Error::withings(what, WithingsKind::HttpStatus(http_status)));
    }
    Ok(text)
}

/// Pure: the `body` of a successful envelope, or the error it carries.
pub fn parse_envelope(what: &'static str, text: &str) -> Result<Value> {
    serde_json::from_str(envelope_body(what, text)?)
        .map_err(|e| Error::withings(what, WithingsKind::NotEnvelope(e.to_string())))
}

/// Pure: the `body` of a successful envelope as its JSON text, exactly as
/// sent (`null` when there is none), or the error the envelope carries.
pub fn envelope_body<'a>(what: &'static str, text: &'a str) -> Result<&'a str> {
    // Not JSON at all (a proxy's HTML page, an answer cut short) tends to
    // pass, unlike a body of the wrong shape.
    let envelope: Envelope = serde_json::from_str(text)
        .map_err(|e| Error::withings(what, WithingsKind::NotEnvelope(e.to_string())))?;
    if envelope.status != 0 {
        return Err(Error::Api {
            endpoint: what,
            status: envelope.status,
            message: envelope.error.unwrap_or_default(),
        });
    }
    Ok(envelope.body.map_or("null", RawValue::get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_returns_the_body() {
        let body = parse_envelope("x", r#"{"status":0,"body":{"a":1}}"#).unwrap();
        assert_eq!(body["a"], 1);
    }

    #[test]
    fn errors_at_http_200_become_api_errors_with_their_text() {
        let text = r#"{"status":401,"body":{},"error":"XRequestID: Not provided invalid_token: The access token provided is invalid"}"#;
        match parse_envelope("measure getmeas", text) {
            Err(Error::Api {
                status: 401,
                message,
                ..
            }) => assert!(message.contains("invalid_token")),
            other => panic!("{other:?}"),
        }
        match parse_envelope(
            "oauth2",
            r#"{"status":503,"error":"Invalid Params: invalid code"}"#,
        ) {
            Err(Error::Api { status: 503, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_body_text_is_kept_byte_for_byte() {
        let text = r#"{"status":0,"body":{"b": 1.50, "a":[ 2 ]}}"#;
        assert_eq!(
            envelope_body("x", text).unwrap(),
            r#"{"b": 1.50, "a":[ 2 ]}"#
        );
        assert_eq!(envelope_body("x", r#"{"status":0}"#).unwrap(), "null");
        assert_eq!(parse_envelope("x", r#"{"status":0}"#).unwrap(), Value::Null);
    }

    #[test]
    fn truncated_json_is_a_transport_error() {
        let err = parse_envelope("measure getmeas", r#"{"status":0,"body":{"meas"#).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Withings {
                    kind: WithingsKind::NotEnvelope(_),
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
