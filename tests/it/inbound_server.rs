//! The inbound server under attack, as the internet can attack it: bodies
//! declared beyond any buffer, resets, floods of idle connections, slow
//! heads and bodies, oversized heads. Each test says what was tried, then
//! checks the relay still answers a notification and is still running.

use crate::fake_withings::FakeWithings;
use crate::support::relay::{wait_for, Relay, TestDir, PATIENCE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A notification for a user the relay does not know: answered 200 with
/// no disk write and no Withings call, so it can be sent at any moment.
const UNKNOWN_USER_FORM: &str = "userid=31337&appli=1&startdate=1&enddate=2";
/// The request deadline is 5 s; a connection it should cut must be gone
/// well within this, even under emulation.
const CUT_WITHIN: Duration = Duration::from_secs(15);

fn start(name: &str) -> (FakeWithings, TestDir, Relay) {
    let fake = FakeWithings::start();
    let dir = TestDir::new(name);
    let relay = Relay::start(&fake, dir.path(), &[]);
    (fake, dir, relay)
}

/// The relay answers a notification and has not exited.
fn assert_serving(relay: &mut Relay) {
    assert_eq!(relay.notify(UNKNOWN_USER_FORM), 200, "{}", relay.log_text());
    assert_eq!(relay.exit_status(), None, "{}", relay.log_text());
}

fn connect(relay: &Relay) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", relay.port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Reads one answer: (status, head, body), the body by its Content-Length
/// (none for HEAD).
fn read_answer(s: &mut TcpStream, head_request: bool) -> (u16, String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            other => panic!(
                "no whole answer ({other:?}): {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    let head = String::from_utf8(raw).unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; if head_request { 0 } else { len }];
    s.read_exact(&mut body).unwrap();
    (status, head, body)
}

/// Whether the relay has closed `s` (after any answer it sent first):
/// reading ends in end of file or a reset within `wait`.
fn closed_by_relay(mut s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    match s.read_to_end(&mut Vec::new()) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Closes with a TCP reset instead of a FIN (SO_LINGER with a zero
/// timeout). std's `set_linger` is unstable and the tests add no crate,
/// so setsockopt is called directly, with the values of Linux on x86,
/// ARM and RISC-V (the hosts the tests run on; MIPS, SPARC and Alpha
/// number these differently).
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        onoff: i32,
        linger: i32,
    }
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        onoff: 1,
        linger: 0,
    };
    let len = std::mem::size_of::<Linger>() as u32;
    // SAFETY: a valid socket and a live struct of the size passed.
    let rc = unsafe { setsockopt(stream.as_raw_fd(), SOL_SOCKET, SO_LINGER, &linger, len) };
    assert_eq!(rc, 0, "setsockopt SO_LINGER");
    drop(stream);
}

#[test]
fn a_body_declared_beyond_any_buffer_gets_413_and_the_relay_lives_on() {
    // Tried: Content-Length 2^64-1 and 10^11 with no body sent. tiny_http
    // answered 413, then tried to drain that much into a buffer and the
    // process aborted.
    let (_fake, _dir, mut relay) = start("huge-length");
    let path = relay.notify_path();
    for length in ["18446744073709551615", "100000000000"] {
        let mut s = connect(&relay);
        let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 413 "), "{length}: {answer:?}");
        assert!(answer.contains("Connection: close\r\n"), "{answer:?}");
        assert_serving(&mut relay);
    }
}

#[test]
fn requests_followed_by_a_reset_do_not_take_the_relay_down() {
    // Tried: 40 times, a whole request and at once a TCP reset, and 20
    // times an answer left unread, which makes the close a reset too.
    // tiny_http unwrapped the peer address, which a connection reset
    // before it is accepted no longer has: the release build (panic =
    // abort) died within the first few dozen.
    let (_fake, _dir, mut relay) = start("reset");
    let request = format!("HEAD {} HTTP/1.1\r\nHost: x\r\n\r\n", relay.notify_path());
    // All sent first, then all reset: some are reset before the server
    // has even accepted them.
    for _ in 0..4 {
        let sent: Vec<TcpStream> = (0..10)
            .map(|_| {
                let mut s = connect(&relay);
                s.write_all(request.as_bytes()).unwrap();
                s
            })
            .collect();
        sent.into_iter().for_each(reset);
    }
    for _ in 0..20 {
        let mut s = connect(&relay);
        s.write_all(request.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(s);
    }
    assert_serving(&mut relay);
}

#[test]
fn idle_connections_beyond_the_cap_are_closed_and_withings_still_gets_in() {
    // Tried: the relay limited to 64 open files, as a tight service limit
    // would, and 200 connections that send nothing. tiny_http ran out of
    // descriptors, its accept loop ended and the process exited 0.
    let fake = FakeWithings::start();
    let dir = TestDir::new("idle-flood");
    let mut relay = Relay::configure(&fake, dir.path(), &[]);
    relay.set_wrapper(&["sh", "-c", "ulimit -n 64 && exec \"$@\"", "sh"]);
    relay.restart();
    let idle: Vec<TcpStream> = (0..200).map(|_| connect(&relay)).collect();

    // Half of 64 descriptors may be connections: the rest are closed at
    // once, long before the 5 s request deadline could close them.
    let started = Instant::now();
    let closed = wait_for("the connections beyond the cap to close", || {
        let closed = idle
            .iter()
            .filter(|s| closed_by_relay(s, Duration::from_millis(1)))
            .count();
        (closed >= 200 - 32).then_some(closed)
    });
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{closed} closed after {:?}",
        started.elapsed()
    );
    // A notification still gets in while the rest are open.
    assert_serving(&mut relay);
    drop(idle);
    assert_serving(&mut relay);
}

#[test]
fn slow_bodies_on_many_connections_do_not_keep_withings_waiting() {
    // Tried: 100 connections, 10 ms apart, announce an 8000-byte body and
    // send it a byte every 200 ms. With tiny_http they held every request slot, and
    // every notification got 503 (or, past 32 of them, no answer at all).
    let (_fake, _dir, mut relay) = start("slow-bodies");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8000\r\n\r\n",
        relay.notify_path()
    );
    let slow: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = connect(&relay);
            s.write_all(head.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(10));
            s
        })
        .collect();
    // Long enough for the server to take up every slow request.
    std::thread::sleep(Duration::from_millis(500));
    let stop = Arc::new(AtomicBool::new(false));
    let dripping = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut slow = slow;
            while !stop.load(Ordering::SeqCst) {
                for s in &mut slow {
                    let _ = s.write(b"a");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    for _ in 0..5 {
        let started = Instant::now();
        assert_serving(&mut relay);
        eprintln!("answered in {:?} beside 100 slow bodies", started.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    dripping.join().unwrap();
    assert_serving(&mut relay);
}

#[test]
fn an_oversized_head_gets_431_and_is_not_read_to_the_end() {
    // Tried: a head of 40 headers of 500 bytes, and one header line of
    // 64 MiB, which tiny_http read whole into memory (RSS 149 MB).
    let (_fake, _dir, mut relay) = start("big-head");
    let path = relay.notify_path();
    let headers: String = (0..40)
        .map(|i| format!("X-Filler-{i}: {}\r\n", "a".repeat(500)))
        .collect();
    let mut s = connect(&relay);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");

    const LINE: usize = 64 << 20;
    let mut s = connect(&relay);
    let mut writer = s.try_clone().unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Long: ");
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = head.len();
        writer.write_all(head.as_bytes())?;
        while sent < LINE {
            writer.write_all(&chunk)?;
            sent += chunk.len();
        }
        Ok::<usize, std::io::Error>(sent)
    });
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    let sent = sender.join().unwrap();
    assert!(
        sent.is_err(),
        "the relay read the whole 64 MiB line ({sent:?}) instead of closing"
    );
    assert_serving(&mut relay);
}

#[test]
fn a_request_that_stops_or_drips_is_cut_at_its_deadline() {
    // Tried: half a head and then nothing; and a head sent one byte every
    // half second, which a per-read timeout would never cut. tiny_http
    // kept both open for ever.
    let (_fake, _dir, mut relay) = start("slowloris");
    let mut half = connect(&relay);
    half.write_all(b"POST /notify/x HTTP/1.1\r\nHost: ")
        .unwrap();
    let mut drip = connect(&relay);
    drip.write_all(b"POST /notify/x HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let (mut half_cut, mut drip_cut) = (None, None);
    while started.elapsed() < CUT_WITHIN && (half_cut.is_none() || drip_cut.is_none()) {
        let _ = drip.write(b"a");
        if half_cut.is_none() && closed_by_relay(&half, Duration::from_millis(250)) {
            half_cut = Some(started.elapsed());
        }
        if drip_cut.is_none() && closed_by_relay(&drip, Duration::from_millis(250)) {
            drip_cut = Some(started.elapsed());
        }
    }
    assert!(
        half_cut.is_some(),
        "half a head was not cut within {CUT_WITHIN:?}"
    );
    assert!(
        drip_cut.is_some(),
        "a dripping head was not cut within {CUT_WITHIN:?}"
    );
    eprintln!("cut after {half_cut:?} (silent) and {drip_cut:?} (dripping)");
    assert_serving(&mut relay);
}

#[test]
fn keep_alive_carries_two_requests_and_idle_ones_are_closed() {
    // Tried: a HEAD then a GET on one connection (HTTP/1.1 keeps it open
    // by default), then silence. tiny_http never closed the idle connection.
    let (_fake, _dir, mut relay) = start("keep-alive");
    let mut s = connect(&relay);
    let hook = relay.notify_path();
    s.write_all(format!("HEAD {hook} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let (status, head, body) = read_answer(&mut s, true);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Length: 3\r\n"), "{head}");
    assert!(body.is_empty());
    s.write_all(b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_answer(&mut s, false);
    assert_eq!(status, 404, "{head}");
    assert_eq!(body, b"not found\n");

    let idle_since = Instant::now();
    assert!(
        closed_by_relay(&s, CUT_WITHIN),
        "an idle kept-alive connection was still open after {CUT_WITHIN:?}"
    );
    eprintln!("idle connection closed after {:?}", idle_since.elapsed());

    // Connection: close is honoured.
    let mut s = connect(&relay);
    s.write_all(format!("HEAD {hook} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let (status, head, _) = read_answer(&mut s, true);
    assert_eq!(status, 200);
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(closed_by_relay(&s, Duration::from_secs(5)));
    assert_serving(&mut relay);
}
