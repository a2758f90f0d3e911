//! MQTT 3.1.1 control packets, client direction only: the relay sends
//! CONNECT, PUBLISH (QoS 1), PINGREQ and DISCONNECT, and reads CONNACK,
//! PUBACK and PINGRESP. Pure functions, no I/O beyond a `Read` handed in,
//! so every rule is unit-tested here. Section numbers (§) are those of the
//! OASIS MQTT 3.1.1 standard.
//!
//! Lengths are kept in `u32` (the protocol's own limit is 268,435,455) and
//! every sum is checked, so nothing here assumes a 64-bit `usize`: the relay
//! also runs on 32-bit MIPS routers.

use std::fmt;
use std::io::{self, Read};

/// The largest Remaining Length four varint bytes can carry (§2.2.3).
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;

/// The largest UTF-8 string or binary field: its length is a u16 (§1.5.3).
const MAX_FIELD: usize = 65_535;

/// The Will of a CONNECT (§3.1.2.5): what the broker publishes for us, at
/// QoS 1, when the connection ends without a DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillRef<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub retain: bool,
}

/// CONNECT (§3.1). Protocol name "MQTT", level 4 are implied.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    pub client_id: &'a str,
    pub clean_session: bool,
    /// Seconds; 0 turns the keepalive off (§3.1.2.10).
    pub keepalive: u16,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    pub will: Option<WillRef<'a>>,
}

// By hand, so a password never reaches a log through `{:?}`.
impl fmt::Debug for Connect<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("client_id", &self.client_id)
            .field("clean_session", &self.clean_session)
            .field("keepalive", &self.keepalive)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("will", &self.will)
            .finish()
    }
}

/// PUBLISH (§3.3) at QoS 1, the only one the relay sends: a measurement
/// counts as delivered once its PUBACK is in. Never DUP: with a clean
/// session, a resend after a reconnect is a new message (§4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish<'a> {
    pub retain: bool,
    pub topic: &'a str,
    /// Not 0 ([MQTT-2.3.1-1]).
    pub packet_id: u16,
    pub payload: &'a [u8],
}

/// CONNACK return codes (§3.2.2.3).
pub const ACCEPTED: u8 = 0;

/// PINGREQ (§3.12) as it goes on the wire.
pub const PINGREQ: [u8; 2] = [PINGREQ_TYPE << 4, 0];
/// DISCONNECT (§3.14) as it goes on the wire.
pub const DISCONNECT: [u8; 2] = [DISCONNECT_TYPE << 4, 0];

/// What the broker sends a publish-only client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    Connack {
        session_present: bool,
        return_code: u8,
    },
    Puback {
        packet_id: u16,
    },
    Pingresp,
}

impl Incoming {
    pub fn name(&self) -> &'static str {
        match self {
            Incoming::Connack { .. } => "CONNACK",
            Incoming::Puback { .. } => "PUBACK",
            Incoming::Pingresp => "PINGRESP",
        }
    }
}

/// Why bytes could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// What we were asked to send does not fit the protocol (a topic with a
    /// wildcard, a field over 65,535 bytes, a payload over 256 MiB).
    Unencodable(String),
    /// What the peer sent breaks the protocol; the connection must be closed
    /// ([MQTT-4.8.0-1]).
    Malformed(String),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Unencodable(t) => write!(f, "cannot encode: {t}"),
            PacketError::Malformed(t) => write!(f, "malformed packet: {t}"),
        }
    }
}

fn malformed(what: impl Into<String>) -> PacketError {
    PacketError::Malformed(what.into())
}

fn unencodable(what: impl Into<String>) -> PacketError {
    PacketError::Unencodable(what.into())
}

// Control packet types, the high nibble of the first byte (§2.2.1).
const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PINGREQ_TYPE: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT_TYPE: u8 = 14;

/// The names of the packet types (§2.2.1, Table 2.1), for messages about
/// one the client does not expect.
const TYPE_NAMES: [&str; 16] = [
    "reserved type 0",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "reserved type 15",
];

/// QoS 1 in a PUBLISH's fixed header and in the CONNECT flags (§3.3.1.2,
/// §3.1.2.6).
const QOS1: u8 = 1;

