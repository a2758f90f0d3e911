//! The https side of the inbound server: what certificate a handshake gets
//! (`cert_slot`), the validity of a certificate (`der`), the TLS listener
//! and stream the server runs over (`listener`), and the `--tls-cert`
//! files, loaded and watched (`files`). All on the rustls (ring) that ureq
//! already links: no second TLS stack.

mod cert_slot;
mod files;
mod listener;

// The ACME client (branch acme) answers TLS-ALPN-01 with these.
pub use cert_slot::CertSlot;
#[allow(unused_imports)]
pub use cert_slot::ACME_TLS_ALPN;
pub use files::{expiry, install as install_files, watch};
pub use listener::{AnyListener, TlsListener};
