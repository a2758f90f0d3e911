//! A small synchronous MQTT 3.1.1 publisher: the relay only ever connects,
//! publishes, pings and disconnects, so this is all it needs, over a plain
//! `TcpStream` or the rustls that ureq already links.
//!
//! `url.rs` reads `--mqtt`, `packet.rs` turns the client's packets into
//! bytes and reads the broker's answers, `client.rs` holds one connection
//! to the broker.

mod client;
pub mod packet;
mod url;

pub use client::Client;
pub use packet::check_topic;
pub use url::{parse_url, DEFAULT_PORT, DEFAULT_TLS_PORT};

use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

/// What `parse_url` fills in for the client id.
pub const DEFAULT_CLIENT_ID: &str = "withings-relay";

/// What `parse_url` fills in for the keepalive: mosquitto's own default.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);

/// How often an idle connection to the broker is looked at, and how long
/// the line may stay quiet before a ping asks the broker whether it is
/// still there. The keepalive (60 s, mosquitto's default) is how the
/// broker notices us; we want to notice a dead broker within about 15 s,
/// so Home Assistant's values are back soon after a broker restart.
/// A broker that was killed or restarted closes the socket (FIN or RST):
/// the look every 5 s sees that at once, without a packet. A broker that
/// hangs, or a link that drops everything, sends nothing at all: only an
/// unanswered ping shows it, so one goes out once the line has been quiet
/// this long, and the answer timeout (`--mqtt-timeout`, 10 s) ends the
/// connection: 10 to 15 s after the hang. A shorter keepalive alone
/// would not do: it makes the broker drop a quiet client, not us notice a
/// quiet broker. Two-byte packets every 5 s cost nothing on a LAN.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// What `parse_url` fills in for the answer timeout. A broker on the home
/// network answers in milliseconds.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to connect to one broker.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS through rustls, checked against the bundled Mozilla
    /// roots plus `ca_file`.
    pub tls: bool,
    pub username: Option<String>,
    /// Sent only if `username` is set too ([MQTT-3.1.2-22]).
    pub password: Option<Secret>,
    /// A PEM file of CA certificates to trust in addition to the bundled
    /// roots, for a broker with a private CA (`--mqtt-ca`). Defaults to none.
    pub ca_file: Option<PathBuf>,
    /// Brokers must accept 1 to 23 letters and digits ([MQTT-3.1.3-5]);
    /// mosquitto accepts longer ones. Keep it stable: a second client with
    /// the same id disconnects the first. Defaults to `withings-relay`.
    pub client_id: String,
    /// How long the connection may be idle before the broker drops it (it
    /// waits 1.5 times this, §3.1.2.10). Whole seconds, at most 65535;
    /// zero turns it off. Defaults to 60 s.
    pub keepalive: Duration,
    /// How long the broker has to answer (CONNACK, PUBACK, PINGRESP), to
    /// take our bytes or to finish the TLS handshake; past it the
    /// connection is dropped and what had no PUBACK counts as not
    /// delivered (`--mqtt-timeout`). Defaults to 10 s.
    pub answer_timeout: Duration,
    /// Published by the broker if the connection ends without DISCONNECT.
    /// Defaults to none.
    pub will: Option<Will>,
}

impl MqttSettings {
    /// How often an idle connection is looked at and, when quiet, pinged:
    /// [`PROBE_EVERY`], or more often if half the keepalive is shorter
    /// (the broker drops a client silent for 1.5 times it, §3.1.2.10).
    pub fn probe_interval(&self) -> Duration {
        match self.keepalive / 2 {
            half if half.is_zero() => PROBE_EVERY,
            half => half.min(PROBE_EVERY),
        }
    }
}

/// A Last Will (§3.1.2.5), sent at QoS 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}
