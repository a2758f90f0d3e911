//! The thread that keeps the TLS listener's certificate: `serve` starts it
//! when `--tls-domain` is given without `--tls-cert`. At start it installs
//! the stored certificate if it is still good for the domain; it obtains
//! one when there is none, or when the stored one is due (a third of its
//! validity left, `schedule.rs`); it then sleeps until the next renewal.
//!
//! A failure keeps the certificate being served, logs an error saying what
//! went wrong and when that certificate expires, and backs off (1 min
//! doubling to a day, never before the CA's Retry-After). The earliest
//! next attempt is stored (`acme/not-before.json`), so restarting the
//! relay, or a restart loop, does not bring the CA an earlier request.

use super::client::{Client, Http};
use super::files::{AcmeFiles, NotBefore};
use super::schedule;
use crate::clock::Clock;
use crate::error::{AcmeKind, Error, Result};
use crate::inbound::tls::CertSlot;
use crate::timefmt::rfc3339_utc;
use crate::x509::cert_info;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The longest single sleep: the clock is read again after it, so a router
/// whose clock jumps (NTP after boot) is not left asleep for months.
const MAX_NAP_SECS: i64 = 30;

/// What `serve`'s `--acme-*` flags and `--tls-domain` say.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    pub domain: String,
    /// `--acme-url`: the CA's directory.
    pub directory: String,
    /// `--acme-email`: the account's contact, if any.
    pub email: Option<String>,
    /// `--acme-ca-file`, read: trusted for the CA's own https besides the
    /// bundled roots.
    pub extra_ca: Vec<CertificateDer<'static>>,
}

/// The validity of the certificate being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Serving {
    not_before: i64,
    not_after: i64,
    seed: u64,
}

/// Pure: when to next call the CA, given the certificate being served
/// (None: there is none) and the stored earliest attempt.
fn next_attempt(serving: Option<Serving>, not_before: Option<i64>, now: i64) -> i64 {
    let due = serving.map_or(now, |s| {
        schedule::renew_at(s.not_before, s.not_after, s.seed)
    });
    not_before.map_or(due, |nb| due.max(nb))
}

/// A stable jitter seed for one certificate: the first bytes of its hash,
/// so relays spread out and a restart keeps the same renewal time.
fn seed_of(leaf: &[u8]) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, leaf);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

pub struct Manager {
    settings: AcmeSettings,
    files: AcmeFiles,
    http: Http,
    slot: CertSlot,
    clock: Arc<dyn Clock>,
    serving: Option<Serving>,
}

impl Manager {
    /// Opens the ACME files and installs the stored certificate into
    /// `slot` if it is still good for the domain. Never calls the CA.
    pub fn open(
        settings: AcmeSettings,
        state_dir: &Path,
        slot: CertSlot,
        clock: Arc<dyn Clock>,
    ) -> Result<Manager> {
        let files = AcmeFiles::open(state_dir)?;
        let http = Http::new(settings.extra_ca.clone());
        let mut manager = Manager {
            settings,
            files,
            http,
            slot,
            clock,
            serving: None,
        };
        match manager.install_stored() {
            Ok(()) => {}
            // A damaged file is not a reason to refuse to serve: a new
            // certificate replaces it.
            Err(e) => log::error!("acme: {e}"),
        }
        if let Ok(Some(stored)) = manager.files.not_before() {
            if stored.not_before > manager.clock.now() {
                log::warn!(
                    "acme: an earlier attempt failed ({}); the CA is not asked again before {}",
                    stored.reason,
                    rfc3339_utc(stored.not_before)
                );
            }
        }
        Ok(manager)
    }

