//! The CAs the relay trusts: the Mozilla roots bundled into the binary (a
//! bare router has no CA bundle) plus, optionally, the certificates of a
//! PEM file: `--ca-file` for Withings, `--mqtt-ca` for the broker. Both
//! flags are read, checked and reported here, the same way.
//!
//! ureq takes either the bundled roots or a set of its own per agent, not
//! both, so the Withings client tries an agent per set (`withings/api.rs`);
//! the MQTT client hands rustls one store holding both ([`with_bundled`]).

use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::path::Path;
use std::time::Duration;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::Agent;

/// The certificates in the PEM file `path`, given with `flag`, each
/// checked to be usable as a CA. A file with none, or with one that is
/// not, is a configuration error: retrying would not help.
pub fn read_pem(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        let cert = item.map_err(|e| {
            Error::Config(format!(
                "{flag} {} is not a readable PEM file ({e})",
                path.display()
            ))
        })?;
        // Parsed as a trust anchor now, so a bad one is reported at start
        // and by name, not as a failed handshake later.
        RootCertStore::empty().add(cert.clone()).map_err(|e| {
            Error::Config(format!(
                "{flag} {}: a certificate in it is unusable as a CA ({e})",
                path.display()
            ))
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{flag} {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// The bundled Mozilla roots plus `extra`, as rustls takes them.
pub fn with_bundled(extra: Vec<CertificateDer<'static>>) -> RootCertStore {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // Each was checked by read_pem; none is dropped here.
    roots.add_parsable_certificates(extra);
    roots
}

/// The https agents for a server whose certificate the bundled roots or
/// `extra` vouch for, in the order to try them: ureq takes one root set
/// per agent, so the extra roots get an agent of their own, tried first,
/// and the bundled roots' agent only after a TLS verification failure
/// (see [`is_tls_failure`]). The Withings client and the ACME client both
/// call through these.
pub fn https_agents(
    extra: &[CertificateDer<'static>],
    connect: Duration,
    call: Duration,
) -> Vec<Agent> {
    let agent = |roots: RootCerts| {
        Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(connect))
            .timeout_global(Some(call))
            .user_agent(concat!("withings-relay/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent()
    };
    let mut agents = Vec::new();
    if !extra.is_empty() {
        let certs: Vec<ureq::tls::Certificate<'static>> = extra
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        agents.push(agent(RootCerts::new_with_certs(&certs)));
    }
    agents.push(agent(RootCerts::WebPki));
    agents
}

/// Whether a call failed on TLS verification, so the next agent of
/// [`https_agents`] may succeed.
pub fn is_tls_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    #[test]
    fn a_file_without_a_certificate_names_the_flag_and_what_was_expected() {
        let dir = TestDir::new("tls-roots");
        let path = dir.path().join("server.csr");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        )
        .unwrap();
        match read_pem("--mqtt-ca", &path) {
            Err(Error::Config(text)) => {
                assert!(text.starts_with("--mqtt-ca "), "{text}");
                assert!(text.contains("holds no PEM certificate"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_pem("--ca-file", &dir.path().join("missing.pem")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn a_certificate_that_is_no_ca_is_refused_by_name() {
        let dir = TestDir::new("tls-roots-bad");
        let path = dir.path().join("bad.pem");
        // Valid PEM and base64, but not DER of a certificate.
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        match read_pem("--ca-file", &path) {
            Err(Error::Config(text)) => assert!(text.contains("unusable as a CA"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_bundled_roots_are_always_there() {
        let bundled = webpki_roots::TLS_SERVER_ROOTS.len();
        assert_eq!(with_bundled(Vec::new()).len(), bundled);
    }
}
