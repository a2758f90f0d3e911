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

/// Either listener as one type, so that `serve` runs one instance of the
/// generic server for both: two cost the mipsel binary about 30 KB more
/// (measured with `llvm-nm --size-sort` on an unstripped build).
pub enum AnyListener {
    Plain(TcpListener),
    Tls(TlsListener),
}

/// A connection of an [`AnyListener`]; the TLS one boxed, as it is some
/// KiB and most connections on a LAN are plain.
pub enum AnyStream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Listen for AnyListener {
    type Stream = AnyStream;

    fn accept(&self) -> io::Result<(AnyStream, IpAddr)> {
        Ok(match self {
            AnyListener::Plain(l) => {
                let (s, peer) = Listen::accept(l)?;
                (AnyStream::Plain(s), peer)
            }
            AnyListener::Tls(l) => {
                let (s, peer) = l.accept()?;
                (AnyStream::Tls(Box::new(s)), peer)
            }
        })
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            AnyListener::Plain(l) => l.set_nonblocking(on),
            AnyListener::Tls(l) => l.set_nonblocking(on),
        }
    }
}

impl Read for AnyStream {
    fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
        match self {
            AnyStream::Plain(s) => s.read(into),
            AnyStream::Tls(s) => s.read(into),
        }
    }
}

impl Write for AnyStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            AnyStream::Plain(s) => s.write(bytes),
            AnyStream::Tls(s) => s.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            AnyStream::Plain(s) => s.flush(),
            AnyStream::Tls(s) => s.flush(),
        }
    }
}

impl Transport for AnyStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            AnyStream::Plain(s) => s.set_nonblocking(on),
            AnyStream::Tls(s) => s.set_nonblocking(on),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cert_slot::tests::{pair, CERT, KEY};
    use super::*;
    use crate::inbound::server::{serve_with, Limits};
    use crate::inbound::{Handler, Reply, Request, Response};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use std::time::Duration;

    struct Peer;

    impl Handler for Peer {
        fn handle(&self, request: Request) -> Reply {
            let peer = request.peer.map(|ip| ip.to_string()).unwrap_or_default();
            Reply::Now(Response::text(200, peer))
        }
    }

    fn serving(slot: &CertSlot) -> u16 {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = TlsListener::new(tcp, slot.clone()).unwrap();
        std::thread::spawn(move || serve_with(listener, Arc::new(Peer), Limits::default()));
        port
    }

    fn client(alpn: &[u8]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(pair(CERT, KEY).0.remove(0)).unwrap();
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }

    fn connect(port: u16, alpn: &[u8]) -> StreamOwned<ClientConnection, TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let name = ServerName::try_from("relay.test").unwrap();
        let conn = ClientConnection::new(client(alpn), name).unwrap();
        StreamOwned::new(conn, tcp)
    }

    #[test]
    fn requests_over_tls_carry_the_peer_address() {
        let slot = CertSlot::new(Some("relay.test".into()));
        let (chain, key) = pair(CERT, KEY);
        slot.install(chain, key).unwrap();
        let mut tls = connect(serving(&slot), b"http/1.1");
        tls.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = tls.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n127.0.0.1"), "{answer}");
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    }

    /// RFC 8737 §3: the challenge certificate, to a hello offering only
    /// acme-tls/1 for that name, even before any certificate is
    /// installed; then the server closes, with no HTTP.
    #[test]
    fn an_acme_tls_alpn_hello_gets_the_challenge_and_then_the_end() {
        let slot = CertSlot::new(Some("relay.test".into()));
        let port = serving(&slot);
        let (chain, key) = pair(CERT, KEY);
        slot.set_challenge("relay.test", chain[0].clone(), key)
            .unwrap();
        assert!(!slot.has_certificate());
        let mut tls = connect(port, ACME_TLS_ALPN);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        assert_eq!(tls.conn.alpn_protocol(), Some(ACME_TLS_ALPN));
        assert_eq!(tls.conn.peer_certificates().unwrap()[0], chain[0]);
        let _ = tls.write_all(b"GET / HTTP/1.1\r\n\r\n");
        let mut rest = Vec::new();
        // A clean close_notify, or a reset: either way, no HTTP answer.
        let end = tls.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
        let timed_out = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            )
        };
        assert!(!end.as_ref().is_err_and(timed_out), "{end:?}");

        // An ordinary hello meanwhile gets nothing: no certificate yet.
        let mut plain = connect(port, b"http/1.1");
        assert!(plain.conn.complete_io(&mut plain.sock).is_err());
    }
}
