//! MQTT 3.1.1 control packets as bytes, and back: only the seven the relay
//! uses (CONNECT, CONNACK, PUBLISH, PUBACK, PINGREQ, PINGRESP, DISCONNECT).
//! Pure functions, no I/O, so every rule is unit-tested here. Section
//! numbers (§) are those of the OASIS MQTT 3.1.1 standard.
//!
//! Lengths are kept in `u32` (the protocol's own limit is 268,435,455) and
//! every sum is checked, so nothing here assumes a 64-bit `usize`: the relay
//! also runs on 32-bit MIPS routers.

use std::fmt;

/// The largest Remaining Length four varint bytes can carry (§2.2.3).
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;

/// The largest UTF-8 string or binary field: its length is a u16 (§1.5.3).
const MAX_FIELD: usize = 65_535;

/// Quality of service of a PUBLISH or of the Will (§4.3). QoS 2 is never
/// sent by the relay, but is decoded so a broker's packet can be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    fn from_bits(bits: u8) -> Result<QoS, PacketError> {
        match bits {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            // [MQTT-3.3.1-4], [MQTT-3.1.2-14]: both QoS bits set is malformed.
            _ => Err(malformed("QoS 3 does not exist")),
        }
    }
}

/// The Will of a CONNECT (§3.1.2.5): what the broker publishes for us when
/// the connection ends without a DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillRef<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
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

/// PUBLISH (§3.3). `packet_id` is Some exactly when `qos` is not 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish<'a> {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub topic: &'a str,
    pub packet_id: Option<u16>,
    pub payload: &'a [u8],
}

/// CONNACK return codes (§3.2.2.3).
pub const ACCEPTED: u8 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    Connack {
        session_present: bool,
        return_code: u8,
    },
    Publish(Publish<'a>),
    Puback {
        packet_id: u16,
    },
    Pingreq,
    Pingresp,
    Disconnect,
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

fn malformed(what: &str) -> PacketError {
    PacketError::Malformed(what.to_string())
}

fn unencodable(what: impl Into<String>) -> PacketError {
    PacketError::Unencodable(what.into())
}

// Control packet types, the high nibble of the first byte (§2.2.1).
const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

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
pub fn encode_remaining_length(len: u32, out: &mut Vec<u8>) -> Result<(), PacketError> {
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
pub fn decode_remaining_length(buf: &[u8]) -> Result<Option<(u32, usize)>, PacketError> {
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

/// `first` byte, Remaining Length of `body`, then `body`.
fn frame(first: u8, body: &[u8]) -> Result<Vec<u8>, PacketError> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(body.len().saturating_add(5));
    out.push(first);
    encode_remaining_length(len, &mut out)?;
    out.extend_from_slice(body);
    Ok(out)
}

impl Packet<'_> {
    /// The whole packet as it goes on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        match self {
            Packet::Connect(c) => encode_connect(c),
            Packet::Connack {
                session_present,
                return_code,
            } => frame(CONNACK << 4, &[u8::from(*session_present), *return_code]),
            Packet::Publish(p) => encode_publish(p),
            Packet::Puback { packet_id } => {
                if *packet_id == 0 {
                    return Err(unencodable("packet id 0 is reserved [MQTT-2.3.1-1]"));
                }
                frame(PUBACK << 4, &packet_id.to_be_bytes())
            }
            Packet::Pingreq => Ok(vec![PINGREQ << 4, 0]),
            Packet::Pingresp => Ok(vec![PINGRESP << 4, 0]),
            Packet::Disconnect => Ok(vec![DISCONNECT << 4, 0]),
        }
    }
}

fn encode_connect(c: &Connect) -> Result<Vec<u8>, PacketError> {
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
        flags |= 0x04 | ((w.qos as u8) << 3);
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
    frame(CONNECT << 4, &body)
}

