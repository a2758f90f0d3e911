//! The certificate the TLS listener serves, swapped in place: ACME and the
//! `--tls-cert` watcher install into a [`CertSlot`], every new handshake
//! reads it, and a connection keeps the certificate it was opened with.

use crate::error::{Error, Result};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, RwLock};

/// The ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737 §3).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// What the TLS listener serves. Cheap to clone (Arc inside); ACME and the
/// --tls-cert file watcher install into it; every new handshake reads it.
#[derive(Clone)]
pub struct CertSlot {
    inner: Arc<Inner>,
}

struct Inner {
    /// The only SNI name served; None serves any (or no) SNI.
    domain: Option<String>,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    current: Option<Installed>,
    /// TLS-ALPN-01 answers by (lower-case) domain.
    challenges: Vec<(String, Arc<CertifiedKey>)>,
}

struct Installed {
    key: Arc<CertifiedKey>,
    not_after: Option<i64>,
}

impl std::fmt::Debug for CertSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSlot")
            .field("domain", &self.inner.domain)
            .field("has_certificate", &self.has_certificate())
            .finish()
    }
}

/// Loads `key` for signing and checks it belongs to the leaf of `chain`.
fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey> {
    if chain.is_empty() {
        return Err(Error::Config("the certificate chain is empty".into()));
    }
    let signer = any_supported_type(&key).map_err(|e| {
        Error::Config(format!(
            "the private key cannot be used (PKCS#8, SEC1 or PKCS#1 RSA/ECDSA/Ed25519 expected): {e}"
        ))
    })?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| {
        Error::Config(format!(
            "the private key does not match the certificate ({e})"
        ))
    })?;
    Ok(certified)
}

impl CertSlot {
    /// `domain`: the only SNI name served (None: any SNI, for --tls-cert).
    pub fn new(domain: Option<String>) -> CertSlot {
        CertSlot {
            inner: Arc::new(Inner {
                domain: domain.map(|d| d.to_ascii_lowercase()),
                state: RwLock::new(State::default()),
            }),
        }
    }

