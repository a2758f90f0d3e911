//! The https side of the inbound server: what certificate a handshake gets
//! (`cert_slot`), the validity of a certificate (`der`), and the TLS
//! listener and stream the server runs over (`listener`), all on the
//! rustls (ring) that ureq already links: no second TLS stack.

// Until `serve` starts the TLS listener (the next commits), nothing in the
// binary uses this yet.
#![allow(dead_code, unused_imports)]

mod cert_slot;
mod der;

pub use cert_slot::{CertSlot, ACME_TLS_ALPN};