fn encode_publish(p: &Publish) -> Result<Vec<u8>, PacketError> {
    check_topic(p.topic).map_err(unencodable)?;
    match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, None) => {}
        (QoS::AtMostOnce, Some(_)) => {
            return Err(unencodable(
                "a QoS 0 PUBLISH has no packet id [MQTT-2.3.1-5]",
            ))
        }
        (_, None) | (_, Some(0)) => {
            return Err(unencodable(
                "a QoS 1 or 2 PUBLISH needs a non-zero packet id [MQTT-2.3.1-1]",
            ))
        }
        (_, Some(_)) => {}
    }
    // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0.
    if p.dup && p.qos == QoS::AtMostOnce {
        return Err(unencodable("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]"));
    }
    let id_len = if p.packet_id.is_some() { 2 } else { 0 };
    // Checked: on a 32-bit target a huge payload plus the header could wrap.
    let body_len = (2 + p.topic.len() + id_len)
        .checked_add(p.payload.len())
        .filter(|&n| n <= MAX_REMAINING_LENGTH as usize)
        .ok_or_else(|| {
            unencodable(format!(
                "a payload of {} bytes is over MQTT's limit of {MAX_REMAINING_LENGTH} bytes a packet",
                p.payload.len()
            ))
        })?;
    let first = (PUBLISH << 4) | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain);
    let mut out = Vec::with_capacity(body_len + 5);
    out.push(first);
    // body_len <= MAX_REMAINING_LENGTH, checked just above, so it fits a u32.
    encode_remaining_length(body_len as u32, &mut out)?;
    put_string(p.topic, "the topic", &mut out)?;
    if let Some(id) = p.packet_id {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(p.payload);
    Ok(out)
}

/// Reads one packet from the start of `buf`. Ok(None) when `buf` holds only
/// part of it (read more and call again); else the packet and how many
/// bytes of `buf` it used. Borrowed fields point into `buf`.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, PacketError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let Some((len, varint_len)) = decode_remaining_length(&buf[1..])? else {
        return Ok(None);
    };
    let start = 1 + varint_len;
    // A u32 always fits the usize of the targets we build for (32 and 64
    // bit); if not, the packet could not be in memory anyway.
    let Ok(len) = usize::try_from(len) else {
        return Err(malformed("packet too large for this machine"));
    };
    let Some(end) = start.checked_add(len) else {
        return Err(malformed("packet too large for this machine"));
    };
    if buf.len() < end {
        return Ok(None);
    }
    let packet = decode_body(first, &buf[start..end])?;
    Ok(Some((packet, end)))
}

/// Decodes a packet whose first byte and body (after the Remaining Length)
/// are known, as the client reads them off a socket.
pub fn decode_body(first: u8, body: &[u8]) -> Result<Packet<'_>, PacketError> {
    let kind = first >> 4;
    let flags = first & 0x0f;
    // [MQTT-2.2.2-1]: reserved flag bits must be exactly as listed in
    // §2.2.2; PUBLISH is the only one of ours with meaningful flags.
    if kind != PUBLISH && flags != 0 {
        return Err(malformed("reserved flags set in fixed header"));
    }
    let mut r = Reader(body);
    let packet = match kind {
        CONNECT => Packet::Connect(decode_connect(&mut r)?),
        CONNACK => {
            let ack_flags = r.u8()?;
            // §3.2.2.1: bits 7-1 are reserved and must be 0.
            if ack_flags & 0xfe != 0 {
                return Err(malformed("reserved CONNACK flags set"));
            }
            Packet::Connack {
                session_present: ack_flags & 1 == 1,
                return_code: r.u8()?,
            }
        }
        PUBLISH => {
            let qos = QoS::from_bits((flags >> 1) & 3)?;
            let dup = flags & 0x08 != 0;
            let topic = r.string()?;
            let packet_id = if qos == QoS::AtMostOnce {
                None
            } else {
                Some(r.packet_id()?)
            };
            // [MQTT-3.3.2-2]: a PUBLISH topic has no wildcards.
            if topic.contains(['+', '#']) {
                return Err(malformed("wildcard in PUBLISH topic"));
            }
            let payload = r.0;
            r.0 = &[];
            Packet::Publish(Publish {
                dup,
                qos,
                retain: flags & 1 == 1,
                topic,
                packet_id,
                payload,
            })
        }
        PUBACK => Packet::Puback {
            packet_id: r.packet_id()?,
        },
        PINGREQ => Packet::Pingreq,
        PINGRESP => Packet::Pingresp,
        DISCONNECT => Packet::Disconnect,
        0 | 15 => return Err(malformed("reserved packet type")),
        _ => {
            return Err(PacketError::Malformed(format!(
                "packet type {kind} is not one this client handles"
            )))
        }
    };
    if !r.0.is_empty() {
        return Err(malformed("trailing bytes after the packet"));
    }
    Ok(packet)
}

