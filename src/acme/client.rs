//! One certificate from an RFC 8555 CA, synchronously over ureq: the
//! directory, a nonce, the account, an order, its authorization answered
//! with TLS-ALPN-01 (RFC 8737) on the relay's own TLS listener, finalize
//! with a CSR, and the PEM chain.
//!
//! Every POST is signed (`jws.rs`) with a fresh nonce; a `badNonce` answer
//! carries a new one and that request alone is tried again, at most three
//! times (RFC 8555 §6.5). A rate-limit answer is never retried here: it
//! goes back to the manager with the CA's `Retry-After`, which it keeps.

use super::der::{self, CertKey};
use super::files::{Account, AcmeFiles};
use super::jws::{b64, json_string, AccountKey, Signer};
use super::schedule::parse_retry_after;
use crate::clock::Clock;
use crate::error::{AcmeKind, Error, Result};
use crate::inbound::tls::CertSlot;
use crate::tls_roots;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use std::time::{Duration, Instant};
use ureq::Agent;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A certificate chain is a few KB; a directory or an order less.
const MAX_RESPONSE_BYTES: u64 = 256 * 1024;
/// RFC 8555 §6.5: a request refused for its nonce is sent again with the
/// nonce the refusal carries, this many times in all.
const NONCE_ATTEMPTS: u32 = 3;
/// How long to wait for an authorization or an order to leave `pending` or
/// `processing`; Let's Encrypt takes seconds.
const POLL_LIMIT: Duration = Duration::from_secs(180);
const POLL_FIRST: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(10);

const ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

/// The ACME server's https side: the bundled roots, and `--acme-ca-file`.
pub struct Http {
    /// Tried in order, a later one only when an earlier one's TLS
    /// verification failed, as in `withings/api.rs` (ureq takes one root
    /// set per agent).
    agents: Vec<Agent>,
}

/// An answer, with what ACME reads from its head.
struct Answer {
    status: u16,
    location: Option<String>,
    nonce: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self, step: &'static str) -> Result<Value> {
        serde_json::from_str(&self.body).map_err(|e| malformed(step, format!("not JSON: {e}")))
    }
}

