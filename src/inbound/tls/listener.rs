//! The TLS listener: a TcpListener whose connections are rustls server
//! connections over the same non-blocking sockets, so the one collecting
//! thread of `server` drives handshakes as it reads requests, and every
//! limit of the plain listener (connection cap, request deadline, head and
//! body limits) holds as it is. The handshake is part of the first
//! request: it must be done, and that request in, within the request
//! deadline counted from accept, so a handshake that never completes
//! costs a slot for 5 s and no thread.

use super::cert_slot::{CertSlot, ACME_TLS_ALPN};
use crate::error::{Error, Result};
use crate::inbound::conn::Transport;
use crate::inbound::server::Listen;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;

/// The rustls configuration of the listener: TLS 1.2 and 1.3 with ring's
/// defaults, the certificate from `slot`, HTTP/1.1 and (for TLS-ALPN-01)
/// acme-tls/1 as ALPN protocols. No client certificates.
pub fn server_config(slot: CertSlot) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // With the tls12 feature, the safe defaults are exactly 1.3 and 1.2.
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::Internal("ring offers no TLS version"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(slot));
    // The server picks the first of these the client offers: an ACME
    // validator offers only acme-tls/1 (RFC 8737 §3), browsers and
    // Withings http/1.1 or nothing. A client offering ALPN without
    // http/1.1 (h2 alone) is refused, which is right: we speak no h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

pub struct TlsListener {
    tcp: TcpListener,
    config: Arc<ServerConfig>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, slot: CertSlot) -> Result<TlsListener> {
        Ok(TlsListener {
            tcp,
            config: server_config(slot)?,
        })
    }
}

impl Listen for TlsListener {
    type Stream = TlsStream;

    fn accept(&self) -> io::Result<(TlsStream, IpAddr)> {
        let (tcp, peer) = Listen::accept(&self.tcp)?;
        // Only fails for a config that cannot serve at all (no versions).
        let conn = ServerConnection::new(Arc::clone(&self.config))
            .map_err(|e| io::Error::other(format!("cannot start a TLS connection: {e}")))?;
        Ok((TlsStream(StreamOwned::new(conn, tcp)), peer))
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.tcp.set_nonblocking(on)
    }
}

/// One TLS connection. rustls' `StreamOwned` drives the handshake from
/// reads and writes and passes the socket's WouldBlock through; each
/// plaintext write is buffered whole in rustls and its records sent as
/// the socket takes them, so a short refusal written once is sent whole
/// into an empty send buffer, as on plain TCP.
pub struct TlsStream(StreamOwned<ServerConnection, TcpStream>);

impl Read for TlsStream {
    fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(into);
        // RFC 8737 §3: a connection that negotiated acme-tls/1 has served
        // its purpose with the handshake; no HTTP on it. Closed as a
        // clean end of stream once the validator's Finished is in.
        if !self.0.conn.is_handshaking() && self.0.conn.alpn_protocol() == Some(ACME_TLS_ALPN) {
            self.0.conn.send_close_notify();
            let _ = self.0.conn.write_tls(&mut self.0.sock);
            return Ok(0);
        }
        n
    }
}

impl Write for TlsStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Transport for TlsStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.0.sock.set_nonblocking(on)
    }
}
