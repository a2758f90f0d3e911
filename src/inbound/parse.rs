//! HTTP/1.1 bytes in and out, without any I/O: where a request head ends,
//! what it asks for and whether it stays within the limits, and the bytes
//! of an answer. Every byte here comes from the internet: nothing may
//! panic, and every size is checked before it is trusted.

use super::{Request, Response};

/// The largest request head (request line and headers, up to the blank
/// line) taken; a longer one is refused with 431 without reading further.
/// Withings' notification head is a few hundred bytes and a browser's
/// OAuth callback under 2 KiB; 8 KiB is also nginx's default for one line.
pub const HEAD_LIMIT: usize = 8 * 1024;
/// More header lines than this is refused with 431 too; httparse needs a
/// fixed array, and 48 is several times what a browser sends.
const MAX_HEADERS: usize = 48;

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    /// Everything but the body, which is still to be read.
    pub request: Request,
    /// Bytes of the head, blank line included.
    pub len: usize,
    /// Bytes of body that follow, from Content-Length (at most the limit).
    pub body_len: usize,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client waits for "100 Continue" before sending the body.
    pub expect_continue: bool,
}

#[derive(Debug)]
pub enum Parsed {
    Complete(Head),
    /// Answer this and close the connection, reading nothing more.
    Refuse(Response),
}

/// Where the head ends in `buf` (the index just past the blank line), if
/// it does; bytes before `from` are known not to hold the end. A line may
/// end in CRLF or in a bare LF, as httparse accepts both.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    // The end is "\n\n" or "\n\r\n": it may start two bytes before `from`.
    let mut i = from.saturating_sub(2);
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn refusal(status: u16, text: &str) -> Parsed {
    Parsed::Refuse(Response::text(status, text))
}

/// Parses a complete head (`head` ends with its blank line) and applies
/// the limits: at most `body_limit` bytes of body, declared up front with
/// Content-Length. Chunked bodies are refused with 411: Withings posts a
/// short form with Content-Length (facts sheet §3.3), as do curl and
/// browsers, and refusing them keeps out request smuggling through a
/// Content-Length and Transfer-Encoding that disagree.
pub fn parse_head(head: &[u8], body_limit: usize) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(head) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return refusal(400, "malformed request head\n"),
        Err(httparse::Error::TooManyHeaders) => return refusal(431, "too many request headers\n"),
        Err(e) => return refusal(400, &format!("malformed request: {e}\n")),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return refusal(400, "malformed request head\n");
    };
    let mut content_length: Option<&[u8]> = None;
    let mut connection_close = version == 0;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some_and(|seen| seen != value) {
                return refusal(400, "conflicting Content-Length headers\n");
            }
            content_length = Some(value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return refusal(
                411,
                "send the body with a Content-Length (chunked bodies are not taken)\n",
            );
        } else if h.name.eq_ignore_ascii_case("connection") {
            // HTTP/1.1 keeps the connection unless told to close; this
            // relay closes HTTP/1.0 connections whatever they ask.
            connection_close |= has_token(value, b"close");
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    let body_len = match content_length.map(|v| body_length(v, body_limit)) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(status)) => {
            let text = match status {
                413 => "request body too large\n",
                _ => "malformed Content-Length\n",
            };
            return refusal(status, text);
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Parsed::Complete(Head {
        request: Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: query.to_string(),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value.trim_ascii());
                    (h.name.to_string(), value.into_owned())
                })
                .collect(),
            peer: None,
            body: Vec::new(),
        },
        len,
        body_len,
        keep_alive: !connection_close,
        expect_continue,
    })
}

/// A Content-Length within `limit`, or the status refusing it: 413 for
/// any number above the limit however many digits it has (so
/// 18446744073709551615 and 10^30 are both "too large", never wrapped or
/// allocated), 400 for anything but digits.
fn body_length(value: &[u8], limit: usize) -> Result<usize, u16> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(400);
    }
    let mut n: usize = 0;
    for &d in value {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d - b'0')))
            .filter(|&n| n <= limit)
            .ok_or(413u16)?;
    }
    Ok(n)
}