fn malformed(step: &'static str, why: impl Into<String>) -> Error {
    Error::Acme {
        step,
        kind: AcmeKind::Malformed(why.into()),
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Http {
    pub fn new(extra_ca: Vec<CertificateDer<'static>>) -> Http {
        let agents = tls_roots::https_agents(&extra_ca, CONNECT_TIMEOUT, CALL_TIMEOUT);
        Http { agents }
    }

    /// GET `url`, or POST `jws` to it. Only these two, and a body as a
    /// `&String` as `withings/api.rs` sends it: each other ureq call shape
    /// is more code on the router.
    fn call(&self, step: &'static str, url: &str, jws: Option<&String>) -> Result<Answer> {
        let mut last_tls = String::new();
        for agent in &self.agents {
            let sent = match jws {
                None => agent.get(url).call(),
                Some(body) => agent
                    .post(url)
                    .header("Content-Type", "application/jose+json")
                    .send(body),
            };
            match sent {
                Ok(mut response) => {
                    let body = response
                        .body_mut()
                        .with_config()
                        .limit(MAX_RESPONSE_BYTES)
                        .read_to_string()
                        .map_err(|e| Error::Acme {
                            step,
                            kind: AcmeKind::Unreachable(format!("reading the answer: {e}")),
                        })?;
                    return Ok(Answer {
                        status: response.status().as_u16(),
                        location: header(&response, "location"),
                        nonce: header(&response, "replay-nonce"),
                        retry_after: header(&response, "retry-after"),
                        body,
                    });
                }
                Err(e) if tls_roots::is_tls_failure(&e) => last_tls = e.to_string(),
                Err(e) => {
                    return Err(Error::Acme {
                        step,
                        kind: AcmeKind::Unreachable(e.to_string()),
                    })
                }
            }
        }
        Err(Error::Acme {
            step,
            kind: AcmeKind::Unreachable(format!("TLS failed: {last_tls}")),
        })
    }
}

/// The three URLs of the directory the relay uses.
struct Directory {
    new_nonce: String,
    new_account: String,
    new_order: String,
}

/// What an issuance gives: the new key and the CA's PEM chain.
pub struct Issued {
    pub key_pkcs8: Vec<u8>,
    pub chain_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub not_before: i64,
    pub not_after: i64,
}

/// A session with the CA at `directory_url`.
pub struct Client<'a> {
    http: &'a Http,
    clock: &'a dyn Clock,
    directory_url: &'a str,
    directory: Option<Directory>,
    key: AccountKey,
    kid: Option<String>,
    nonce: Option<String>,
}

impl<'a> Client<'a> {
    /// Loads (or makes and stores) the account key; the account itself is
    /// looked up or registered by [`Client::issue`].
    pub fn new(
        http: &'a Http,
        clock: &'a dyn Clock,
        directory_url: &'a str,
        files: &AcmeFiles,
    ) -> Result<Client<'a>> {
        let key = match files.account_key()? {
            Some(pkcs8) => AccountKey::from_pkcs8(&pkcs8)?,
            None => {
                let (key, pkcs8) = AccountKey::generate()?;
                files.save_account_key(&pkcs8)?;
                key
            }
        };
        let kid = files
            .account()?
            .filter(|a| a.directory == directory_url)
            .map(|a| a.kid);
        Ok(Client {
            http,
            clock,
            directory_url,
            directory: None,
            key,
            kid,
            nonce: None,
        })
    }

    fn directory(&mut self) -> Result<&Directory> {
        if self.directory.is_none() {
            let step = "directory";
            let answer = self.http.call(step, self.directory_url, None)?;
            if answer.status != 200 {
                return Err(self.refusal(step, &answer));
            }
            let value = answer.json(step)?;
            let url = |name: &str| {
                value[name]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| malformed(step, format!("no {name} in the directory")))
            };
            self.directory = Some(Directory {
                new_nonce: url("newNonce")?,
                new_account: url("newAccount")?,
                new_order: url("newOrder")?,
            });
        }
        // Set just above.
        self.directory
            .as_ref()
            .ok_or(Error::Internal("no ACME directory"))
    }

    fn fresh_nonce(&mut self) -> Result<String> {
        if let Some(nonce) = self.nonce.take() {
            return Ok(nonce);
        }
        let url = self.directory()?.new_nonce.clone();
        // GET rather than HEAD: RFC 8555 §7.2 allows both (204).
        let answer = self.http.call("newNonce", &url, None)?;
        answer
            .nonce
            .ok_or_else(|| malformed("newNonce", "no Replay-Nonce header"))
    }

    /// What an error answer means, as an [`AcmeKind`].
    fn refusal(&self, step: &'static str, answer: &Answer) -> Error {
        let problem: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let kind = problem["type"].as_str().unwrap_or("");
        let kind = kind.strip_prefix(ERROR_PREFIX).unwrap_or(kind).to_string();
        let detail = problem["detail"].as_str().unwrap_or("").to_string();
        if answer.status == 429 || kind == "rateLimited" {
            let now = self.clock.now();
            let until = answer
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(now, v));
            return Error::Acme {
                step,
                kind: AcmeKind::RateLimited { until, detail },
            };
        }
        Error::Acme {
            step,
            kind: AcmeKind::Refused {
                status: answer.status,
                problem: if kind.is_empty() {
                    "no problem document".into()
                } else {
                    kind
                },
                detail,
            },
        }
    }

    /// A signed POST (`payload` None: POST-as-GET), retried with the CA's
    /// fresh nonce when it refuses ours.
    fn post(&mut self, step: &'static str, url: &str, payload: Option<&str>) -> Result<Answer> {
        for _ in 0..NONCE_ATTEMPTS {
            let nonce = self.fresh_nonce()?;
            let signer = match &self.kid {
                Some(kid) => Signer::Kid(kid),
                None => Signer::Jwk,
            };
            let body = self.key.sign(&signer, &nonce, url, payload)?;
            let answer = self.http.call(step, url, Some(&body))?;
            self.nonce = answer.nonce.clone();
            if answer.status < 400 {
                return Ok(answer);
            }
            match self.refusal(step, &answer) {
                Error::Acme {
                    kind: AcmeKind::Refused { problem, .. },
                    ..
                } if problem == "badNonce" => {
                    log::debug!(
                        "acme: {step}: the CA refused the nonce; trying again with its new one"
                    );
                }
                other => return Err(other),
            }
        }
        Err(Error::Acme {
            step,
            kind: AcmeKind::BadNonce,
        })
    }

    /// The account URL: the stored one, or newAccount's answer (which is
    /// the existing account's when the key already has one, RFC 8555
    /// §7.3.1), stored for next time.
    fn account(&mut self, files: &AcmeFiles, email: Option<&str>) -> Result<()> {
        if self.kid.is_some() {
            return Ok(());
        }
        let url = self.directory()?.new_account.clone();
        let contact = email.map_or_else(String::new, |email| {
            format!(
                r#","contact":[{}]"#,
                json_string(&format!("mailto:{email}"))
            )
        });
        let payload = format!(r#"{{"termsOfServiceAgreed":true{contact}}}"#);
        let step = "newAccount";
        let answer = self.post(step, &url, Some(&payload))?;
        let kid = answer
            .location
            .ok_or_else(|| malformed(step, "no Location header"))?;
        files.save_account(&Account {
            kid: kid.clone(),
            directory: self.directory_url.to_string(),
        })?;
        log::info!("acme: account {kid}");
        self.kid = Some(kid);
        Ok(())
    }

    /// POST-as-GET `url` until its `status` is no longer `pending` or
    /// `processing` (or `ready`, when `until_ready`), waiting as the CA's
    /// Retry-After says, else 0.5 s doubling to 10 s.
    fn poll(&mut self, step: &'static str, url: &str, waiting: &[&str]) -> Result<Value> {
        let started = Instant::now();
        let mut wait = POLL_FIRST;
        loop {
            let answer = self.post(step, url, None)?;
            let value = answer.json(step)?;
            let status = value["status"].as_str().unwrap_or("");
            if !waiting.contains(&status) {
                return Ok(value);
            }
            if started.elapsed() > POLL_LIMIT {
                return Err(Error::Acme {
                    step,
                    kind: AcmeKind::Stuck(if status == "processing" {
                        "processing"
                    } else {
                        "pending"
                    }),
                });
            }
            let theirs = answer
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(0, v))
                .map(|secs| Duration::from_secs(secs.clamp(0, 60) as u64));
            std::thread::sleep(theirs.unwrap_or(wait).max(POLL_FIRST));
            wait = (wait * 2).min(POLL_MAX);
        }
    }

    /// Orders a certificate for `domain`, proves it through `slot`, and
    /// downloads it. The challenge certificate is removed from `slot`
    /// whatever happens.
    pub fn issue(
        &mut self,
        files: &AcmeFiles,
        email: Option<&str>,
        domain: &str,
        slot: &CertSlot,
    ) -> Result<Issued> {
        self.account(files, email)?;
        let new_order = self.directory()?.new_order.clone();
        let step = "newOrder";
        let answer = self.post(
            step,
            &new_order,
            Some(&format!(
                r#"{{"identifiers":[{{"type":"dns","value":{}}}]}}"#,
                json_string(domain)
            )),
        )?;
        let order_url = answer
            .location
            .clone()
            .ok_or_else(|| malformed(step, "no Location header"))?;
        let order = answer.json(step)?;
        let authorizations: Vec<String> = order["authorizations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let finalize = order["finalize"]
            .as_str()
            .ok_or_else(|| malformed(step, "no finalize URL"))?
            .to_string();
        log::info!("acme: ordered a certificate for {domain} ({order_url})");
        for authz in &authorizations {
            let proved = self.authorize(authz, domain, slot);
            slot.clear_challenge(domain);
            proved?;
        }

        let key = CertKey::generate()?;
        let csr = der::csr(&key, domain)?;
        let step = "finalize";
        let answer = self.post(
            step,
            &finalize,
            Some(&format!(r#"{{"csr":"{}"}}"#, b64(&csr))),
        )?;
        let mut order = answer.json(step)?;
        if order["status"] != "valid" {
            order = self.poll("order", &order_url, &["pending", "ready", "processing"])?;
        }
        if order["status"] != "valid" {
            return Err(Error::Acme {
                step: "order",
                kind: AcmeKind::Invalid(problem_text(&order["error"], &order["status"])),
            });
        }
        let step = "certificate";
        let url = order["certificate"]
            .as_str()
            .ok_or_else(|| malformed(step, "a valid order without a certificate URL"))?
            .to_string();
        let chain_pem = self.post(step, &url, None)?.body;
        let chain = rustls::pki_types::pem::PemObject::pem_slice_iter(chain_pem.as_bytes())
            .collect::<std::result::Result<Vec<CertificateDer<'static>>, _>>()
            .map_err(|e| malformed(step, format!("the chain is not PEM: {e}")))?;
        let leaf = chain
            .first()
            .ok_or_else(|| malformed(step, "the chain holds no certificate"))?;
        let info = crate::x509::cert_info(leaf.as_ref())
            .ok_or_else(|| malformed(step, "the certificate does not parse"))?;
        if !info
            .dns_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(domain))
        {
            return Err(malformed(
                step,
                format!("the certificate is not for {domain}"),
            ));
        }
        Ok(Issued {
            key_pkcs8: key.pkcs8().to_vec(),
            chain_pem,
            chain,
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }

    /// Answers the authorization at `url` with TLS-ALPN-01, if it still
    /// needs an answer (the CA may reuse a valid one, RFC 8555 §7.1.3).
    fn authorize(&mut self, url: &str, domain: &str, slot: &CertSlot) -> Result<()> {
        let step = "authorization";
        let authz = self.post(step, url, None)?.json(step)?;
        match authz["status"].as_str() {
            Some("valid") => return Ok(()),
            Some("pending") => {}
            other => {
                return Err(Error::Acme {
                    step,
                    kind: AcmeKind::Invalid(format!(
                        "the authorization is {}",
                        other.unwrap_or("?")
                    )),
                })
            }
        }
        let challenge = authz["challenges"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == "tls-alpn-01"))
            .ok_or_else(|| malformed(step, "the CA offers no tls-alpn-01 challenge"))?;
        let (Some(token), Some(challenge_url)) =
            (challenge["token"].as_str(), challenge["url"].as_str())
        else {
            return Err(malformed(step, "a challenge without token or url"));
        };
        let challenge_url = challenge_url.to_string();
        let key = CertKey::generate()?;
        let cert = der::challenge_cert(
            &key,
            domain,
            &self.key.key_authorization(token),
            self.clock.now(),
        )?;
        slot.set_challenge(
            domain,
            CertificateDer::from(cert),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8().to_vec())),
        )?;
        // RFC 8555 §7.5.1: an empty object says "ready, validate".
        self.post("challenge", &challenge_url, Some("{}"))?;
        let authz = self.poll(step, url, &["pending"])?;
        if authz["status"] == "valid" {
            return Ok(());
        }
        let error = authz["challenges"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["type"] == "tls-alpn-01"))
            .map(|c| c["error"].clone())
            .unwrap_or(Value::Null);
        Err(Error::Acme {
            step,
            kind: AcmeKind::Invalid(problem_text(&error, &authz["status"])),
        })
    }
}

/// A problem document (or a bare status) in words.
fn problem_text(problem: &Value, status: &Value) -> String {
    match (problem["type"].as_str(), problem["detail"].as_str()) {
        (Some(kind), Some(detail)) => {
            format!(
                "{}: {detail}",
                kind.strip_prefix(ERROR_PREFIX).unwrap_or(kind)
            )
        }
        (_, Some(detail)) => detail.to_string(),
        _ => format!("status {}", status.as_str().unwrap_or("?")),
    }
}
