//! `--tls-cert` and `--tls-key`: read at start, where a bad pair stops the
//! relay with a clear error, then watched: when the files change (a
//! certbot or acme.sh renewal), the new pair goes into the [`CertSlot`]
//! without a restart; a bad new pair keeps the old certificate serving
//! and is logged as an error.

use super::CertSlot;
use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the files' metadata is looked at: two stat calls, nothing
/// read unless they changed.
const EVERY: Duration = Duration::from_secs(2);

type Pair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The chain in `cert` (leaf first) and the key in `key`, both PEM.
pub(super) fn load_pair(cert: &Path, key: &Path) -> Result<Pair> {
    let pem = std::fs::read(cert).map_err(|e| Error::io("read", cert, e))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Config(format!(
                "--tls-cert {} is not a readable PEM file ({e})",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(Error::Config(format!(
            "--tls-cert {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----, leaf first)",
            cert.display()
        )));
    }
    let pem = std::fs::read(key).map_err(|e| Error::io("read", key, e))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Error::Config(format!(
            "--tls-key {} holds no PEM private key (PKCS#8, SEC1 or PKCS#1): {e}",
            key.display()
        ))
    })?;
    Ok((chain, key))
}

/// Loads the pair into `slot`, naming both files in an error.
pub fn install(slot: &CertSlot, cert: &Path, key: &Path) -> Result<()> {
    let (chain, private) = load_pair(cert, key)?;
    slot.install(chain, private).map_err(|e| match e {
        Error::Config(text) => Error::Config(format!(
            "--tls-cert {} with --tls-key {}: {text}",
            cert.display(),
            key.display()
        )),
        other => other,
    })
}

/// What identifies a version of both files: modification time and size.
type Stamp = [(SystemTime, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    Some([one(cert)?, one(key)?])
}

/// Whether to read the files now: they differ from the installed version
/// and looked the same one look before, so a renewal that writes the
/// certificate and the key one after the other is read once both are
/// written, not in between. Missing files (mid-rename) change nothing.
fn should_reload(installed: Option<Stamp>, before: Option<Stamp>, now: Option<Stamp>) -> bool {
    now.is_some() && now != installed && now == before
}

/// Starts the thread that reinstalls the pair when the files change.
pub fn watch(slot: CertSlot, cert: PathBuf, key: PathBuf) -> Result<()> {
    let mut installed = stamp(&cert, &key);
    let mut before = installed;
    std::thread::Builder::new()
        .name("tls-files".into())
        .stack_size(128 * 1024)
        .spawn(move || loop {
            std::thread::sleep(EVERY);
            let now = stamp(&cert, &key);
            if should_reload(installed, before, now) {
                // Whatever comes of it, this version is dealt with: a bad
                // pair is logged once, not every two seconds.
                installed = now;
                match install(&slot, &cert, &key) {
                    Ok(()) => log::info!(
                        "new certificate from {} installed for new connections{}",
                        cert.display(),
                        expiry(&slot)
                    ),
                    Err(e) => log::error!(
                        "{e}; still serving the certificate loaded before: fix the files, they are read again when they change"
                    ),
                }
            }
            before = now;
        })
        .map_err(|e| Error::Listen(format!("cannot start the certificate watcher: {e}")))?;
    Ok(())
}

/// ", valid until …" for the log, when the leaf's date could be read.
pub fn expiry(slot: &CertSlot) -> String {
    slot.not_after()
        .map(|t| format!(", valid until {}", crate::timefmt::rfc3339_utc(t)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, len: u64) -> Option<Stamp> {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        Some([(t, len), (t, 100)])
    }

    #[test]
    fn a_change_is_read_once_it_has_settled_and_only_once() {
        let old = at(1, 500);
        // Unchanged: nothing to do.
        assert!(!should_reload(old, old, old));
        // Just changed: wait one look, the key may follow.
        assert!(!should_reload(old, old, at(2, 600)));
        // Same as one look before: read it.
        assert!(should_reload(old, at(2, 600), at(2, 600)));
        // Still changing: wait.
        assert!(!should_reload(old, at(2, 600), at(3, 650)));
        // Installed (or refused) already: not again.
        assert!(!should_reload(at(2, 600), at(2, 600), at(2, 600)));
        // A file missing for a moment (replaced by rename): keep serving.
        assert!(!should_reload(old, None, None));
        assert!(!should_reload(old, old, None));
        // Back after a gap, different: read once it settled.
        assert!(!should_reload(old, None, at(4, 700)));
        assert!(should_reload(old, at(4, 700), at(4, 700)));
        // Same size, new time (touched or rewritten): read too.
        assert!(should_reload(old, at(5, 500), at(5, 500)));
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = crate::store::testdir::TestDir::new("tls-files");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, super::super::cert_slot::tests::CERT).unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let slot = CertSlot::new(None);
        let e = install(&slot, &cert, &key).unwrap_err().to_string();
        assert!(e.contains("--tls-key") && e.contains("key.pem"), "{e}");
        std::fs::write(&key, super::super::cert_slot::tests::OTHER_KEY).unwrap();
        let e = install(&slot, &cert, &key).unwrap_err().to_string();
        assert!(
            e.contains("does not match") && e.contains("cert.pem"),
            "{e}"
        );
        std::fs::write(&key, super::super::cert_slot::tests::KEY).unwrap();
        install(&slot, &cert, &key).unwrap();
        assert!(slot.has_certificate());
        std::fs::write(&cert, "").unwrap();
        let e = install(&slot, &cert, &key).unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }
}
