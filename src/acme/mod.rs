//! Certificates the relay obtains and renews itself, from Let's Encrypt or
//! any RFC 8555 CA, for its own TLS listener: `--tls-domain` without
//! `--tls-cert`. The domain is proved with TLS-ALPN-01 (RFC 8737) on that
//! same listener, so port 443 alone is enough.
//!
//! - `jws.rs`: the signed requests and the account key;
//! - `der.rs`: the certificate request and the challenge certificate;
//! - `client.rs`: one issuance, from directory to certificate chain;
//! - `schedule.rs`: when to renew, and how long to back off (pure);
//! - `files.rs`: what is kept in the state dir;
//! - `manager.rs`: the thread that ties them together.

pub mod client;
pub mod der;
pub mod files;
pub mod jws;
pub mod manager;
pub mod schedule;
