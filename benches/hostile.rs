//! `make bench-hostile`: the release binary under attack on 127.0.0.1,
//! against the fake Withings. For 20 s, 1000 slowloris connections (a
//! header byte a second), 100 slow bodies (a body byte a second) and one
//! 64 MiB header line, every attacker reconnecting as soon as the relay
//! closes it; meanwhile 20 notifications, as Withings sends them. Prints
//! the worst notification latency (target: within Withings' 2 s, facts
//! sheet §3.4), the peak memory and thread count (targets: 16 MB, 64
//! threads) and the memory once the attack is over (target: within 2 MB
//! of idle). Asserts nothing: people judge the figures.

// The integration tests' fake Withings and harness: a bench uses a few of
// their helpers, and the test crate checks the rest are used.
#[allow(dead_code)]
#[path = "../tests/it/fake_withings/mod.rs"]
mod fake_withings;
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use fake_withings::FakeWithings;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::relay::{notification_form, start_linked, TestDir};

const USER: u64 = 8_080_002;
const SLOWLORIS: usize = 1000;
const SLOW_BODIES: usize = 100;
const ATTACKER_THREADS: usize = 10;
const ATTACK_FOR: Duration = Duration::from_secs(20);
const NOTIFICATIONS: usize = 20;
const HUGE_LINE: usize = 64 << 20;

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn open_files_soft_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0)
}

/// One attacker connection: what it sends first, then one byte a second.
struct Slow {
    opening: Vec<u8>,
    drip: u8,
    stream: Option<TcpStream>,
}

/// Keeps its share of slow connections open until `stop`, reconnecting
/// each one the relay closes; counts the connections it opened.
fn attack(addr: SocketAddr, mut slow: Vec<Slow>, stop: &AtomicBool, opened: &AtomicUsize) {
    while !stop.load(Ordering::SeqCst) {
        let round = Instant::now();
        for s in &mut slow {
            let alive = match &mut s.stream {
                Some(stream) => stream.write_all(&[s.drip]).is_ok(),
                None => false,
            };
            if !alive {
                s.stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    .ok()
                    .filter(|c| (&*c).write_all(&s.opening).is_ok());
                opened.fetch_add(1, Ordering::SeqCst);
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(round.elapsed()));
    }
}

/// Sends one 64 MiB header line; returns (bytes the relay let it write,
/// the relay's answer).
fn huge_header(addr: SocketAddr) -> (usize, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ";
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        if writer.write_all(head).is_ok() {
            sent = head.len();
            while sent < HUGE_LINE && writer.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
        }
        sent
    });
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("(none)")
        .to_string();
    (sender.join().unwrap(), status)
}

fn main() {
    let needed = (SLOWLORIS + SLOW_BODIES + 200) as u64;
    if open_files_soft_limit() < needed {
        eprintln!(
            "the bench needs {needed} open files (ulimit -n is {}): run `make bench-hostile`, which raises it",
            open_files_soft_limit()
        );
        std::process::exit(1);
    }
    let bin = support::relay::bin();
    println!(
        "binary: {} ({} bytes)",
        bin.display(),
        std::fs::metadata(&bin).unwrap().len()
    );
    let fake = FakeWithings::start();
    fake.set_rate_limit(usize::MAX);
    let dir = TestDir::new("bench-hostile");
    let relay = start_linked(&fake, &dir, USER, &["--log-level", "warn"]);
    let pid = relay.pid().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], relay.port).into();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = proc_status(pid, "VmRSS:");
    println!(
        "idle: VmRSS {idle_rss} kB, threads {}",
        proc_status(pid, "Threads:")
    );

    let stop = Arc::new(AtomicBool::new(false));
    let peaks = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut rss, mut threads) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                rss = rss.max(proc_status(pid, "VmRSS:"));
                threads = threads.max(proc_status(pid, "Threads:"));
                std::thread::sleep(Duration::from_millis(20));
            }
            (rss, threads)
        })
    };
    let opened = Arc::new(AtomicUsize::new(0));
    let slowloris = b"GET /notify/x HTTP/1.1\r\nHost: x\r\n".to_vec();
    let slow_body = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8000\r\n\r\n",
        relay.notify_path()
    )
    .into_bytes();
    let attackers: Vec<_> = (0..ATTACKER_THREADS)
        .map(|_| {
            let share = (0..SLOWLORIS / ATTACKER_THREADS)
                .map(|_| (&slowloris, b'x'))
                .chain((0..SLOW_BODIES / ATTACKER_THREADS).map(|_| (&slow_body, b'a')))
                .map(|(opening, drip)| Slow {
                    opening: opening.clone(),
                    drip,
                    stream: None,
                })
                .collect();
            let (stop, opened) = (Arc::clone(&stop), Arc::clone(&opened));
            std::thread::spawn(move || attack(addr, share, &stop, &opened))
        })
        .collect();
    let huge = std::thread::spawn(move || huge_header(addr));
    let attack_started = Instant::now();

    // Let the flood build up, then notify every half second.
    std::thread::sleep(Duration::from_secs(3));
    let mut took = Vec::new();
    let mut refused = 0;
    for _ in 0..NOTIFICATIONS {
        let start = Instant::now();
        if relay.notify(&notification_form(&fake, USER)) != 200 {
            refused += 1;
        }
        took.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(ATTACK_FOR.saturating_sub(attack_started.elapsed()));
    stop.store(true, Ordering::SeqCst);
    for a in attackers {
        a.join().unwrap();
    }
    let (peak_rss, peak_threads) = peaks.join().unwrap();
    let (huge_sent, huge_answer) = huge.join().unwrap();

    // The relay closes what the attackers left within its 5 s deadline.
    std::thread::sleep(Duration::from_secs(7));
    let after_rss = proc_status(pid, "VmRSS:");
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "attack: {SLOWLORIS} slowloris + {SLOW_BODIES} slow bodies for {} s, reconnecting when closed ({} connections opened), and one 64 MiB header line",
        ATTACK_FOR.as_secs(),
        opened.load(Ordering::SeqCst)
    );
    println!(
        "64 MiB header line: {huge_answer:?} after the client wrote {:.1} MiB of it",
        huge_sent as f64 / (1 << 20) as f64
    );
    println!(
        "notifications: {}/{NOTIFICATIONS} answered 200; latency p50 {:.1} ms, worst {:.1} ms (target <= 2000 ms)",
        NOTIFICATIONS - refused,
        ms(took[took.len() / 2]),
        ms(took[took.len() - 1])
    );
    println!(
        "peak: VmRSS {peak_rss} kB, VmHWM {} kB (target <= 16384 kB); threads {peak_threads} (target <= 64)",
        proc_status(pid, "VmHWM:")
    );
    println!(
        "after: VmRSS {after_rss} kB, {:+} kB from idle (target within 2048 kB); threads {}",
        after_rss as i64 - idle_rss as i64,
        proc_status(pid, "Threads:")
    );
}
