//! Certificates from a real ACME server: Debian's pebble
//! (`support/pebble.rs`), validating TLS-ALPN-01 against the relay's own
//! TLS listener, the real binary on both sides.

use crate::fake_withings::{FakeWithings, Group};
use crate::support::pebble::{client_config, https, Pebble, PebbleOptions, RateLimitedCa};
use crate::support::relay::{free_port, notification_form, start_linked, Relay, TestDir};
use std::path::Path;

const DOMAIN: &str = "relay.example.org";
const USER: u64 = 7_070_001;

/// The relay's flags for https on `tls_port` with a certificate from `pebble`.
fn acme_args(pebble: &Pebble, tls_port: u16) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--tls-domain".into(),
        DOMAIN.into(),
        "--tls-listen".into(),
        format!("127.0.0.1:{tls_port}"),
    ];
    args.extend(pebble.relay_args());
    args
}

/// A fake Withings, a test dir, a pebble that validates on a free port,
/// and the relay arguments that point ACME at it for [`DOMAIN`] there.
fn with_pebble(
    name: &str,
    options: PebbleOptions,
) -> (FakeWithings, TestDir, u16, Pebble, Vec<String>) {
    let fake = FakeWithings::start();
    let dir = TestDir::new(name);
    let tls_port = free_port();
    let pebble = Pebble::start(dir.path(), tls_port, options);
    let args = acme_args(&pebble, tls_port);
    (fake, dir, tls_port, pebble, args)
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn certificate_file(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("tls/certificate.pem")
}

/// Tried: a relay with no certificate at all, pebble in front, a linked
/// user. It must obtain a certificate on its own, serve it on its TLS
/// port (verified against pebble's issuing root, for the TLS-ALPN-01
/// answer is served only to acme-tls/1), accept Withings' notification
/// over that https, and relay the weigh-in; the key and chain are one
/// private file.
#[test]
fn a_relay_without_a_certificate_obtains_one_and_serves_https_with_it() {
    let (fake, dir, tls_port, pebble, args) = with_pebble("acme-issue", PebbleOptions::default());
    let relay = start_linked(&fake, &dir, USER, &refs(&args));
    relay.wait_log("acme: new certificate for relay.example.org installed");
    let config = client_config(&pebble.issuing_root());
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 71_250, -3));
    let (status, body, _) = https(
        &config,
        DOMAIN,
        tls_port,
        "POST",
        &relay.notify_path(),
        &notification_form(&fake, USER),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let lines = relay.wait_lines(1);
    assert!(lines[0].contains("71.25"), "{lines:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(certificate_file(&relay.state_dir))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(pebble.orders(), 1);
}

/// Tried: a relay restarted with a good certificate on disk. It must serve
/// that certificate at once and place no new order.
#[test]
fn a_restart_with_a_valid_certificate_orders_nothing() {
    let (fake, dir, tls_port, pebble, args) = with_pebble("acme-restart", PebbleOptions::default());
    let mut relay = Relay::start(&fake, dir.path(), &refs(&args));
    relay.wait_log("acme: new certificate for relay.example.org installed");
    let stored = std::fs::read(certificate_file(&relay.state_dir)).unwrap();
    relay.kill9();
    relay.restart();
    relay.wait_log("acme: serving the stored certificate for relay.example.org");
    let config = client_config(&pebble.issuing_root());
    let (status, _, _) = https(&config, DOMAIN, tls_port, "GET", "/nothing", "").unwrap();
    assert_eq!(status, 404, "served over https with the stored certificate");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(pebble.orders(), 1, "{}", relay.log_text());
    assert_eq!(
        std::fs::read(certificate_file(&relay.state_dir)).unwrap(),
        stored
    );
}

/// Tried: a domain pebble refuses to issue for (its blocklist). The relay
/// must keep serving plain HTTP, log why the CA refused and when it will
/// try again, and store that time so a restart does not ask sooner.
#[test]
fn a_refused_domain_is_reported_and_not_asked_again_at_once() {
    let options = PebbleOptions {
        blocklist: vec![DOMAIN.into()],
        ..PebbleOptions::default()
    };
    let (fake, dir, _, pebble, args) = with_pebble("acme-refused", options);
    let mut relay = Relay::start(&fake, dir.path(), &refs(&args));
    relay.wait_log("acme: could not obtain a certificate for relay.example.org");
    let log = relay.log_text();
    assert!(log.contains("rejectedIdentifier"), "{log}");
    assert!(log.contains("next attempt at"), "{log}");
    assert!(log.contains("no certificate yet"), "{log}");
    assert_eq!(
        crate::support::relay::http(relay.port, "GET", "/nothing", &[], b"").0,
        404
    );
    let stored = stored_not_before(&relay);
    assert_eq!(stored["failures"], 1);
    relay.kill9();
    relay.restart();
    relay.wait_log("the CA is not asked again before");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(pebble.orders(), 0, "the refused newOrder placed none");
    assert_eq!(
        relay.log_text().matches("could not obtain").count(),
        1,
        "the restart waited: {}",
        relay.log_text()
    );
}

/// Tried: the CA unreachable at start (nothing listens at --acme-url).
/// The plain listener must still serve, the log must say the CA is
/// unreachable and when the next attempt is, a minute later.
#[test]
fn an_unreachable_ca_leaves_plain_http_serving_and_backs_off() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("acme-unreachable");
    let tls_port = free_port();
    let args: Vec<String> = vec![
        "--tls-domain".into(),
        DOMAIN.into(),
        "--tls-listen".into(),
        format!("127.0.0.1:{tls_port}"),
        "--acme-url".into(),
        format!("https://127.0.0.1:{}/dir", free_port()),
    ];
    let relay = Relay::start(&fake, dir.path(), &refs(&args));
    relay.wait_log("acme: could not obtain a certificate");
    let log = relay.log_text();
    assert!(log.contains("the CA is unreachable (directory)"), "{log}");
    assert!(log.contains("1 failure(s) in a row"), "{log}");
    assert_eq!(
        crate::support::relay::http(relay.port, "GET", "/nothing", &[], b"").0,
        404
    );
    let stored = stored_not_before(&relay);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let wait = stored["not_before"].as_i64().unwrap() - now;
    assert!((50..=61).contains(&wait), "backs off a minute: {wait}");
}