fn decode_connect<'a>(r: &mut Reader<'a>) -> Result<Connect<'a>, PacketError> {
    // §3.1.2.1, §3.1.2.2: protocol name "MQTT" at level 4 only.
    if r.bytes()? != b"MQTT" {
        return Err(malformed("protocol name is not MQTT"));
    }
    if r.u8()? != 4 {
        return Err(malformed("protocol level is not 4 (MQTT 3.1.1)"));
    }
    let flags = r.u8()?;
    // [MQTT-3.1.2-3]: the reserved bit must be 0.
    if flags & 1 != 0 {
        return Err(malformed("reserved CONNECT flag set"));
    }
    let has_will = flags & 0x04 != 0;
    let will_qos = QoS::from_bits((flags >> 3) & 3)?;
    let will_retain = flags & 0x20 != 0;
    // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]: no Will, no Will
    // QoS or retain.
    if !has_will && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(malformed("will QoS or retain set without a will"));
    }
    let has_user = flags & 0x80 != 0;
    let has_password = flags & 0x40 != 0;
    // [MQTT-3.1.2-22].
    if has_password && !has_user {
        return Err(malformed("password without user name"));
    }
    let keepalive = r.u16()?;
    let client_id = r.string()?;
    let will = if has_will {
        Some(WillRef {
            topic: r.string()?,
            payload: r.bytes()?,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if has_user { Some(r.string()?) } else { None };
    let password = if has_password { Some(r.bytes()?) } else { None };
    Ok(Connect {
        client_id,
        clean_session: flags & 0x02 != 0,
        keepalive,
        username,
        password,
        will,
    })
}

/// A cursor over a packet body; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PacketError> {
        if self.0.len() < n {
            return Err(malformed("packet body shorter than its fields"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, PacketError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PacketError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn packet_id(&mut self) -> Result<u16, PacketError> {
        match self.u16()? {
            0 => Err(malformed("packet id 0 [MQTT-2.3.1-1]")),
            id => Ok(id),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], PacketError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    fn string(&mut self) -> Result<&'a str, PacketError> {
        let s = std::str::from_utf8(self.bytes()?)
            // [MQTT-1.5.3-1]: ill-formed UTF-8 closes the connection.
            .map_err(|_| malformed("string is not UTF-8"))?;
        if s.contains('\0') {
            return Err(malformed("string contains U+0000 [MQTT-1.5.3-2]"));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(p: Packet) {
        let bytes = p.encode().unwrap();
        let (back, used) = decode(&bytes).unwrap().expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(back, p);
        // Every proper prefix is "need more", never an error or a packet.
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Ok(None), "prefix of {cut} bytes");
        }
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
    }

    #[test]
    fn connect_with_everything_roundtrips_and_matches_the_spec_bytes() {
        let c = Connect {
            client_id: "relay",
            clean_session: true,
            keepalive: 60,
            username: Some("u"),
            password: Some(b"p@ss"),
            will: Some(WillRef {
                topic: "withings/status",
                payload: b"offline",
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
        };
        let bytes = Packet::Connect(c.clone()).encode().unwrap();
        assert_eq!(bytes[0], 0x10);
        // Protocol name, level 4, flags: user, password, will retain,
        // will QoS 1, will, clean session (§3.1.2.3).
        assert_eq!(&bytes[2..10], &[0, 4, b'M', b'Q', b'T', b'T', 4, 0xee]);
        assert_eq!(&bytes[10..12], &[0, 60]);
        roundtrip(Packet::Connect(c));
    }

    #[test]
    fn bare_connect_roundtrips() {
        let c = Connect {
            client_id: "",
            clean_session: true,
            keepalive: 0,
            username: None,
            password: None,
            will: None,
        };
        let bytes = Packet::Connect(c.clone()).encode().unwrap();
        assert_eq!(
            bytes,
            [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 0]
        );
        roundtrip(Packet::Connect(c));
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
            Packet::Connect(c).encode(),
            Err(PacketError::Unencodable(_))
        ));
        // And on the decoding side: flags 0x42 (password, clean).
        let bytes = [
            0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 0, 0, 0, 0, 1, b'p',
        ];
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn connect_with_bad_header_fields_is_malformed() {
        let good = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 0];
        assert!(decode(&good).unwrap().is_some());
        let mut level3 = good;
        level3[8] = 3;
        assert!(decode(&level3).is_err());
        let mut reserved = good;
        reserved[9] |= 1;
        assert!(decode(&reserved).is_err());
        let mut will_qos_without_will = good;
        will_qos_without_will[9] |= 0x08;
        assert!(decode(&will_qos_without_will).is_err());
        let mut name = good;
        name[4] = b'X';
        assert!(decode(&name).is_err());
    }

    #[test]
    fn connack_roundtrips_and_checks_its_flags() {
        roundtrip(Packet::Connack {
            session_present: false,
            return_code: 4,
        });
        roundtrip(Packet::Connack {
            session_present: true,
            return_code: ACCEPTED,
        });
        assert_eq!(
            decode(&[0x20, 2, 0, 5]).unwrap().unwrap().0,
            Packet::Connack {
                session_present: false,
                return_code: 5
            }
        );
        assert!(decode(&[0x20, 2, 0x02, 0]).is_err(), "reserved ack flag");
        assert!(decode(&[0x21, 2, 0, 0]).is_err(), "reserved header flag");
        assert!(decode(&[0x20, 1, 0]).is_err(), "too short");
        assert!(decode(&[0x20, 3, 0, 0, 0]).is_err(), "trailing byte");
    }

    #[test]
    fn publish_qos1_bytes_and_roundtrip() {
        let p = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "a/b",
            packet_id: Some(0x1234),
            payload: b"64.3",
        };
        let bytes = Packet::Publish(p.clone()).encode().unwrap();
        assert_eq!(
            bytes,
            [0x33, 11, 0, 3, b'a', b'/', b'b', 0x12, 0x34, b'6', b'4', b'.', b'3']
        );
        roundtrip(Packet::Publish(p));
    }

    #[test]
    fn publish_qos0_has_no_packet_id_and_may_be_empty() {
        let p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            packet_id: None,
            payload: b"",
        };
        assert_eq!(
            Packet::Publish(p.clone()).encode().unwrap(),
            [0x30, 3, 0, 1, b't']
        );
        roundtrip(Packet::Publish(p));
    }

    #[test]
    fn publish_of_a_big_payload_uses_a_long_remaining_length() {
        let payload = vec![0xa5u8; 3_000_000];
        let p = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "big",
            packet_id: Some(65_535),
            payload: &payload,
        };
        let bytes = Packet::Publish(p.clone()).encode().unwrap();
        // 2 + 3 + 2 + 3,000,000 needs four varint bytes.
        assert_eq!(
            decode_remaining_length(&bytes[1..]),
            Ok(Some((3_000_007, 4)))
        );
        assert_eq!(bytes.len(), 1 + 4 + 3_000_007);
        let (back, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back, Packet::Publish(p));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Ok(None));
    }

    #[test]
    fn publish_refuses_what_the_spec_forbids() {
        let base = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t",
            packet_id: Some(1),
            payload: b"x",
        };
        let bad = |p: Publish| Packet::Publish(p).encode().is_err();
        assert!(bad(Publish {
            packet_id: Some(0),
            ..base.clone()
        }));
        assert!(bad(Publish {
            packet_id: None,
            ..base.clone()
        }));
        assert!(bad(Publish {
            qos: QoS::AtMostOnce,
            ..base.clone()
        }));
        assert!(bad(Publish {
            topic: "a/+/b",
            ..base.clone()
        }));
        assert!(bad(Publish {
            topic: "a/#",
            ..base.clone()
        }));
        assert!(bad(Publish {
            topic: "",
            ..base.clone()
        }));
        assert!(bad(Publish {
            topic: "a\0b",
            ..base.clone()
        }));
        let long = "x".repeat(65_536);
        assert!(bad(Publish {
            topic: &long,
            ..base.clone()
        }));
        assert!(!bad(base));
    }

    #[test]
    fn publish_decoding_rejects_qos3_id0_and_wildcards() {
        // QoS bits 11.
        assert!(decode(&[0x36, 5, 0, 1, b't', 0, 1]).is_err());
        // QoS 1 with packet id 0.
        assert!(decode(&[0x32, 5, 0, 1, b't', 0, 0]).is_err());
        // Wildcard topic.
        assert!(decode(&[0x30, 3, 0, 1, b'#']).is_err());
        // Invalid UTF-8 topic.
        assert!(decode(&[0x30, 3, 0, 1, 0xff]).is_err());
        // Topic length past the end of the body.
        assert!(decode(&[0x30, 3, 0, 9, b't']).is_err());
        // QoS 1 without room for the packet id.
        assert!(decode(&[0x32, 3, 0, 1, b't']).is_err());
    }

    #[test]
    fn puback_ping_and_disconnect_roundtrip() {
        for p in [
            Packet::Puback { packet_id: 1 },
            Packet::Puback { packet_id: 65_535 },
            Packet::Pingreq,
            Packet::Pingresp,
            Packet::Disconnect,
        ] {
            roundtrip(p);
        }
        assert_eq!(Packet::Pingreq.encode().unwrap(), [0xc0, 0]);
        assert_eq!(Packet::Pingresp.encode().unwrap(), [0xd0, 0]);
        assert_eq!(Packet::Disconnect.encode().unwrap(), [0xe0, 0]);
        assert_eq!(
            Packet::Puback { packet_id: 0x0102 }.encode().unwrap(),
            [0x40, 2, 1, 2]
        );
        assert!(Packet::Puback { packet_id: 0 }.encode().is_err());
    }

    #[test]
    fn malformed_small_packets_are_errors() {
        assert!(decode(&[0x40, 2, 0, 0]).is_err(), "puback id 0");
        assert!(decode(&[0x40, 1, 0]).is_err(), "short puback");
        assert!(decode(&[0xd0, 1, 0]).is_err(), "pingresp with a body");
        assert!(decode(&[0xd1, 0]).is_err(), "pingresp with flags");
        assert!(decode(&[0x00, 0]).is_err(), "type 0");
        assert!(decode(&[0xf0, 0]).is_err(), "type 15");
        assert!(decode(&[0x80, 0]).is_err(), "SUBSCRIBE is not ours");
    }

    #[test]
    fn decode_reads_one_packet_and_reports_its_length() {
        let mut two = Packet::Puback { packet_id: 7 }.encode().unwrap();
        two.extend(Packet::Pingresp.encode().unwrap());
        let (p, used) = decode(&two).unwrap().unwrap();
        assert_eq!(p, Packet::Puback { packet_id: 7 });
        assert_eq!(decode(&two[used..]).unwrap().unwrap().0, Packet::Pingresp);
    }

    #[test]
    fn a_huge_claimed_length_is_incomplete_not_a_crash() {
        // 256 MiB announced, four bytes present: needs more, no allocation.
        assert_eq!(
            decode(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, b't']),
            Ok(None)
        );
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
            let _ = decode(&buf[..len]);
        }
    }
}
