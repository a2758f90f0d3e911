//! One connection to the broker: CONNECT, then QoS 1 publishes that return
//! only once the broker acknowledged them, pings to keep the connection up,
//! and DISCONNECT.
//!
//! Any error leaves the connection unusable (a half-read packet cannot be
//! resumed); the caller connects again, and resends what had no PUBACK:
//! with a clean session the broker keeps nothing for us (§3.1.2.4), so
//! QoS 1 "at least once" is the caller's resend.

use super::packet::{self, Connect, Incoming, Publish, WillRef};
use super::MqttSettings;
use crate::error::{Error, MqttKind, Result};
use crate::tls_roots;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to wait for the TCP connection to a broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest packet accepted from the broker. It only sends us small
/// acknowledgements; the cap keeps a broken or hostile peer from making a
/// router allocate 256 MiB.
const MAX_INCOMING: u32 = 64 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A connection to the broker, logged in.
pub struct Client {
    stream: Stream,
    /// `host:port`, for messages.
    broker: String,
    tls: bool,
    /// How long the line may be quiet before `keep_alive` pings.
    probe: Duration,
    /// How long the broker has to answer or to take our bytes.
    answer_timeout: Duration,
    /// When we last sent a packet: the keepalive and the probe count from
    /// there
    /// (§3.1.2.10).
    last_sent: Instant,
    /// The last packet id used; ids cycle 1..=65535, never 0 ([MQTT-2.3.1-1]).
    last_id: u16,
    /// Set by any error; every later call fails fast.
    broken: bool,
}

impl Client {
    /// Connects, sets up TLS if asked, logs in with a clean session and
    /// waits for the broker's CONNACK. A refused login is
    /// [`MqttKind::Refused`] with the CONNACK return code.
    pub fn connect(settings: &MqttSettings) -> Result<Client> {
        let broker = if settings.host.contains(':') {
            format!("[{}]:{}", settings.host, settings.port)
        } else {
            format!("{}:{}", settings.host, settings.port)
        };
        let tcp = open_tcp(&settings.host, settings.port, &broker)?;
        let stream = if settings.tls {
            Stream::Tls(Box::new(start_tls(settings, &broker, tcp)?))
        } else {
            Stream::Plain(tcp)
        };
        // §3.1.2.10: a two-byte count of seconds; zero means off.
        let keepalive_secs = if settings.keepalive.is_zero() {
            0
        } else {
            u16::try_from(settings.keepalive.as_secs().max(1)).unwrap_or(u16::MAX)
        };
        let mut client = Client {
            stream,
            broker,
            tls: settings.tls,
            probe: settings.probe_interval(),
            answer_timeout: settings.answer_timeout,
            last_sent: Instant::now(),
            last_id: 0,
            broken: false,
        };
        let password = settings
            .password
            .as_ref()
            .filter(|_| settings.username.is_some());
        let connect = Connect {
            client_id: &settings.client_id,
            // Nothing to resume: the caller resends what had no PUBACK.
            clean_session: true,
            keepalive: keepalive_secs,
            username: settings.username.as_deref(),
            password: password.map(|p| p.expose().as_bytes()),
            will: settings.will.as_ref().map(|w| WillRef {
                topic: &w.topic,
                payload: &w.payload,
                retain: w.retain,
            }),
        };
        // Every field was checked when the options were read; what is left
        // (a client id over 65,535 bytes) is the configuration's to fix.
        let bytes = packet::encode_connect(&connect).map_err(|e| {
            Error::Config(format!(
                "mqtt: cannot log in to {}: {e}; check --mqtt and --mqtt-client-id",
                client.broker
            ))
        })?;
        client.send(&bytes, "CONNECT")?;
        let deadline = Instant::now() + client.answer_timeout;
        // [MQTT-3.2.0-1]: the first packet from the server is CONNACK.
        match client.read_packet(deadline, "CONNACK")? {
            Incoming::Connack {
                return_code: packet::ACCEPTED,
                ..
            } => {
                log::debug!("mqtt: connected to {}", client.broker);
                Ok(client)
            }
            Incoming::Connack { return_code, .. } => Err(Error::mqtt(
                &client.broker,
                MqttKind::Refused {
                    code: return_code,
                    client_id: settings.client_id.clone(),
                },
            )),
            other => Err(client.protocol_error(&format!("{} instead of CONNACK", other.name()))),
        }
    }