    fn install_stored(&mut self) -> Result<()> {
        let Some(pair) = self.files.certificate()? else {
            log::info!(
                "acme: no certificate for {} yet; obtaining one from {}",
                self.settings.domain,
                self.settings.directory
            );
            return Ok(());
        };
        let path = self.files.certificate_path();
        // `certificate()` refuses a file without a certificate, so there
        // is a leaf.
        let leaf = pair.chain[0].as_ref().to_vec();
        let info = cert_info(&leaf).ok_or_else(|| Error::Acme {
            step: "read the certificate",
            kind: AcmeKind::Malformed("the stored certificate does not parse".into()),
        })?;
        let domain = &self.settings.domain;
        if !info
            .dns_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(domain))
        {
            log::warn!(
                "acme: {} is for {}, not --tls-domain {domain}; obtaining a new one",
                path.display(),
                info.dns_names.join(", ")
            );
            return Ok(());
        }
        if info.not_after <= self.clock.now() {
            log::warn!(
                "acme: {} expired {}; obtaining a new one",
                path.display(),
                rfc3339_utc(info.not_after)
            );
            return Ok(());
        }
        self.slot.install(pair.chain, pair.key)?;
        let serving = Serving {
            not_before: info.not_before,
            not_after: info.not_after,
            seed: seed_of(&leaf),
        };
        self.serving = Some(serving);
        log::info!(
            "acme: serving the stored certificate for {domain}, valid until {}; renewal from {}",
            rfc3339_utc(info.not_after),
            rfc3339_utc(next_attempt(Some(serving), None, 0))
        );
        Ok(())
    }

    /// Starts the thread.
    pub fn start(self) -> Result<()> {
        std::thread::Builder::new()
            .name("acme".into())
            .spawn(move || self.run())
            .map(|_| ())
            .map_err(|e| Error::Listen(format!("cannot start the ACME thread: {e}")))
    }

    fn run(mut self) {
        loop {
            let stored = match self.files.not_before() {
                Ok(nb) => nb,
                Err(e) => {
                    log::error!("acme: {e}");
                    None
                }
            };
            let now = self.clock.now();
            let at = next_attempt(self.serving, stored.as_ref().map(|s| s.not_before), now);
            if at > now {
                let nap = (at - now).min(MAX_NAP_SECS);
                std::thread::sleep(Duration::from_secs(nap as u64));
                continue;
            }
            let failures = stored.map_or(0, |s| s.failures);
            self.attempt(failures);
        }
    }

    /// One issuance; on success installs and stores it, on failure stores
    /// the backoff and says so.
    fn attempt(&mut self, failures: u32) {
        let domain = self.settings.domain.clone();
        match self.obtain() {
            Ok(serving) => {
                self.serving = Some(serving);
                if let Err(e) = self.files.clear_not_before() {
                    log::error!("acme: {e}");
                }
                log::info!(
                    "acme: new certificate for {domain} installed, valid until {}; renewal from {}",
                    rfc3339_utc(serving.not_after),
                    rfc3339_utc(next_attempt(Some(serving), None, 0))
                );
            }
            Err(e) => {
                let failures = failures.saturating_add(1);
                let now = self.clock.now();
                // RFC 8555 §7.3.3: a CA that lost or deactivated the
                // account says so; the next attempt registers again.
                if let Error::Acme {
                    kind: AcmeKind::Refused { problem, .. },
                    ..
                } = &e
                {
                    if problem == "accountDoesNotExist" || problem == "unauthorized" {
                        if let Err(e) = self.files.forget_account() {
                            log::error!("acme: {e}");
                        }
                    }
                }
                let retry_after = match &e {
                    Error::Acme {
                        kind: AcmeKind::RateLimited { until, .. },
                        ..
                    } => *until,
                    _ => None,
                };
                let next = schedule::after_failure(now, failures, retry_after);
                let serving = match self.serving {
                    Some(s) => format!(
                        "still serving the current certificate, which expires {}",
                        rfc3339_utc(s.not_after)
                    ),
                    None => "no certificate yet: https handshakes fail until one is obtained (plain HTTP still serves)".into(),
                };
                // Kept before it is announced: whoever reads the log and
                // restarts the relay finds the wait already on disk.
                let stored = NotBefore {
                    not_before: next,
                    failures,
                    reason: e.to_string(),
                };
                let saved = self.files.save_not_before(&stored);
                log::error!(
                    "acme: could not obtain a certificate for {domain}: {e}; {serving}; next attempt at {} ({failures} failure(s) in a row)",
                    rfc3339_utc(next)
                );
                if let Err(e) = saved {
                    // Without the file a restart could come back sooner;
                    // this run still waits.
                    log::error!("acme: {e}");
                    std::thread::sleep(Duration::from_secs((next - now).max(0) as u64));
                }
            }
        }
    }

    fn obtain(&mut self) -> Result<Serving> {
        let settings = &self.settings;
        let mut client = Client::new(&self.http, &*self.clock, &settings.directory, &self.files)?;
        let issued = client.issue(
            &self.files,
            settings.email.as_deref(),
            &settings.domain,
            &self.slot,
        )?;
        // Stored first: a certificate served but not kept would be ordered
        // again after a restart.
        self.files
            .save_certificate(&issued.key_pkcs8, &issued.chain_pem)?;
        // `issue` checked the leaf is there and for the domain.
        let seed = seed_of(issued.chain[0].as_ref());
        self.slot.install(
            issued.chain,
            rustls::pki_types::PrivateKeyDer::Pkcs8(issued.key_pkcs8.into()),
        )?;
        Ok(Serving {
            not_before: issued.not_before,
            not_after: issued.not_after,
            seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn without_a_certificate_the_ca_is_called_at_once_unless_told_to_wait() {
        assert_eq!(next_attempt(None, None, 1000), 1000);
        assert_eq!(next_attempt(None, Some(5000), 1000), 5000);
        assert_eq!(
            next_attempt(None, Some(10), 1000),
            1000,
            "already past: now"
        );
    }

    #[test]
    fn a_served_certificate_waits_for_its_renewal_and_any_backoff() {
        let s = Serving {
            not_before: 0,
            not_after: 90 * DAY,
            seed: 0,
        };
        assert_eq!(next_attempt(Some(s), None, DAY), 60 * DAY);
        assert_eq!(next_attempt(Some(s), Some(61 * DAY), DAY), 61 * DAY);
        assert_eq!(next_attempt(Some(s), Some(2 * DAY), DAY), 60 * DAY);
    }

    #[test]
    fn the_seed_is_stable_per_certificate() {
        assert_eq!(seed_of(b"a"), seed_of(b"a"));
        assert_ne!(seed_of(b"a"), seed_of(b"b"));
    }
}
