//! One inbound connection while the relay waits for a whole request on it.
//! It only ever reads what has already arrived (the stream is
//! non-blocking), so one thread can watch every open connection and hand
//! a request to a handler only once its head and body are complete: a
//! client that sends slowly, or nothing at all, costs a few bytes of
//! buffer here and never a thread.

use super::parse::{self, Head, Parsed, HEAD_LIMIT};
use super::server::Limits;
use super::{Request, Response};
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Instant;

/// A byte stream the server can answer on: plain TCP now; a TLS stream
/// (rustls' `StreamOwned` over a TcpStream, which passes WouldBlock
/// through) later. The server switches it to non-blocking and enforces
/// every deadline itself, by the clock, between reads and writes: a
/// socket timeout alone would let a client that sends one byte a second
/// keep a request open for ever.
pub trait Transport: Read + Write + Send + 'static {
    /// Makes reads and writes return WouldBlock instead of waiting.
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, on)
    }
}

pub struct Conn<S> {
    pub stream: S,
    /// What has arrived of the current request (and anything pipelined
    /// after it): at most the head limit while the head is read, then the
    /// head plus the declared body, which the head limits too.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no end of the head.
    scanned: usize,
    /// The parsed head, once it is complete, while the body arrives.
    head: Option<Head>,
    /// Kept alive after an answer, with nothing of a next request yet.
    idle: bool,
    /// When the connection is closed if the request is still incomplete.
    pub deadline: Instant,
    /// Where the connection came from; each request carries it.
    peer: Option<IpAddr>,
}

#[derive(Debug)]
pub enum Event {
    /// Not complete yet; `progressed` tells whether bytes arrived.
    Pending { progressed: bool },
    /// A whole request, body included.
    Ready { request: Request, keep_alive: bool },
    /// Answer this and close, reading nothing more (431, 413, 411, 400).
    Refuse(Response),
    /// The deadline passed; `partial` if part of a request had come.
    Expired { partial: bool },
    /// The client closed the connection, or it failed.
    Closed,
}

/// What to do next with the buffered bytes.
enum Step {
    Read(usize),
    Done(Event),
}