    /// Publishes at QoS 1 and returns Ok only once the broker's PUBACK for
    /// it arrived (§4.3.2): then, and only then, the broker owns the
    /// message. No PUBACK within the answer timeout (10 s by default), or a
    /// lost connection, is an Err and the message counts as not delivered.
    pub fn publish(&mut self, topic: &str, payload: &[u8], retain: bool) -> Result<()> {
        self.usable()?;
        valid_topic(topic)?;
        let id = self.next_id();
        let bytes = packet::encode_publish(&Publish {
            retain,
            topic,
            packet_id: id,
            payload,
        })
        // The topic was checked (`valid_topic`); what is left is a payload
        // over MQTT's 256 MiB, which no measurement group comes near.
        .map_err(|e| Error::Config(format!("mqtt: cannot publish to {topic}: {e}")))?;
        self.send(&bytes, "PUBLISH")?;
        self.wait_for(
            "PUBACK",
            |p| matches!(p, Incoming::Puback { packet_id } if *packet_id == id),
        )
    }

    /// Checks that the broker is still there; call it every
    /// [`MqttSettings::probe_interval`] while nothing is published (see
    /// [`super::PROBE_EVERY`] for why so often). A closed connection is
    /// seen at once, without waiting. Once the line has been quiet that
    /// long, or the broker sent something unasked, sends PINGREQ and waits
    /// for PINGRESP; a broker that hangs is an error after the answer
    /// timeout. The pings also keep the connection open: the broker drops
    /// a client silent for 1.5 times the keepalive (§3.1.2.10), and then
    /// publishes its Will.
    pub fn keep_alive(&mut self) -> Result<()> {
        self.usable()?;
        let unasked = self.peek()?;
        if !unasked && self.last_sent.elapsed() < self.probe {
            return Ok(());
        }
        self.send(&packet::PINGREQ, "PINGREQ")?;
        self.wait_for("PINGRESP", |p| matches!(p, Incoming::Pingresp))
    }

    /// Without waiting: has the broker sent something (true) or nothing
    /// (false), or closed the connection (an error)?
    fn peek(&mut self) -> Result<bool> {
        let tcp = self.stream.tcp();
        let peeked = tcp
            .set_nonblocking(true)
            .and_then(|()| tcp.peek(&mut [0u8; 1]));
        let restored = tcp.set_nonblocking(false);
        match (peeked, restored) {
            (Ok(0), _) => Err(self.io_error(io::ErrorKind::UnexpectedEof.into(), "idle")),
            (_, Err(e)) => Err(self.io_error(e, "idle")),
            (Ok(_), Ok(())) => Ok(true),
            (Err(e), Ok(())) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            (Err(e), Ok(())) => Err(self.io_error(e, "idle")),
        }
    }

