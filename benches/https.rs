//! `make bench-https`: the relay's own https listener, on the release
//! binary (or `RELAY_BIN`, under `RELAY_RUNNER` such as qemu-mipsel-static)
//! against the fake Withings, with a certificate from a test CA (P-256).
//! Prints the time of a full TLS 1.3 and TLS 1.2 handshake, of a webhook
//! acknowledged over https on a new connection (handshake included) and on
//! a kept-alive one, and the relay's memory with 100 idle TLS connections
//! (handshake done, no request yet) open; then the worst of 20 webhooks
//! over https while 1000 stalled handshakes are held open (target: within
//! Withings' 2 s, facts sheet §3.4). Asserts nothing: people judge the
//! figures. `BENCH_ROUNDS` (default 300) sets the rounds per figure.

// The integration tests' fake Withings and harness: a bench uses a few of
// their helpers, and the test crate checks the rest are used.
#[allow(dead_code)]
#[path = "../tests/it/fake_withings/mod.rs"]
mod fake_withings;
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use fake_withings::FakeWithings;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::certs::make_certificates;
use support::https::{client, Https, TLS12, TLS13};
use support::relay::{free_port, notification_form, start_linked, wait_for, TestDir};

const USER: u64 = 8_080_003;
const IDLE: usize = 100;
const STALLED: usize = 1000;
const NOTIFICATIONS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure(label: &str, rounds: usize, mut one: impl FnMut()) {
    let mut took = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        one();
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "{label:<46} n={rounds}  p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        percentile(&took, 0.99).as_secs_f64() * 1e3,
        took.last().unwrap().as_secs_f64() * 1e3
    );
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let bin = support::relay::bin();
    println!(
        "binary: {} ({} bytes){}",
        bin.display(),
        std::fs::metadata(&bin).unwrap().len(),
        std::env::var("RELAY_RUNNER")
            .map(|r| format!(", run by {r}"))
            .unwrap_or_default()
    );
    let fake = FakeWithings::start();
    fake.set_rate_limit(usize::MAX);
    let dir = TestDir::new("bench-https");
    make_certificates(dir.path());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let cert = dir.path().join("server.pem").display().to_string();
    let key = dir.path().join("server.key").display().to_string();
    let args = [
        "--log-level",
        "warn",
        "--tls-listen",
        &listen,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let relay = start_linked(&fake, &dir, USER, &args);
    wait_for("the https listener", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let pid = relay.pid().unwrap();
    let ca = dir.path().join("ca.pem");
    let tls13 = client(&ca, &TLS13, &[b"http/1.1"]);
    let tls12 = client(&ca, &TLS12, &[b"http/1.1"]);
    let path = relay.notify_path();
    // An unknown user: acknowledged without a disk write, so the figure
    // is the https path alone (the plain bench has the fsync).
    let unknown = "userid=31337&appli=1&startdate=1&enddate=2";
    let webhook = |https: &mut Https| {
        let (status, _) = https.request("POST", &path, unknown.as_bytes()).unwrap();
        assert_eq!(status, 200);
    };
    // Warm up (page faults, the session cache).
    for _ in 0..5 {
        webhook(&mut Https::connect(&tls13, port, "localhost").unwrap());
    }

    measure("TLS 1.3 handshake (P-256 certificate)", rounds, || {
        Https::connect(&tls13, port, "localhost").unwrap();
    });
    measure("TLS 1.2 handshake (P-256 certificate)", rounds, || {
        Https::connect(&tls12, port, "localhost").unwrap();
    });
    measure("webhook ack over https, new connection", rounds, || {
        webhook(&mut Https::connect(&tls13, port, "localhost").unwrap())
    });
    let mut kept = Https::connect(&tls13, port, "localhost").unwrap();
    measure("webhook ack over https, kept-alive", rounds, || {
        webhook(&mut kept)
    });
    drop(kept);
    let form = notification_form(&fake, USER);
    let mut linked = Https::connect(&tls13, port, "localhost").unwrap();
    measure(
        "webhook ack over https, linked (fsync)",
        rounds.min(100),
        || {
            let (status, _) = linked.request("POST", &path, form.as_bytes()).unwrap();
            assert_eq!(status, 200);
        },
    );
    drop(linked);

    // Idle connections close after 5 s: let the earlier ones go first.
    std::thread::sleep(Duration::from_secs(6));
    let before = vm_rss_kib(pid);
    let started = Instant::now();
    let idle: Vec<Https> = (0..IDLE)
        .map(|_| Https::connect(&tls13, port, "localhost").unwrap())
        .collect();
    let opened = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let with_idle = vm_rss_kib(pid);
    println!(
        "VmRSS: {before} KiB before, {with_idle} KiB with {IDLE} idle TLS connections (+{} KiB, {:.1} KiB each; opened in {:.0} ms)",
        with_idle.saturating_sub(before),
        with_idle.saturating_sub(before) as f64 / IDLE as f64,
        opened.as_secs_f64() * 1e3
    );
    drop(idle);
    std::thread::sleep(Duration::from_secs(6));
    println!("VmRSS once they closed: {} KiB", vm_rss_kib(pid));

    // 1000 stalled handshakes (half silent, half with half a ClientHello),
    // held open while notifications arrive over https.
    let hello = support::https::client_hello(&tls13, "localhost");
    let stalled: Vec<TcpStream> = (0..STALLED)
        .filter_map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            if i % 2 == 1 {
                let _ = s.write_all(&hello[..hello.len() / 2]);
            }
            Some(s)
        })
        .collect();
    let opened = stalled.len();
    measure(
        &format!("webhook ack over https, {opened} stalled"),
        NOTIFICATIONS,
        || webhook(&mut Https::connect(&tls13, port, "localhost").unwrap()),
    );
    println!("VmRSS with them: {} KiB", vm_rss_kib(pid));
    drop(stalled);
}