impl<S: Transport> Conn<S> {
    /// A fresh connection: its first request must arrive whole within the
    /// request deadline, counted from now. Over TLS, the handshake is
    /// part of that first request, so it has the same deadline.
    pub fn new(stream: S, peer: Option<IpAddr>, now: Instant, limits: &Limits) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::new(),
            scanned: 0,
            head: None,
            idle: false,
            deadline: now + limits.request,
            peer: peer.map(|ip| ip.to_canonical()),
        }
    }

    /// Waits for the next request after an answer: idle for at most the
    /// keep-alive time, then the request deadline from its first byte.
    pub fn rearm(&mut self, now: Instant, limits: &Limits) {
        self.idle = self.buf.is_empty();
        self.deadline = now
            + if self.idle {
                limits.keep_alive
            } else {
                limits.request
            };
    }

    /// Reads what has arrived, without waiting, until a request is
    /// complete, a limit is passed, or nothing more is there.
    pub fn poll(&mut self, scratch: &mut [u8], now: Instant, limits: &Limits) -> Event {
        let mut progressed = false;
        loop {
            let want = match self.step(limits.body) {
                Step::Read(want) => want.min(scratch.len()),
                Step::Done(event) => return event,
            };
            if now >= self.deadline {
                // A parsed head leaves its bytes in buf until the body is in.
                let partial = !self.buf.is_empty();
                return Event::Expired { partial };
            }
            let Some(into) = scratch.get_mut(..want) else {
                return Event::Closed;
            };
            match self.stream.read(into) {
                Ok(0) => return Event::Closed,
                Ok(n) => {
                    if self.idle {
                        self.idle = false;
                        self.deadline = now + limits.request;
                    }
                    self.buf
                        .extend_from_slice(into.get(..n).unwrap_or_default());
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Event::Pending { progressed }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Event::Closed,
            }
        }
    }

    /// Makes what progress the buffered bytes allow; says how many bytes
    /// at most to read next (never more than a limit leaves room for).
    fn step(&mut self, body_limit: usize) -> Step {
        loop {
            if let Some(head) = &self.head {
                let have = self.buf.len().saturating_sub(head.len);
                if have < head.body_len {
                    return Step::Read(head.body_len - have);
                }
                return Step::Done(self.take_request());
            }
            // RFC 9112 §2.2: empty lines before a request line are ignored
            // (some clients send CRLF after a POST body).
            if self.scanned == 0 {
                let blank = self.buf.iter().take_while(|&&b| b == b'\r' || b == b'\n');
                let blank = blank.count();
                self.buf.drain(..blank);
            }
            let end = match parse::head_end(&self.buf, self.scanned) {
                Some(end) if end <= HEAD_LIMIT => end,
                found if found.is_some() || self.buf.len() >= HEAD_LIMIT => {
                    return Step::Done(Event::Refuse(Response::text(
                        431,
                        "request head too large\n",
                    )))
                }
                _ => {
                    self.scanned = self.buf.len();
                    return Step::Read(HEAD_LIMIT - self.buf.len());
                }
            };
            let head = match parse::parse_head(self.buf.get(..end).unwrap_or_default(), body_limit)
            {
                Parsed::Complete(head) => head,
                Parsed::Refuse(response) => return Step::Done(Event::Refuse(response)),
            };
            if head.expect_continue && self.buf.len().saturating_sub(head.len) < head.body_len {
                // One try: 25 bytes always fit an empty send buffer, and a
                // client that misses it sends the body after a second anyway.
                let _ = self.stream.write(b"HTTP/1.1 100 Continue\r\n\r\n");
                let _ = self.stream.flush();
            }
            self.head = Some(head);
        }
    }

    /// Splits the complete request off the buffer, keeping whatever was
    /// pipelined after it for the next round.
    fn take_request(&mut self) -> Event {
        let Some(head) = self.head.take() else {
            return Event::Closed;
        };
        let end = (head.len + head.body_len).min(self.buf.len());
        let rest = self.buf.split_off(end);
        let mut body = std::mem::replace(&mut self.buf, rest);
        body.drain(..head.len.min(body.len()));
        self.buf.shrink_to_fit();
        self.scanned = 0;
        let mut request = head.request;
        request.body = body;
        request.peer = self.peer;
        Event::Ready {
            request,
            keep_alive: head.keep_alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::time::Duration;

    /// A stream that hands out scripted chunks; an empty chunk stands for
    /// "nothing more has arrived yet" (WouldBlock).
    struct Script {
        chunks: VecDeque<Vec<u8>>,
        written: Vec<u8>,
        eof: bool,
    }

    impl Read for Script {
        fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
            let Some(mut chunk) = self.chunks.pop_front() else {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            };
            if chunk.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = chunk.len().min(into.len());
            into[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.chunks.push_front(chunk.split_off(n));
            }
            Ok(n)
        }
    }

    impl Write for Script {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Script {
        fn set_nonblocking(&self, _: bool) -> io::Result<()> {
            Ok(())
        }
    }

    fn limits() -> Limits {
        Limits {
            body: 16 * 1024,
            ..Limits::default()
        }
    }

    fn conn(chunks: &[&[u8]]) -> (Conn<Script>, Instant) {
        let script = Script {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            written: Vec::new(),
            eof: false,
        };
        let now = Instant::now();
        (Conn::new(script, None, now, &limits()), now)
    }

    /// Polls until something other than Pending happens or the script
    /// runs dry.
    fn run(conn: &mut Conn<Script>, now: Instant) -> Event {
        let mut scratch = vec![0; 4096];
        for _ in 0..10_000 {
            match conn.poll(&mut scratch, now, &limits()) {
                Event::Pending { .. } if !conn.stream.chunks.is_empty() => continue,
                event => return event,
            }
        }
        panic!("no end")
    }

    fn ready(event: Event) -> (Request, bool) {
        match event {
            Event::Ready {
                request,
                keep_alive,
            } => (request, keep_alive),
            other => panic!("{other:?}"),
        }
    }

    fn status(event: Event) -> u16 {
        match event {
            Event::Refuse(r) => r.status,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_arriving_a_byte_at_a_time_is_assembled() {
        let text = b"POST /notify/s HTTP/1.1\r\nContent-Length: 5\r\n\r\nab=cd";
        let bytes: Vec<Vec<u8>> = text.iter().flat_map(|&b| [vec![b], vec![]]).collect();
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let (mut c, now) = conn(&refs);
        let (request, keep_alive) = ready(run(&mut c, now));
        assert_eq!(request.path, "/notify/s");
        assert_eq!(request.body, b"ab=cd");
        assert!(keep_alive);
    }

    #[test]
    fn pipelined_requests_come_out_one_at_a_time() {
        let (mut c, now) = conn(&[
            b"\r\nGET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nxyGET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
        ]);
        assert_eq!(ready(run(&mut c, now)).0.path, "/a");
        c.rearm(now, &limits());
        let (b, _) = ready(run(&mut c, now));
        assert_eq!((b.path.as_str(), b.body.as_slice()), ("/b", &b"xy"[..]));
        c.rearm(now, &limits());
        let (last, keep_alive) = ready(run(&mut c, now));
        assert_eq!(last.path, "/c");
        assert!(!keep_alive);
        c.rearm(now, &limits());
        assert!(c.idle);
    }

    #[test]
    fn a_head_over_8_kib_is_refused_after_reading_8_kib() {
        let line = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(64 * 1024));
        let (mut c, now) = conn(&[line.as_bytes()]);
        assert_eq!(status(run(&mut c, now)), 431);
        assert_eq!(c.buf.len(), HEAD_LIMIT, "read no further than the limit");
        // A head exactly at the limit is taken.
        let pad = HEAD_LIMIT - "GET / HTTP/1.1\r\nX: \r\n\r\n".len();
        let exact = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(pad));
        let (mut c, now) = conn(&[exact.as_bytes()]);
        ready(run(&mut c, now));
    }

    #[test]
    fn a_body_over_the_limit_is_refused_before_any_of_it_is_read() {
        let (mut c, now) = conn(&[
            b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n",
            &[b'a'; 100_000],
        ]);
        assert_eq!(status(run(&mut c, now)), 413);
        assert_eq!(c.stream.chunks.len(), 1, "the body was left unread");
    }

    #[test]
    fn expect_100_continue_is_answered_once_the_head_is_in() {
        let (mut c, now) = conn(&[
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            b"",
            b"abc",
        ]);
        let (request, _) = ready(run(&mut c, now));
        assert_eq!(request.body, b"abc");
        assert_eq!(c.stream.written, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn deadlines_close_slow_and_idle_connections() {
        let limits = limits();
        let mut scratch = vec![0; 64];
        // Half a head, then the deadline passes: expired with a partial request.
        let (mut c, now) = conn(&[b"GET / HT", b""]);
        assert!(matches!(
            c.poll(&mut scratch, now, &limits),
            Event::Pending { progressed: true }
        ));
        let late = now + limits.request;
        assert!(matches!(
            c.poll(&mut scratch, late, &limits),
            Event::Expired { partial: true }
        ));
        // A kept-alive connection that stays silent expires with nothing partial.
        let (mut c, now) = conn(&[b"GET / HTTP/1.1\r\n\r\n"]);
        ready(run(&mut c, now));
        c.rearm(now, &limits);
        assert!(matches!(
            c.poll(&mut scratch, now + Duration::from_millis(1), &limits),
            Event::Pending { progressed: false }
        ));
        assert!(matches!(
            c.poll(&mut scratch, now + limits.keep_alive, &limits),
            Event::Expired { partial: false }
        ));
    }

    #[test]
    fn a_closed_connection_is_noticed() {
        let (mut c, now) = conn(&[b"GET / HT"]);
        c.stream.eof = true;
        assert!(matches!(run(&mut c, now), Event::Closed));
    }

    /// Mutated and random requests, cut into random pieces: never a
    /// panic, and always an outcome once the bytes run out.
    #[test]
    fn mutated_requests_in_random_pieces_never_panic() {
        const SEEDS: &[&[u8]] = &[
            b"POST /notify/abc HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nuserid=1&a=2GET / HTTP/1.1\r\n\r\n",
            b"HEAD /oauth/callback?code=x&state=y HTTP/1.0\nConnection: close\n\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        ];
        const ALPHABET: &[u8] = b"\r\n :0123456789/?&=GETPOSTHEADContent-Length\x00\xff\x7f";
        let mut state = 0x5eed_c0de_u32;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as usize % n.max(1)
        };
        let mut outcomes = [0usize; 4];
        for round in 0..20_000 {
            let mut bytes = SEEDS[round % SEEDS.len()].to_vec();
            for _ in 0..next(8) {
                let at = next(bytes.len() + 1);
                match next(3) {
                    0 if at < bytes.len() => bytes[at] = ALPHABET[next(ALPHABET.len())],
                    1 => bytes.insert(at, ALPHABET[next(ALPHABET.len())]),
                    _ => bytes.truncate(at),
                }
            }
            let mut chunks = Vec::new();
            while !bytes.is_empty() {
                let n = 1 + next(bytes.len().min(40));
                chunks.push(bytes.drain(..n).collect::<Vec<u8>>());
                chunks.push(Vec::new());
            }
            let limits = Limits {
                body: 16,
                ..limits()
            };
            let now = Instant::now();
            let script = Script {
                chunks: chunks.into(),
                written: Vec::new(),
                eof: round % 2 == 0,
            };
            let mut c = Conn::new(script, None, now, &limits);
            let mut scratch = vec![0; 1 + next(64)];
            for _ in 0..1_000 {
                match c.poll(&mut scratch, now, &limits) {
                    Event::Pending { .. } if !c.stream.chunks.is_empty() => continue,
                    Event::Ready { .. } => {
                        outcomes[0] += 1;
                        c.rearm(now, &limits);
                    }
                    Event::Refuse(_) => {
                        outcomes[1] += 1;
                        break;
                    }
                    Event::Closed => {
                        outcomes[2] += 1;
                        break;
                    }
                    _ => {
                        outcomes[3] += 1;
                        break;
                    }
                }
            }
        }
        assert!(outcomes.iter().all(|&n| n > 100), "{outcomes:?}");
    }
}