    /// Says goodbye with DISCONNECT, so the broker discards the Will
    /// ([MQTT-3.1.2-10]); then closes. Just dropping a `Client` closes the
    /// connection without it, and the broker publishes the Will.
    pub fn disconnect(mut self) {
        if self.broken {
            return;
        }
        // Best effort: if the broker is gone, there is no one to tell.
        let _ = self.send(&packet::DISCONNECT, "DISCONNECT");
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        // [MQTT-3.14.4-1]: after DISCONNECT the client closes the connection.
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Both);
    }

    fn usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::mqtt(
                &self.broker,
                MqttKind::Unreachable("the connection failed earlier; connect again".into()),
            ));
        }
        Ok(())
    }

    fn next_id(&mut self) -> u16 {
        self.last_id = next_packet_id(self.last_id);
        self.last_id
    }

    fn send(&mut self, bytes: &[u8], what: &str) -> Result<()> {
        let result = self
            .stream
            .tcp()
            .set_write_timeout(Some(self.answer_timeout))
            .and_then(|()| self.stream.write_all(bytes))
            .and_then(|()| self.stream.flush());
        match result {
            Ok(()) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Err(e) => Err(self.io_error(e, &format!("sending {what}"))),
        }
    }

    /// Reads packets until `wanted` matches one. PINGRESPs and PUBACKs
    /// for earlier, abandoned publishes may arrive first and are skipped.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&Incoming) -> bool) -> Result<()> {
        let deadline = Instant::now() + self.answer_timeout;
        loop {
            match self.read_packet(deadline, what)? {
                p if wanted(&p) => return Ok(()),
                p @ (Incoming::Pingresp | Incoming::Puback { .. }) => {
                    log::debug!("mqtt: skipping a late {p:?} from {}", self.broker)
                }
                other => {
                    let text = format!("{} while waiting for {what}", other.name());
                    return Err(self.protocol_error(&text));
                }
            }
        }
    }

    /// Reads one packet, waiting until `deadline` at most.
    fn read_packet(&mut self, deadline: Instant, what: &str) -> Result<Incoming> {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = if left.is_zero() {
            Err(io::ErrorKind::TimedOut.into())
        } else {
            self.stream
                .tcp()
                .set_read_timeout(Some(left))
                .and_then(|()| packet::read_incoming(&mut self.stream, MAX_INCOMING))
        };
        match result {
            Ok(Ok(packet)) => Ok(packet),
            Ok(Err(e)) => Err(self.protocol_error(&e.to_string())),
            Err(e) => Err(self.io_error(e, &format!("waiting for {what}"))),
        }
    }

    fn protocol_error(&mut self, text: &str) -> Error {
        self.broken = true;
        Error::mqtt(&self.broker, MqttKind::Protocol(text.to_string()))
    }

    fn io_error(&mut self, e: io::Error, doing: &str) -> Error {
        self.broken = true;
        if let Some(tls) = tls_error(&e) {
            return Error::mqtt(&self.broker, tls_kind(tls, None));
        }
        let kind = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => MqttKind::Timeout {
                doing: doing.to_string(),
                after: self.answer_timeout,
            },
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
                if doing == "waiting for CONNACK" && !self.tls =>
            {
                MqttKind::Unreachable("closed the connection without answering CONNECT: if that port expects TLS, use mqtts://".into())
            }
            io::ErrorKind::UnexpectedEof => {
                MqttKind::Unreachable(format!("closed the connection while {doing}"))
            }
            _ => MqttKind::Unreachable(format!("the connection failed while {doing}: {e}")),
        };
        Error::mqtt(&self.broker, kind)
    }
}

/// A bad topic comes from the configuration (`--mqtt-prefix`), so it is a
/// `Config` error: retrying cannot fix it.
fn valid_topic(topic: &str) -> Result<()> {
    packet::check_topic(topic).map_err(|e| Error::Config(format!("mqtt: {e}; check --mqtt-prefix")))
}

/// The id after `last`: 1..=65535 and round again, skipping 0, which
/// [MQTT-2.3.1-1] reserves.
fn next_packet_id(last: u16) -> u16 {
    last.checked_add(1).unwrap_or(1)
}

/// A TCP connection to the first address of `host` that answers.
fn open_tcp(host: &str, port: u16, broker: &str) -> Result<TcpStream> {
    let unreachable = |why: String| Error::mqtt(broker, MqttKind::Unreachable(why));
    let addrs = (host, port).to_socket_addrs().map_err(|e| {
        unreachable(format!(
            "cannot resolve the broker's host {host}: {e}; check the host in --mqtt"
        ))
    })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(tcp) => {
                // Our packets are small and each waits for an answer:
                // don't let Nagle hold them back.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(unreachable(match last {
        Some(e) => format!(
            "cannot connect: {e}; check that the broker runs and the host and port in --mqtt"
        ),
        None => format!("the broker's host {host} has no address; check the host in --mqtt"),
    }))
}