/// Whether a PUBLISH topic name is one the relay may send: not empty
/// ([MQTT-4.7.3-1]), no wildcard ([MQTT-3.3.2-2]), no U+0000
/// ([MQTT-1.5.3-2]), at most 65,535 bytes (§1.5.3). Err says which rule.
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("a topic cannot be empty".into());
    }
    if topic.contains(['+', '#']) {
        return Err(format!(
            "topic {topic:?} contains a wildcard (+ or #), which only subscriptions may use"
        ));
    }
    if topic.contains('\0') {
        return Err(format!("topic {topic:?} contains a NUL character"));
    }
    if topic.len() > MAX_FIELD {
        return Err(format!(
            "a topic of {} bytes is longer than MQTT's 65535",
            topic.len()
        ));
    }
    Ok(())
}

/// Appends the Remaining Length varint (§2.2.3): 7 bits a byte, least
/// significant group first, the high bit saying "more follows".
fn encode_remaining_length(len: u32, out: &mut Vec<u8>) -> Result<(), PacketError> {
    if len > MAX_REMAINING_LENGTH {
        return Err(unencodable(format!(
            "a packet body of {len} bytes is over MQTT's limit of {MAX_REMAINING_LENGTH}"
        )));
    }
    let mut rest = len;
    loop {
        let byte = (rest % 128) as u8;
        rest /= 128;
        if rest == 0 {
            out.push(byte);
            return Ok(());
        }
        out.push(byte | 0x80);
    }
}

/// Reads a Remaining Length from the start of `buf`: Ok(None) when `buf`
/// ends before the varint does, else the length and how many bytes it took.
fn decode_remaining_length(buf: &[u8]) -> Result<Option<(u32, usize)>, PacketError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        // [MQTT-2.2.3]: at most four bytes; a fifth would overflow the
        // 28 bits the format allows.
        if i == 4 {
            return Err(malformed("remaining length longer than 4 bytes"));
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        return Err(malformed("remaining length longer than 4 bytes"));
    }
    Ok(None)
}

