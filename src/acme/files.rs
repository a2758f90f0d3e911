//! What the ACME manager keeps in the state dir, each file written with
//! [`atomic::write`] (mode 0600):
//!
//! ```text
//! acme/account.key       the account key, PKCS#8 PEM
//! acme/account.json      the account URL and the directory it belongs to
//! acme/not-before.json   no request to the CA before this time (backoff,
//!                        Retry-After), so a restart loop never hammers it
//! tls/certificate.pem    the certificate's private key, then its chain
//! ```
//!
//! The key and the chain share one file on purpose: one rename replaces
//! both, so a kill -9 or power cut during a renewal leaves the old pair or
//! the new pair, never a new key beside an old certificate. A new key is
//! made for each certificate and lives only in memory until then; an
//! issuance cut short leaves nothing behind but an order the CA expires.

use crate::error::{Error, Fix, Result};
use crate::store::atomic;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The account the CA at `directory` knows us by.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct Account {
    pub kid: String,
    pub directory: String,
}

/// The earliest time the manager may call the CA again, and why.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct NotBefore {
    pub not_before: i64,
    /// Failed attempts in a row, for the next backoff.
    pub failures: u32,
    pub reason: String,
}

/// A certificate chain (leaf first) and its private key.
pub struct CertPair {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The ACME files under a state dir.
pub struct AcmeFiles {
    acme: PathBuf,
    tls: PathBuf,
}

/// PEM with 64-character lines (RFC 7468).
pub fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// What to do about a damaged ACME file: move it aside; the next attempt
/// makes it anew (a new account, a new certificate).
const FIX: Fix = Fix::AcmeFile;

impl AcmeFiles {
    pub fn open(state_dir: &Path) -> Result<AcmeFiles> {
        let files = AcmeFiles {
            acme: state_dir.join("acme"),
            tls: state_dir.join("tls"),
        };
        atomic::ensure_dir(&files.acme)?;
        atomic::ensure_dir(&files.tls)?;
        atomic::sweep_temp_files(&files.acme)?;
        atomic::sweep_temp_files(&files.tls)?;
        Ok(files)
    }

    pub fn certificate_path(&self) -> PathBuf {
        self.tls.join("certificate.pem")
    }

    /// The account key's PKCS#8, if one was made.
    pub fn account_key(&self) -> Result<Option<Vec<u8>>> {
        let path = self.acme.join("account.key");
        match std::fs::read(&path) {
            Ok(bytes) => PrivatePkcs8KeyDer::from_pem_slice(&bytes)
                .map(|k| Some(k.secret_pkcs8_der().to_vec()))
                .map_err(|e| Error::corrupt(path, e, FIX)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    pub fn save_account_key(&self, pkcs8: &[u8]) -> Result<()> {
        atomic::write(
            &self.acme.join("account.key"),
            pem("PRIVATE KEY", pkcs8).as_bytes(),
        )
    }

    pub fn account(&self) -> Result<Option<Account>> {
        atomic::read_json(&self.acme.join("account.json"), FIX)
    }

    pub fn save_account(&self, account: &Account) -> Result<()> {
        atomic::write_json(&self.acme.join("account.json"), account)
    }

    pub fn not_before(&self) -> Result<Option<NotBefore>> {
        atomic::read_json(&self.acme.join("not-before.json"), FIX)
    }

    pub fn save_not_before(&self, value: &NotBefore) -> Result<()> {
        atomic::write_json(&self.acme.join("not-before.json"), value)
    }

    /// Forgets the account URL (the CA no longer knows it); the key stays,
    /// and newAccount registers it again.
    pub fn forget_account(&self) -> Result<()> {
        atomic::remove(&self.acme.join("account.json")).map(|_| ())
    }

    /// After a success: the next attempt is the renewal's business.
    pub fn clear_not_before(&self) -> Result<()> {
        atomic::remove(&self.acme.join("not-before.json")).map(|_| ())
    }

    /// The stored key and chain, None when there is none yet.
    pub fn certificate(&self) -> Result<Option<CertPair>> {
        let path = self.certificate_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let key = PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|e| Error::corrupt(&path, format!("no private key: {e}"), FIX))?;
        let chain = CertificateDer::pem_slice_iter(&bytes)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::corrupt(&path, e, FIX))?;
        if chain.is_empty() {
            return Err(Error::corrupt(&path, "no certificate", FIX));
        }
        Ok(Some(CertPair { chain, key }))
    }

    /// Replaces key and chain in one rename. `chain_pem` is the CA's PEM.
    pub fn save_certificate(&self, key_pkcs8: &[u8], chain_pem: &str) -> Result<()> {
        let text = format!("{}{chain_pem}", pem("PRIVATE KEY", key_pkcs8));
        atomic::write(&self.certificate_path(), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::der::{challenge_cert, CertKey};
    use crate::store::testdir::TestDir;

    #[test]
    fn key_and_chain_are_one_file_read_back_as_written() {
        let dir = TestDir::new("acme-files");
        let files = AcmeFiles::open(dir.path()).unwrap();
        assert!(files.certificate().unwrap().is_none());
        let key = CertKey::generate().unwrap();
        let cert = challenge_cert(&key, "a.example", "t.k", 1_700_000_000).unwrap();
        let chain = format!("{}{}", pem("CERTIFICATE", &cert), pem("CERTIFICATE", &cert));
        files.save_certificate(key.pkcs8(), &chain).unwrap();
        let pair = files.certificate().unwrap().unwrap();
        assert_eq!(pair.chain.len(), 2);
        assert_eq!(pair.chain[0].as_ref(), &cert[..]);
        assert_eq!(pair.key.secret_der(), key.pkcs8());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(files.certificate_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_certificate_file_says_what_to_do() {
        let dir = TestDir::new("acme-files-bad");
        let files = AcmeFiles::open(dir.path()).unwrap();
        std::fs::write(files.certificate_path(), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let err = files.certificate().err().unwrap().to_string();
        assert!(
            err.contains("certificate.pem") && err.contains("move it aside"),
            "{err}"
        );
    }

    #[test]
    fn account_and_not_before_round_trip() {
        let dir = TestDir::new("acme-files-account");
        let files = AcmeFiles::open(dir.path()).unwrap();
        assert_eq!(files.account_key().unwrap(), None);
        files.save_account_key(b"\x30\x03\x02\x01\x00").unwrap();
        assert_eq!(
            files.account_key().unwrap().unwrap(),
            b"\x30\x03\x02\x01\x00"
        );
        let account = Account {
            kid: "https://ca/acct/1".into(),
            directory: "https://ca/dir".into(),
        };
        files.save_account(&account).unwrap();
        assert_eq!(files.account().unwrap(), Some(account));
        let nb = NotBefore {
            not_before: 5,
            failures: 2,
            reason: "x".into(),
        };
        files.save_not_before(&nb).unwrap();
        assert_eq!(files.not_before().unwrap(), Some(nb));
        files.clear_not_before().unwrap();
        assert_eq!(files.not_before().unwrap(), None);
    }
}