/// Whether a comma-separated header value names `token` (any case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The bytes of an answer: status line, headers, and the body unless it
/// answers a HEAD request (which gets the Content-Length a GET would).
/// Header values holding CR or LF are left out rather than let split the
/// head.
pub fn response_bytes(r: &Response, head_only: bool, close: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (name, value) in &r.headers {
        if name.eq_ignore_ascii_case("connection") || value.contains(['\r', '\n']) {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(r.body.as_bytes());
    }
    bytes
}

/// The reason phrases of the statuses the relay sends; HTTP/1.1 lets it be
/// empty for any other.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(head: &str) -> Head {
        match parse_head(head.as_bytes(), 16 * 1024) {
            Parsed::Complete(h) => h,
            Parsed::Refuse(r) => panic!("refused {head:?}: {r:?}"),
        }
    }

    fn refused(head: &str) -> u16 {
        match parse_head(head.as_bytes(), 16 * 1024) {
            Parsed::Complete(h) => panic!("took {head:?}: {h:?}"),
            Parsed::Refuse(r) => r.status,
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_in_crlf_or_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nbody", 0), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0), None);
        assert_eq!(head_end(b"\n", 0), None);
        assert_eq!(head_end(b"\n\n", 0), Some(2));
        assert_eq!(head_end(b"x\n", 9), None);
        // Found when it arrives a byte at a time and only new bytes are searched.
        let full = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let found = (1..=full.len()).find_map(|n| head_end(&full[..n], n - 1));
        assert_eq!(found, Some(full.len()));
    }

    #[test]
    fn a_webhook_post_parses_into_a_request() {
        let h = complete("post /notify/abc?x=1&y=2 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 42\r\n\r\n");
        assert_eq!(h.request.method, "POST");
        assert_eq!(h.request.path, "/notify/abc");
        assert_eq!(h.request.query, "x=1&y=2");
        assert_eq!(
            h.request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(h.body_len, 42);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
    }

    #[test]
    fn connection_close_and_http_1_0_end_the_connection() {
        assert!(!complete("GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n").keep_alive);
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(!complete("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n").expect_continue);
    }

    #[test]
    fn body_lengths_over_the_limit_are_refused_whatever_their_size() {
        for cl in [
            "16385",
            "99999999",
            "100000000000",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "999999999999999999999999999999999999",
        ] {
            assert_eq!(
                refused(&format!("POST / HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n")),
                413,
                "{cl}"
            );
        }
        assert_eq!(body_length(b"16384", 16384), Ok(16384));
        assert_eq!(
            body_length(b"0000000000000000000000000000012", 16384),
            Ok(12)
        );
        assert_eq!(body_length(b"0", 0), Ok(0));
        assert_eq!(body_length(b"1", 0), Err(413));
    }

    #[test]
    fn odd_framing_is_refused() {
        for (head, status) in [
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                400,
            ),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                411,
            ),
            ("GET / HTTP/2.0\r\n\r\n", 400),
            ("GET\r\n\r\n", 400),
            ("G\0T / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        ] {
            assert_eq!(refused(head), status, "{head:?}");
        }
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        assert_eq!(refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
        // The same value twice is one length, as RFC 9110 §8.6 allows.
        let twice = complete("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(twice.body_len, 5);
    }

    #[test]
    fn every_refusal_closes_the_connection() {
        let Parsed::Refuse(r) = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", 10)
        else {
            panic!()
        };
        let bytes = String::from_utf8(response_bytes(&r, false, true)).unwrap();
        assert!(
            bytes.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
            "{bytes}"
        );
        assert_eq!(bytes.matches("Connection: close").count(), 1, "{bytes}");
    }

    #[test]
    fn answers_carry_their_length_and_no_body_for_head() {
        let r = Response::text(405, "use POST\n").with_header("Allow", "HEAD, GET, POST");
        let get = String::from_utf8(response_bytes(&r, false, false)).unwrap();
        assert_eq!(get, "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 9\r\nAllow: HEAD, GET, POST\r\n\r\nuse POST\n");
        let head = String::from_utf8(response_bytes(&r, true, true)).unwrap();
        assert!(
            head.ends_with(
                "Content-Length: 9\r\nAllow: HEAD, GET, POST\r\nConnection: close\r\n\r\n"
            ),
            "{head}"
        );
        let sneaky = Response::text(200, "").with_header("Location", "x\r\nSet-Cookie: y");
        let bytes = String::from_utf8(response_bytes(&sneaky, false, false)).unwrap();
        assert!(!bytes.contains("Set-Cookie"), "{bytes}");
        assert!(
            String::from_utf8(response_bytes(&Response::text(599, ""), false, false))
                .unwrap()
                .starts_with("HTTP/1.1 599 \r\n")
        );
    }
}
