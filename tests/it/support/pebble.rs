//! A real ACME server for the certificate tests: Debian's `pebble`, with
//! `pebble-challtestsrv` as its DNS only (its challenge servers off) (every name resolves to
//! 127.0.0.1, so pebble's TLS-ALPN-01 validation reaches the relay's TLS
//! listener on `tls_port`). Pebble's own https uses a test CA made with
//! openssl, which the relay is given with `--acme-ca-file`.

use crate::support::certs::openssl;
use crate::support::relay::{free_port, wait_for};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

pub struct Pebble {
    pebble: Child,
    dns: Child,
    pub port: u16,
    pub management_port: u16,
    /// The PEM CA that signed pebble's listener certificate.
    pub listener_ca: PathBuf,
    /// What pebble logs: one line per order it adds, among others.
    pub log: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A CA and a listener certificate for 127.0.0.1 and localhost, in `dir`.
fn listener_certificate(dir: &Path) {
    let p256 = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let run = |line: &str| openssl(dir, &line.split_whitespace().collect::<Vec<_>>());
    run(&format!("req -x509 {p256} -keyout ca.key -out ca.pem -days 2 -subj /CN=pebble-listener-CA -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"));
    run(&format!(
        "req {p256} -keyout key.pem -out cert.csr -subj /CN=localhost"
    ));
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run("x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf");
}

/// What a test may change about pebble.
#[derive(Default)]
pub struct PebbleOptions {
    /// `certificateValidityPeriod`, seconds (pebble's default is 5 years).
    pub validity_secs: Option<u64>,
    /// `domainBlocklist`: names pebble refuses to issue for.
    pub blocklist: Vec<String>,
    /// `PEBBLE_WFE_NONCEREJECT`: the percentage of good nonces refused.
    pub nonce_reject: u32,
}

impl Pebble {
    /// Starts pebble in `dir`, validating TLS-ALPN-01 on 127.0.0.1:`tls_port`.
    pub fn start(dir: &Path, tls_port: u16, options: PebbleOptions) -> Pebble {
        let dir = dir.join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        listener_certificate(&dir);
        let dns_port = free_port();
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (make test-deps)");
        let port = free_port();
        let management_port = free_port();
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": free_port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": options.blocklist,
        }});
        if let Some(secs) = options.validity_secs {
            config["pebble"]["certificateValidityPeriod"] = secs.into();
        }
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let log = dir.join("pebble.log");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(dir.join("config.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", options.nonce_reject.to_string())
            // Authorizations reused at random would make order counts vary.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble (make test-deps)");
        let pebble = Pebble {
            pebble,
            dns,
            port,
            management_port,
            listener_ca: dir.join("ca.pem"),
            log,
        };
        wait_for("pebble to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        wait_for("pebble's management to listen", || {
            TcpStream::connect(("127.0.0.1", management_port)).ok()
        });
        pebble
    }

    /// How many orders pebble has taken, from its own log.
    pub fn orders(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Added order")
            .count()
    }

    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The relay's `--acme-*` flags for this pebble.
    pub fn relay_args(&self) -> Vec<String> {
        vec![
            "--acme-url".into(),
            self.directory_url(),
            "--acme-ca-file".into(),
            self.listener_ca.display().to_string(),
        ]
    }

    /// Pebble's issuing root (it makes a new one each start), as DER.
    pub fn issuing_root(&self) -> Vec<u8> {
        let ca = std::fs::read(&self.listener_ca).unwrap();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(&ca)
            .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
            .unwrap();
        let agent = ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&[
                        ureq::tls::Certificate::from_der(&der).to_owned(),
                    ]))
                    .build(),
            )
            .build()
            .new_agent();
        let pem = agent
            .get(&format!(
                "https://127.0.0.1:{}/roots/0",
                self.management_port
            ))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
            .unwrap()
    }
}

/// A TLS client trusting only `root`, as Withings would trust Let's Encrypt.
pub fn client_config(root: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(root.to_vec()))
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // A resumed session shows the certificate of the session it resumes:
    // every handshake here is a full one, to see what is served now.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One https request to `domain` at 127.0.0.1:`port`, verified with
/// `config`: Ok((status, body, the leaf's DER)) or the handshake's error.
pub fn https(
    config: &Arc<rustls::ClientConfig>,
    domain: &str,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String, Vec<u8>), String> {
    let name = rustls::pki_types::ServerName::try_from(domain.to_string()).unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // The relay closes without close_notify after Connection: close.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let leaf = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body, leaf))
}

/// A CA that rate-limits: a tiny https server (pebble's listener
/// certificate, so the relay trusts it with the same `--acme-ca-file`)
/// that serves a directory and nonces, and answers every other request
/// with HTTP 429, `urn:ietf:params:acme:error:rateLimited` and
/// `Retry-After`. It counts what it was asked. (Pebble has no rate
/// limits; a proxy in front of it would have to rewrite every URL it
/// signs for, so this stands in for the limited endpoint alone.)
pub struct RateLimitedCa {
    pub port: u16,
    pub listener_ca: PathBuf,
    /// Request lines, in order.
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl RateLimitedCa {
    /// Serves on a free loopback port with a listener certificate of its
    /// own, made in `dir`.
    pub fn start(dir: &Path, retry_after_secs: u64) -> RateLimitedCa {
        let dir = dir.join("limited-ca");
        std::fs::create_dir_all(&dir).unwrap();
        listener_certificate(&dir);
        let certs: Vec<_> = rustls::pki_types::pem::PemObject::pem_file_iter(dir.join("cert.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = rustls::pki_types::pem::PemObject::from_pem_file(dir.join("key.pem")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let _ = serve_one(&mut tls, port, retry_after_secs, &seen);
            }
        });
        RateLimitedCa {
            port,
            listener_ca: dir.join("ca.pem"),
            requests,
        }
    }

    pub fn relay_args(&self) -> Vec<String> {
        vec![
            "--acme-url".into(),
            format!("https://127.0.0.1:{}/dir", self.port),
            "--acme-ca-file".into(),
            self.listener_ca.display().to_string(),
        ]
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Answers the requests of one connection (ureq keeps it alive) until
/// the client closes it.
fn serve_one(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    port: u16,
    retry_after_secs: u64,
    seen: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    tls.sock
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tls.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = tls.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        buffer.drain(..head_end + length);
        let line = head.lines().next().unwrap_or("").to_string();
        seen.lock().unwrap().push(line.clone());
        let base = format!("https://127.0.0.1:{port}");
        let (status, extra, body) = if line.starts_with("GET /dir ") {
            let dir = format!(
                r#"{{"newNonce":"{base}/nonce","newAccount":"{base}/account","newOrder":"{base}/order"}}"#
            );
            ("200 OK", String::new(), dir)
        } else if line.starts_with("GET /nonce ") {
            (
                "200 OK",
                "Replay-Nonce: n0nce\r\n".to_string(),
                String::new(),
            )
        } else {
            (
                "429 Too Many Requests",
                format!("Retry-After: {retry_after_secs}\r\nReplay-Nonce: n0nce\r\nContent-Type: application/problem+json\r\n"),
                r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new registrations from this IP"}"#.to_string(),
            )
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(answer.as_bytes())?;
        tls.flush()?;
    }
}
