//! `make bench`: how fast the webhook acknowledges, and how much memory the
//! relay holds, measured on the release binary against the fake Withings.
//! Prints figures; asserts nothing about them (targets are judged by
//! people reading these numbers, not by flaky timed tests).

// The integration tests' fake Withings and harness: a bench uses a few of
// their helpers, and the test crate checks the rest are used.
#[allow(dead_code)]
#[path = "../tests/it/fake_withings/mod.rs"]
mod fake_withings;
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use fake_withings::{FakeWithings, Group};
use std::time::{Duration, Instant};
use support::relay::{http, start_linked, wait_for, TestDir};

const USER: u64 = 8_080_001;
const ROUNDS: usize = 2000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure(label: &str, mut one: impl FnMut() -> u16) {
    let mut took = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        assert_eq!(one(), 200, "{label}");
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "{label:<44} n={ROUNDS}  p50={:>7.3} ms  p99={:>7.3} ms  max={:>7.3} ms",
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        percentile(&took, 0.99).as_secs_f64() * 1e3,
        took.last().unwrap().as_secs_f64() * 1e3
    );
}

fn proc_status(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let bin = support::relay::bin();
    println!(
        "binary: {} ({} bytes)",
        bin.display(),
        std::fs::metadata(&bin).unwrap().len()
    );
    let fake = FakeWithings::start();
    fake.set_rate_limit(usize::MAX);
    let dir = TestDir::new("bench");
    let relay = start_linked(&fake, &dir, USER, &["--log-level", "warn"]);
    let pid = relay.pid().unwrap();
    println!("after start: VmRSS {}", proc_status(pid, "VmRSS:"));

    let form = |u: u64| format!("userid={u}&appli=1&startdate=1&enddate=2");
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let path = relay.notify_path();
    measure("notification, unknown user (no disk write)", || {
        http(relay.port, "POST", &path, &headers, form(31337).as_bytes()).0
    });
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 72_500, -3));
    measure("notification, linked user (fsynced queue)", || {
        http(relay.port, "POST", &path, &headers, form(USER).as_bytes()).0
    });
    measure("HEAD check of the webhook", || {
        http(relay.port, "HEAD", &path, &[], b"").0
    });
    wait_for("the queue to drain", || (relay.queued() == 0).then_some(()));
    println!(
        "after {} requests: VmRSS {}, peak VmHWM {}, threads {}",
        3 * ROUNDS,
        proc_status(pid, "VmRSS:"),
        proc_status(pid, "VmHWM:"),
        proc_status(pid, "Threads:")
    );
    println!("lines emitted: {} (expected 1)", relay.lines().len());
}