/// Tried: a certificate pebble issues for 30 s, renewed from second 20
/// while a client connects over and over. Every handshake must succeed,
/// and the served certificate must change without a restart.
#[test]
fn a_short_lived_certificate_is_renewed_without_a_failed_handshake() {
    let options = PebbleOptions {
        validity_secs: Some(30),
        ..PebbleOptions::default()
    };
    let (fake, dir, tls_port, pebble, args) = with_pebble("acme-renew", options);
    let relay = Relay::start(&fake, dir.path(), &refs(&args));
    relay.wait_log("acme: new certificate for relay.example.org installed");
    let config = client_config(&pebble.issuing_root());
    let first = https(&config, DOMAIN, tls_port, "GET", "/x", "").unwrap().2;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    let mut handshakes = 0;
    let renewed = loop {
        let (status, _, leaf) = https(&config, DOMAIN, tls_port, "GET", "/x", "")
            .unwrap_or_else(|e| panic!("handshake {handshakes} failed: {e}"));
        assert_eq!(status, 404);
        handshakes += 1;
        if leaf != first {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(renewed, "not renewed: {}", relay.log_text());
    assert!(pebble.orders() >= 2);
}

/// Tried: pebble refusing a quarter of all good nonces with `badNonce`. The
/// relay must retry each refused request with the nonce the refusal
/// carries and still obtain its certificate. An issuance makes only about
/// eight nonce-bearing requests, so pebble refuses none of them about one
/// time in ten: such a run proves nothing about the retry, and the
/// issuance is done again with a fresh state dir (at most four times).
#[test]
fn refused_nonces_are_retried_with_the_cas_fresh_one() {
    for _ in 0..4 {
        let options = PebbleOptions {
            nonce_reject: 25,
            ..PebbleOptions::default()
        };
        let (fake, dir, _, _pebble, args) = with_pebble("acme-nonce", options);
        let mut relay = Relay::configure(&fake, dir.path(), &refs(&args));
        relay.restart();
        // Three refusals in a row (1 in 64 per request) fail an attempt,
        // which is retried a minute later: give it that long.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
        while !relay
            .log_text()
            .contains("acme: new certificate for relay.example.org installed")
        {
            assert!(std::time::Instant::now() < deadline, "{}", relay.log_text());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        if relay
            .log_text()
            .contains("the CA refused the nonce; trying again with its new one")
        {
            return;
        }
    }
    panic!("pebble refused no nonce in four issuances: PEBBLE_WFE_NONCEREJECT was not applied");
}

/// Tried: the relay killed with SIGKILL at many instants of an issuance.
/// Each time, the certificate file must be absent or a whole key-and-chain
/// pair, and the next start must end with a certificate served.
#[test]
fn a_kill_during_issuance_leaves_no_torn_file_and_the_next_start_recovers() {
    let (fake, dir, tls_port, pebble, args) = with_pebble("acme-kill", PebbleOptions::default());
    let mut relay = Relay::start(&fake, dir.path(), &refs(&args));
    let path = certificate_file(&relay.state_dir);
    for delay_ms in [0u64, 20, 50, 100, 200, 400] {
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        relay.kill9();
        if let Ok(text) = std::fs::read_to_string(&path) {
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
            assert!(
                text.trim_end().ends_with("-----END CERTIFICATE-----"),
                "{text}"
            );
        }
        // A refused or cut-off attempt may have stored a backoff; this
        // test is about files, so let the next start try at once.
        let _ = std::fs::remove_file(relay.state_dir.join("acme/not-before.json"));
        relay.restart();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let config = client_config(&pebble.issuing_root());
    loop {
        if https(&config, DOMAIN, tls_port, "GET", "/x", "").is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", relay.log_text());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let leftovers: Vec<_> = std::fs::read_dir(relay.state_dir.join("tls"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["certificate.pem"], "no temp file kept");
}

/// Tried: a CA that answers the account request with HTTP 429,
/// `rateLimited` and `Retry-After: 3600`. The relay must not ask again
/// within the hour, neither in the same run nor after a restart, and the
/// log must say until when it waits.
#[test]
fn a_rate_limit_is_respected_across_restarts() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("acme-ratelimit");
    let ca = RateLimitedCa::start(dir.path(), 3600);
    let mut args: Vec<String> = vec![
        "--tls-domain".into(),
        DOMAIN.into(),
        "--tls-listen".into(),
        format!("127.0.0.1:{}", free_port()),
    ];
    args.extend(ca.relay_args());
    let mut relay = Relay::start(&fake, dir.path(), &refs(&args));
    relay.wait_log("acme: could not obtain a certificate");
    let log = relay.log_text();
    assert!(log.contains("the CA rate-limits us (newAccount)"), "{log}");
    assert!(log.contains("too many new registrations"), "{log}");
    let stored = stored_not_before(&relay);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let wait = stored["not_before"].as_i64().unwrap() - now;
    assert!(
        (3590..=3601).contains(&wait),
        "waits for Retry-After: {wait}"
    );
    let limited = |requests: &[String]| {
        requests
            .iter()
            .filter(|r| r.starts_with("POST /account"))
            .count()
    };
    assert_eq!(limited(&ca.requests()), 1);
    relay.kill9();
    let before_restart = ca.requests().len();
    relay.restart();
    relay.wait_log("the CA is not asked again before");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        ca.requests().len(),
        before_restart,
        "the restart asked the CA: {:?}",
        ca.requests()
    );
}

/// What the relay keeps of its next ACME attempt (`acme/not-before.json`).
fn stored_not_before(relay: &Relay) -> serde_json::Value {
    let path = relay.state_dir.join("acme/not-before.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