/// Appends a u16 length and the bytes (§1.5.3); for strings and the
/// binary password alike.
fn put_field(bytes: &[u8], what: &str, out: &mut Vec<u8>) -> Result<(), PacketError> {
    let len = u16::try_from(bytes.len()).map_err(|_| {
        unencodable(format!(
            "{what} is {} bytes, over MQTT's 65535",
            bytes.len()
        ))
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_string(s: &str, what: &str, out: &mut Vec<u8>) -> Result<(), PacketError> {
    // [MQTT-1.5.3-2]: a string must not contain U+0000.
    if s.contains('\0') {
        return Err(unencodable(format!("{what} contains a NUL character")));
    }
    put_field(s.as_bytes(), what, out)
}

/// CONNECT as it goes on the wire.
pub fn encode_connect(c: &Connect) -> Result<Vec<u8>, PacketError> {
    // [MQTT-3.1.2-22]: a password without a user name is not allowed.
    if c.password.is_some() && c.username.is_none() {
        return Err(unencodable("a password needs a user name in MQTT 3.1.1"));
    }
    let mut flags = 0u8;
    if c.username.is_some() {
        flags |= 0x80;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if let Some(w) = &c.will {
        check_topic(w.topic).map_err(|e| unencodable(format!("will: {e}")))?;
        flags |= 0x04 | (QOS1 << 3);
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.clean_session {
        flags |= 0x02;
    }
    // Variable header (§3.1.2): protocol name, level 4, flags, keepalive.
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags];
    body.extend_from_slice(&c.keepalive.to_be_bytes());
    // Payload in the order of §3.1.3.
    put_string(c.client_id, "the client id", &mut body)?;
    if let Some(w) = &c.will {
        put_string(w.topic, "the will topic", &mut body)?;
        put_field(w.payload, "the will message", &mut body)?;
    }
    if let Some(u) = c.username {
        put_string(u, "the user name", &mut body)?;
    }
    if let Some(p) = c.password {
        put_field(p, "the password", &mut body)?;
    }
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(body.len().saturating_add(5));
    out.push(CONNECT << 4);
    encode_remaining_length(len, &mut out)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// PUBLISH at QoS 1 as it goes on the wire.
pub fn encode_publish(p: &Publish) -> Result<Vec<u8>, PacketError> {
    check_topic(p.topic).map_err(unencodable)?;
    if p.packet_id == 0 {
        return Err(unencodable(
            "a QoS 1 PUBLISH needs a non-zero packet id [MQTT-2.3.1-1]",
        ));
    }
    // Checked: on a 32-bit target a huge payload plus the header could wrap.
    let body_len = (2 + p.topic.len() + 2)
        .checked_add(p.payload.len())
        .filter(|&n| n <= MAX_REMAINING_LENGTH as usize)
        .ok_or_else(|| {
            unencodable(format!(
                "a payload of {} bytes is over MQTT's limit of {MAX_REMAINING_LENGTH} bytes a packet",
                p.payload.len()
            ))
        })?;
    let first = (PUBLISH << 4) | (QOS1 << 1) | u8::from(p.retain);
    let mut out = Vec::with_capacity(body_len + 5);
    out.push(first);
    // body_len <= MAX_REMAINING_LENGTH, checked just above, so it fits a u32.
    encode_remaining_length(body_len as u32, &mut out)?;
    put_string(p.topic, "the topic", &mut out)?;
    out.extend_from_slice(&p.packet_id.to_be_bytes());
    out.extend_from_slice(p.payload);
    Ok(out)
}

/// Reads one packet from the broker, as the client does off its socket:
/// the first byte, the Remaining Length a byte at a time (1 to 4 bytes,
/// §2.2.3; what follows belongs to the body), then the body. The outer
/// error is the connection's (a timeout, a closed socket); the inner one a
/// packet that breaks the protocol or is over `max` bytes, which the
/// client then need not allocate.
pub fn read_incoming(r: &mut impl Read, max: u32) -> io::Result<Result<Incoming, PacketError>> {
    let mut header = [0u8; 5];
    r.read_exact(&mut header[..2])?;
    let mut have = 2;
    let len = loop {
        match decode_remaining_length(&header[1..have]) {
            Ok(Some((len, _))) => break len,
            Ok(None) => {
                r.read_exact(&mut header[have..have + 1])?;
                have += 1;
            }
            Err(e) => return Ok(Err(e)),
        }
    };
    if len > max {
        return Ok(Err(malformed(format!(
            "a packet of {len} bytes, far more than any acknowledgement"
        ))));
    }
    // len <= max, a u32, so the cast is lossless on 32-bit targets too.
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    Ok(decode_body(header[0], &body))
}

/// Decodes a packet whose first byte and body (after the Remaining Length)
/// are known.
fn decode_body(first: u8, body: &[u8]) -> Result<Incoming, PacketError> {
    let kind = first >> 4;
    let flags = first & 0x0f;
    let packet = match kind {
        CONNACK => match body {
            // §3.2.2.1: bits 7-1 of the acknowledge flags are reserved.
            [ack_flags, _] if ack_flags & 0xfe != 0 => {
                return Err(malformed("reserved CONNACK flags set"))
            }
            [ack_flags, return_code] => Incoming::Connack {
                session_present: ack_flags & 1 == 1,
                return_code: *return_code,
            },
            _ => return Err(malformed("a CONNACK is 2 bytes long")),
        },
        PUBACK => match body {
            [0, 0] => return Err(malformed("packet id 0 [MQTT-2.3.1-1]")),
            [hi, lo] => Incoming::Puback {
                packet_id: u16::from_be_bytes([*hi, *lo]),
            },
            _ => return Err(malformed("a PUBACK is 2 bytes long")),
        },
        PINGRESP if body.is_empty() => Incoming::Pingresp,
        PINGRESP => return Err(malformed("a PINGRESP has no body")),
        0 | 15 => return Err(malformed("reserved packet type")),
        // Valid MQTT, but not for a client that only publishes: it never
        // subscribes, so even a PUBLISH has no business here.
        _ => {
            return Err(malformed(format!(
                "a {}, which a publishing client never expects",
                TYPE_NAMES[usize::from(kind)]
            )))
        }
    };
    // [MQTT-2.2.2-1]: the flags of these three are 0 (§2.2.2, Table 2.2).
    if flags != 0 {
        return Err(malformed("reserved flags set in fixed header"));
    }
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> io::Result<Result<Incoming, PacketError>> {
        read_incoming(&mut &bytes[..], 64 * 1024)
    }

    fn incoming(bytes: &[u8]) -> Incoming {
        read(bytes).unwrap().unwrap()
    }

    fn refused(bytes: &[u8]) -> bool {
        matches!(read(bytes), Ok(Err(PacketError::Malformed(_))))
    }

    #[test]
    fn remaining_length_matches_the_spec_table() {
        // §2.2.3, Table 2.4: the edges of each byte count.
        let cases: [(u32, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xff, 0xff, 0xff, 0x7f]),
        ];
        for (n, bytes) in cases {
            let mut out = Vec::new();
            encode_remaining_length(n, &mut out).unwrap();
            assert_eq!(out, bytes, "{n}");
            assert_eq!(
                decode_remaining_length(bytes),
                Ok(Some((n, bytes.len()))),
                "{n}"
            );
            assert_eq!(decode_remaining_length(&bytes[..bytes.len() - 1]), Ok(None));
        }
    }

    #[test]
    fn remaining_length_over_the_limit_is_refused_both_ways() {
        assert!(encode_remaining_length(268_435_456, &mut Vec::new()).is_err());
        assert!(encode_remaining_length(u32::MAX, &mut Vec::new()).is_err());
        // A fifth continuation byte is malformed, even before it arrives.
        assert!(decode_remaining_length(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_remaining_length(&[0x80, 0x80, 0x80, 0x80, 0x01]).is_err());
        assert!(refused(&[0x40, 0xff, 0xff, 0xff, 0xff, 0x01]));
    }

    #[test]
    fn connect_with_everything_matches_the_spec_bytes() {
        let c = Connect {
            client_id: "relay",
            clean_session: true,
            keepalive: 60,
            username: Some("u"),
            password: Some(b"p@ss"),
            will: Some(WillRef {
                topic: "withings/status",
                payload: b"offline",
                retain: true,
            }),
        };
        let bytes = encode_connect(&c).unwrap();
        let mut want = vec![0x10, 52];
        // Protocol name, level 4 (§3.1.2.1, §3.1.2.2); flags: user,
        // password, will retain, will QoS 1, will, clean session (§3.1.2.3);
        // keepalive 60 (§3.1.2.10).
        want.extend([0, 4, b'M', b'Q', b'T', b'T', 4, 0xee, 0, 60]);
        // Payload in the order of §3.1.3, each a u16 length and the bytes.
        want.extend([0, 5]);
        want.extend(b"relay");
        want.extend([0, 15]);
        want.extend(b"withings/status");
        want.extend([0, 7]);
        want.extend(b"offline");
        want.extend([0, 1, b'u', 0, 4]);
        want.extend(b"p@ss");
        assert_eq!(want.len(), 2 + 52);
        assert_eq!(bytes, want);
    }

    #[test]
    fn bare_connect_matches_the_spec_bytes() {
        let c = Connect {
            client_id: "",
            clean_session: true,
            keepalive: 0,
            username: None,
            password: None,
            will: None,
        };
        assert_eq!(
            encode_connect(&c).unwrap(),
            [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 0]
        );
    }

    #[test]
    fn connect_debug_hides_the_password() {
        let c = Connect {
            client_id: "x",
            clean_session: true,
            keepalive: 1,
            username: Some("u"),
            password: Some(b"hunter2"),
            will: None,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn connect_refuses_password_without_user() {
        let c = Connect {
            client_id: "x",
            clean_session: true,
            keepalive: 1,
            username: None,
            password: Some(b"p"),
            will: None,
        };
        assert!(matches!(
            encode_connect(&c),
            Err(PacketError::Unencodable(_))
        ));
    }

    #[test]
    fn connect_refuses_a_will_topic_with_a_wildcard() {
        let c = Connect {
            client_id: "x",
            clean_session: true,
            keepalive: 1,
            username: None,
            password: None,
            will: Some(WillRef {
                topic: "withings/#",
                payload: b"offline",
                retain: true,
            }),
        };
        assert!(matches!(
            encode_connect(&c),
            Err(PacketError::Unencodable(_))
        ));
    }

    #[test]
    fn connack_is_read_and_its_flags_checked() {
        assert_eq!(
            incoming(&[0x20, 2, 0, 4]),
            Incoming::Connack {
                session_present: false,
                return_code: 4
            }
        );
        assert_eq!(
            incoming(&[0x20, 2, 1, ACCEPTED]),
            Incoming::Connack {
                session_present: true,
                return_code: ACCEPTED
            }
        );
        assert!(refused(&[0x20, 2, 0x02, 0]), "reserved ack flag");
        assert!(refused(&[0x21, 2, 0, 0]), "reserved header flag");
        assert!(refused(&[0x20, 1, 0]), "too short");
        assert!(refused(&[0x20, 3, 0, 0, 0]), "trailing byte");
    }

    #[test]
    fn publish_qos1_matches_the_spec_bytes() {
        // §3.3.2.3's example: topic "a/b", packet id 10; here retained,
        // with a payload.
        let p = Publish {
            retain: true,
            topic: "a/b",
            packet_id: 10,
            payload: b"64.3",
        };
        assert_eq!(
            encode_publish(&p).unwrap(),
            [0x33, 11, 0, 3, b'a', b'/', b'b', 0, 10, b'6', b'4', b'.', b'3']
        );
        let plain = Publish {
            retain: false,
            payload: b"",
            ..p
        };
        assert_eq!(
            encode_publish(&plain).unwrap(),
            [0x32, 7, 0, 3, b'a', b'/', b'b', 0, 10]
        );
    }

    #[test]
    fn publish_of_a_big_payload_uses_a_long_remaining_length() {
        let payload = vec![0xa5u8; 3_000_000];
        let p = Publish {
            retain: false,
            topic: "big",
            packet_id: 65_535,
            payload: &payload,
        };
        let bytes = encode_publish(&p).unwrap();
        // 2 + 3 + 2 + 3,000,000 needs four varint bytes.
        assert_eq!(
            decode_remaining_length(&bytes[1..]),
            Ok(Some((3_000_007, 4)))
        );
        assert_eq!(bytes.len(), 1 + 4 + 3_000_007);
        assert_eq!(&bytes[5..10], [0, 3, b'b', b'i', b'g']);
        assert_eq!(&bytes[10..12], [0xff, 0xff]);
        assert!(bytes[12..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn publish_refuses_what_the_spec_forbids() {
        let base = Publish {
            retain: false,
            topic: "t",
            packet_id: 1,
            payload: b"x",
        };
        let bad = |p: Publish| encode_publish(&p).is_err();
        assert!(bad(Publish {
            packet_id: 0,
            ..base.clone()
        }));
        for topic in ["a/+/b", "a/#", "", "a\0b"] {
            assert!(
                bad(Publish {
                    topic,
                    ..base.clone()
                }),
                "{topic:?}"
            );
        }
        let long = "x".repeat(65_536);
        assert!(bad(Publish {
            topic: &long,
            ..base.clone()
        }));
        assert!(!bad(base));
    }

    #[test]
    fn puback_and_pingresp_are_read() {
        assert_eq!(
            incoming(&[0x40, 2, 1, 2]),
            Incoming::Puback { packet_id: 0x0102 }
        );
        assert_eq!(
            incoming(&[0x40, 2, 0xff, 0xff]),
            Incoming::Puback { packet_id: 65_535 }
        );
        assert_eq!(incoming(&[0xd0, 0]), Incoming::Pingresp);
        assert_eq!(PINGREQ, [0xc0, 0]);
        assert_eq!(DISCONNECT, [0xe0, 0]);
    }

    #[test]
    fn malformed_or_unexpected_packets_are_errors() {
        assert!(refused(&[0x40, 2, 0, 0]), "puback id 0");
        assert!(refused(&[0x40, 1, 0]), "short puback");
        assert!(refused(&[0xd0, 1, 0]), "pingresp with a body");
        assert!(refused(&[0xd1, 0]), "pingresp with flags");
        assert!(refused(&[0x00, 0]), "type 0");
        assert!(refused(&[0xf0, 0]), "type 15");
        assert!(refused(&[0x80, 0]), "SUBSCRIBE is not ours");
        assert!(refused(&[0x30, 3, 0, 1, b't']), "nor is a PUBLISH");
        assert!(refused(&[0xc0, 0]), "nor a PINGREQ");
        match read(&[0x30, 3, 0, 1, b't']) {
            Ok(Err(e)) => assert!(e.to_string().contains("PUBLISH"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_packet_over_the_cap_is_refused_before_its_body_is_read() {
        // 256 MiB announced, four bytes present: refused, no allocation.
        assert!(refused(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, b't']));
        assert!(matches!(
            read_incoming(&mut &[0x40u8, 3, 0, 1, 0][..], 2),
            Ok(Err(PacketError::Malformed(_)))
        ));
    }

    #[test]
    fn a_packet_cut_short_is_the_connection_failing() {
        for cut in [&[][..], &[0x40], &[0x40, 2], &[0x40, 2, 0], &[0x20, 0x80]] {
            let e = read(cut).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{cut:?}");
        }
    }

    #[test]
    fn one_packet_is_read_and_the_next_left_in_place() {
        let two = [0x40, 2, 0, 7, 0xd0, 0];
        let mut r = &two[..];
        assert_eq!(
            read_incoming(&mut r, 1024).unwrap(),
            Ok(Incoming::Puback { packet_id: 7 })
        );
        assert_eq!(read_incoming(&mut r, 1024).unwrap(), Ok(Incoming::Pingresp));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep over short inputs (xorshift).
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            let mut buf = [0u8; 12];
            for b in &mut buf {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let len = (x % 13) as usize;
            let _ = read(&buf[..len]);
        }
    }
}
