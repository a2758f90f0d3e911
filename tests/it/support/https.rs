//! A small https client on the rustls the relay links, for the relay's own
//! TLS listener: it trusts only the test CA, names the server it wants
//! (SNI) and the TLS version, and can keep a connection open across
//! requests.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub type Version = &'static rustls::SupportedProtocolVersion;
// The benches include this file and use only some of it.
#[allow(unused_imports)]
pub use rustls::version::{TLS12, TLS13};

/// A client configuration trusting only the CA in `ca_pem`.
pub fn client(ca_pem: &Path, version: Version, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Every handshake a full one, as a first contact is; the benches
    // measure that.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

pub struct Https(BufReader<StreamOwned<ClientConnection, TcpStream>>);

impl Https {
    /// Connects and completes the handshake, asking for `name`.
    pub fn connect(config: &Arc<ClientConfig>, port: u16, name: &str) -> io::Result<Https> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::try_from(name.to_string()).map_err(io::Error::other)?;
        let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Https(BufReader::new(stream)))
    }

    /// The negotiated TLS version.
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.0.get_ref().conn.protocol_version()
    }

    /// The leaf certificate the server presented.
    pub fn leaf(&self) -> Vec<u8> {
        self.0.get_ref().conn.peer_certificates().unwrap()[0].to_vec()
    }

    /// One request on this connection, kept alive; returns (status, body).
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<(u16, String)> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        // In one write, as Withings sends it: two would wait out Nagle and
        // the server's delayed ACK (40 ms) on a kept-alive connection.
        let stream = self.0.get_mut();
        stream.write_all(&request)?;
        stream.flush()?;
        let mut status_line = String::new();
        self.0.read_line(&mut status_line)?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no HTTP answer: {status_line:?}")))?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.0.read_line(&mut line)?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        if method == "HEAD" {
            length = 0;
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The first flight of a TLS client: a ClientHello for `name`.
pub fn client_hello(config: &Arc<ClientConfig>, name: &str) -> Vec<u8> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut conn = ClientConnection::new(Arc::clone(config), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}