    /// Swaps the certificate new handshakes get; open connections keep theirs.
    /// Checks that the key matches the leaf and returns `Error::Config` if not.
    pub fn install(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<()> {
        let not_after = chain
            .first()
            .and_then(|leaf| crate::x509::not_after(leaf.as_ref()));
        let key = Arc::new(certified(chain, key)?);
        self.write()?.current = Some(Installed { key, not_after });
        Ok(())
    }

    /// The self-signed certificate answering an RFC 8737 TLS-ALPN-01 challenge for `domain`:
    /// served only to a ClientHello that offers ALPN "acme-tls/1" with that SNI.
    // Called by the ACME client (branch acme).
    #[allow(dead_code)]
    pub fn set_challenge(
        &self,
        domain: &str,
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> Result<()> {
        // Not `certified`: its keys_match parses the certificate with
        // webpki, which refuses the critical acmeIdentifier extension
        // every RFC 8737 certificate carries. The key is ours, made with
        // the certificate, so there is nothing to check.
        let signer = any_supported_type(&key)
            .map_err(|e| Error::Config(format!("the challenge key cannot be used: {e}")))?;
        let key = Arc::new(CertifiedKey::new(vec![cert], signer));
        let domain = domain.to_ascii_lowercase();
        let mut state = self.write()?;
        state.challenges.retain(|(d, _)| *d != domain);
        state.challenges.push((domain, key));
        Ok(())
    }

    #[allow(dead_code)]
    pub fn clear_challenge(&self, domain: &str) {
        if let Ok(mut state) = self.write() {
            state
                .challenges
                .retain(|(d, _)| !d.eq_ignore_ascii_case(domain));
        }
    }

    /// Whether a certificate is installed (the listener refuses handshakes, except acme-tls/1 ones, until then).
    pub fn has_certificate(&self) -> bool {
        self.read().is_some_and(|s| s.current.is_some())
    }

    /// notAfter of the installed leaf, unix seconds, if any (the renewal schedule and the logs use it).
    pub fn not_after(&self) -> Option<i64> {
        self.read()?.current.as_ref()?.not_after
    }

    fn read(&self) -> Option<std::sync::RwLockReadGuard<'_, State>> {
        self.inner.state.read().ok()
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>> {
        self.inner
            .state
            .write()
            .map_err(|_| Error::Internal("the certificate slot lock is poisoned"))
    }

    /// What a ClientHello with this SNI and ALPN offer gets, if anything.
    fn choose(&self, sni: Option<&str>, offers_acme: bool) -> Option<Arc<CertifiedKey>> {
        let state = self.read()?;
        if offers_acme {
            // RFC 8737 §3: the challenge certificate, for exactly that name.
            let sni = sni?;
            return state
                .challenges
                .iter()
                .find(|(d, _)| d.eq_ignore_ascii_case(sni))
                .map(|(_, k)| Arc::clone(k));
        }
        if let Some(domain) = &self.inner.domain {
            // Scanners that walk IP ranges send no SNI or another name:
            // they get no certificate, so they learn nothing of the domain.
            if !sni.is_some_and(|s| s.eq_ignore_ascii_case(domain)) {
                return None;
            }
        }
        state.current.as_ref().map(|c| Arc::clone(&c.key))
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers_acme = hello
            .alpn()
            .is_some_and(|mut offers| offers.any(|p| p == ACME_TLS_ALPN));
        self.choose(hello.server_name(), offers_acme)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    // A P-256 key and self-signed certificate for "relay.test", valid
    // until 2036-11-21T10:37:18Z, made with:
    // openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
    //   -subj /CN=relay.test -addext subjectAltName=DNS:relay.test -days 3650
    //   -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth
    // (and other.key with openssl genpkey -algorithm EC).
    pub const CERT: &str = include_str!("testdata/relay.test.crt");
    pub const KEY: &str = include_str!("testdata/relay.test.key");
    pub const OTHER_KEY: &str = include_str!("testdata/other.key");

    pub fn pair(cert: &str, key: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        (
            chain,
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
    }

    #[test]
    fn a_matching_pair_installs_and_reports_its_expiry() {
        let slot = CertSlot::new(Some("Relay.Test".into()));
        assert!(!slot.has_certificate());
        assert_eq!(slot.not_after(), None);
        let (chain, key) = pair(CERT, KEY);
        slot.install(chain, key).unwrap();
        assert!(slot.has_certificate());
        // 2036-11-21T10:37:18Z (date -d ... +%s)
        assert_eq!(slot.not_after(), Some(2_110_876_638));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_the_old_one_kept() {
        let slot = CertSlot::new(None);
        let (chain, key) = pair(CERT, KEY);
        slot.install(chain.clone(), key).unwrap();
        let (_, other) = pair(CERT, OTHER_KEY);
        match slot.install(chain, other) {
            Err(Error::Config(text)) => assert!(text.contains("does not match"), "{text}"),
            other => panic!("{other:?}"),
        }
        assert!(slot.has_certificate());
    }

    #[test]
    fn only_the_domain_gets_the_certificate_and_only_acme_gets_the_challenge() {
        let slot = CertSlot::new(Some("relay.test".into()));
        let (chain, key) = pair(CERT, KEY);
        assert!(slot.choose(Some("relay.test"), false).is_none());
        slot.install(chain.clone(), key).unwrap();
        assert!(slot.choose(Some("RELAY.test"), false).is_some());
        assert!(slot.choose(Some("other.test"), false).is_none());
        assert!(slot.choose(None, false).is_none());
        assert!(slot.choose(Some("relay.test"), true).is_none());

        let (_, key) = pair(CERT, KEY);
        slot.set_challenge("relay.test", chain[0].clone(), key)
            .unwrap();
        assert!(slot.choose(Some("relay.test"), true).is_some());
        assert!(slot.choose(Some("other.test"), true).is_none());
        assert!(slot.choose(None, true).is_none());
        slot.clear_challenge("Relay.Test");
        assert!(slot.choose(Some("relay.test"), true).is_none());

        let any = CertSlot::new(None);
        let (chain, key) = pair(CERT, KEY);
        any.install(chain, key).unwrap();
        assert!(any.choose(None, false).is_some());
        assert!(any.choose(Some("whatever.test"), false).is_some());
    }
}