/// The TLS handshake, done here so a certificate problem is reported as
/// such and not as a failed CONNECT.
fn start_tls(
    settings: &MqttSettings,
    broker: &str,
    mut tcp: TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    // Read at every connect, so a renewed CA file is picked up.
    let extra = match &settings.ca_file {
        Some(path) => tls_roots::read_pem("--mqtt-ca", path)?,
        None => Vec::new(),
    };
    let roots = tls_roots::with_bundled(extra);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let setup_failed = |e: rustls::Error| Error::mqtt(broker, MqttKind::Tls(format!("setup: {e}")));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(setup_failed)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(settings.host.clone()).map_err(|_| {
        Error::Config(format!(
            "--mqtt: {} is not a valid host name for TLS",
            settings.host
        ))
    })?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(setup_failed)?;
    tcp.set_read_timeout(Some(settings.answer_timeout))
        .and_then(|()| tcp.set_write_timeout(Some(settings.answer_timeout)))
        .map_err(|e| Error::mqtt(broker, MqttKind::Unreachable(e.to_string())))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            let kind = match tls_error(&e) {
                Some(tls) => tls_kind(tls, settings.ca_file.as_deref()),
                None if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
                {
                    MqttKind::Timeout {
                        doing: "the TLS handshake".into(),
                        after: settings.answer_timeout,
                    }
                }
                None => MqttKind::Tls(format!(
                    "the handshake failed ({e}): is that port a TLS port? For a plain one use mqtt://"
                )),
            };
            return Err(Error::mqtt(broker, kind));
        }
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// What kind of TLS failure `e` is, with what to do about an untrusted
/// certificate; `ca` is the --mqtt-ca file, if any.
fn tls_kind(e: &rustls::Error, ca: Option<&std::path::Path>) -> MqttKind {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(cert) = e else {
        return MqttKind::Tls(e.to_string());
    };
    let fix = match cert {
        C::UnknownIssuer | C::BadSignature => match ca {
            Some(path) => format!(
                "it is not signed by the CA in --mqtt-ca {} nor by a public CA; check that file holds the CA that signed the broker's certificate",
                path.display()
            ),
            None => "it is not signed by a public CA; if the broker uses a private CA, pass that CA's certificate with --mqtt-ca".to_string(),
        },
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not made out for the host in --mqtt; use the host name the certificate names".to_string()
        }
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            "it has expired or is not valid yet; renew it, or check this machine's clock".to_string()
        }
        _ => "check the broker's certificate".to_string(),
    };
    MqttKind::Certificate {
        problem: e.to_string(),
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_cycle_and_skip_zero() {
        assert_eq!(next_packet_id(0), 1);
        assert_eq!(next_packet_id(1), 2);
        assert_eq!(next_packet_id(65_534), 65_535);
        assert_eq!(next_packet_id(65_535), 1);
    }

    #[test]
    fn certificate_advice_depends_on_the_problem() {
        use rustls::CertificateError as C;
        let fix = |e: C, ca: Option<&std::path::Path>| match tls_kind(
            &rustls::Error::InvalidCertificate(e),
            ca,
        ) {
            MqttKind::Certificate { fix, .. } => fix,
            other => panic!("{other:?}"),
        };
        assert!(fix(C::UnknownIssuer, None).contains("pass that CA's certificate with --mqtt-ca"));
        let ca = std::path::Path::new("/etc/my-ca.pem");
        assert!(fix(C::UnknownIssuer, Some(ca)).contains("/etc/my-ca.pem"));
        assert!(fix(C::Expired, None).contains("clock"));
        assert!(fix(C::NotValidForName, None).contains("host name"));
        assert!(matches!(
            tls_kind(&rustls::Error::DecryptError, None),
            MqttKind::Tls(_)
        ));
    }
}
