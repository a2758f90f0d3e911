//! The two X.509 structures ACME needs, written as DER by hand: the
//! PKCS#10 request finalize sends (RFC 2986, RFC 8555 §7.4) and the
//! self-signed certificate of a TLS-ALPN-01 challenge (RFC 8737 §3). Also
//! the little reading the relay does of a certificate it got: its validity
//! and its DNS names.
//!
//! Written here rather than with rcgen: these few encodings are all the
//! relay needs, and rcgen (with yasna, time and pem) is a second X.509
//! stack on a router that counts bytes.

use crate::error::{Error, Result};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `dNSName [2] IA5String` in a GeneralName, implicitly tagged.
const DNS_NAME: u8 = 0x82;

// OIDs, already in their DER content encoding.
/// 1.2.840.10045.2.1 id-ecPublicKey
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7 prime256v1
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 1.2.840.10045.4.3.2 ecdsa-with-SHA256
const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// 2.5.4.3 commonName
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.29.17 subjectAltName
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// 1.2.840.113549.1.9.14 extensionRequest (PKCS#9)
const EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
/// 1.3.6.1.5.5.7.1.31 id-pe-acmeIdentifier (RFC 8737 §6.1)
const ACME_IDENTIFIER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f];

/// One DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    // No unused bits in the last byte.
    tlv(BIT_STRING, &[&[0u8][..], bytes].concat())
}

/// A Name with one commonName.
fn name_cn(cn: &str) -> Vec<u8> {
    let atv = seq(&[&tlv(OID, COMMON_NAME), &tlv(UTF8_STRING, cn.as_bytes())]);
    seq(&[&tlv(SET, &atv)])
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let flag = if critical {
        tlv(BOOLEAN, &[0xff])
    } else {
        Vec::new()
    };
    seq(&[&tlv(OID, oid), &flag, &tlv(OCTET_STRING, value)])
}

fn san(domain: &str) -> Vec<u8> {
    extension(
        SUBJECT_ALT_NAME,
        false,
        &seq(&[&tlv(DNS_NAME, domain.as_bytes())]),
    )
}

/// A certificate key: P-256, signing X.509's DER ECDSA-Sig-Value.
pub struct CertKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl CertKey {
    pub fn generate() -> Result<CertKey> {
        CertKey::from_pkcs8(super::jws::new_p256_pkcs8()?)
    }

    pub fn from_pkcs8(pkcs8: Vec<u8>) -> Result<CertKey> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| Error::Internal("a fresh P-256 key did not load"))?;
        Ok(CertKey { pair, pkcs8 })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    fn spki(&self) -> Vec<u8> {
        seq(&[
            &seq(&[&tlv(OID, EC_PUBLIC_KEY), &tlv(OID, P256)]),
            &bit_string(self.pair.public_key().as_ref()),
        ])
    }

    /// `to_be_signed`, its algorithm and signature: the outer SEQUENCE of
    /// both a certificate and a certification request.
    fn signed(&self, to_be_signed: Vec<u8>) -> Result<Vec<u8>> {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), &to_be_signed)
            .map_err(|_| Error::Internal("ECDSA signing failed"))?;
        Ok(seq(&[
            &to_be_signed,
            &seq(&[&tlv(OID, ECDSA_SHA256)]),
            &bit_string(signature.as_ref()),
        ]))
    }
}

/// A PKCS#10 request for `domain`, named in its subjectAltName (the one
/// name ACME looks at; the subject is CN=domain when it fits the 64
/// characters X.520 allows, else empty).
pub fn csr(key: &CertKey, domain: &str) -> Result<Vec<u8>> {
    let subject = if domain.len() <= 64 {
        name_cn(domain)
    } else {
        seq(&[])
    };
    let extensions = seq(&[&san(domain)]);
    let attribute = seq(&[&tlv(OID, EXTENSION_REQUEST), &tlv(SET, &extensions)]);
    let info = seq(&[
        &tlv(INTEGER, &[0]),
        &subject,
        &key.spki(),
        // attributes [0] IMPLICIT SET OF Attribute
        &tlv(0xa0, &attribute),
    ]);
    key.signed(info)
}

/// RFC 8737 §3: a self-signed certificate for `domain` whose critical
/// acmeIdentifier extension holds SHA-256 of the key authorization,
/// valid from a day before `now` to a week after.
pub fn challenge_cert(
    key: &CertKey,
    domain: &str,
    key_authorization: &str,
    now: i64,
) -> Result<Vec<u8>> {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    // extnValue holds the DER of `Authorization ::= OCTET STRING (SIZE (32))`.
    let acme_id = extension(ACME_IDENTIFIER, true, &tlv(OCTET_STRING, digest.as_ref()));
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut serial)
        .map_err(|_| Error::Internal("the system random source failed"))?;
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // and minimal: no leading zero byte
    let name = name_cn("withings-relay tls-alpn-01");
    let tbs = seq(&[
        &tlv(0xa0, &tlv(INTEGER, &[2])), // v3
        &tlv(INTEGER, &serial),
        &seq(&[&tlv(OID, ECDSA_SHA256)]),
        &name,
        &seq(&[&time(now - 86_400), &time(now + 7 * 86_400)]),
        &name,
        &key.spki(),
        &tlv(0xa3, &seq(&[&san(domain), &acme_id])),
    ]);
    key.signed(tbs)
}

/// UTCTime until 2049, GeneralizedTime after (RFC 5280 §4.1.2.5).
fn time(unix: i64) -> Vec<u8> {
    let text = crate::timefmt::rfc3339_utc(unix); // 2026-11-24T02:08:03Z
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let year: i64 = digits[..4].parse().unwrap_or(0);
    if (1950..2050).contains(&year) {
        tlv(UTC_TIME, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        tlv(GENERALIZED_TIME, format!("{digits}Z").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const NOW: i64 = 1_795_918_083; // 2026-11-29T02:08:03Z

    fn openssl_available() -> bool {
        Command::new("openssl").arg("version").output().is_ok()
    }

    /// Runs `openssl args` on `der` (written to a temp file); its stdout.
    fn openssl(args: &[&str], der: &[u8]) -> String {
        let dir = crate::store::testdir::TestDir::new("acme-der");
        let path = dir.path().join("in.der");
        std::fs::write(&path, der).unwrap();
        let out = Command::new("openssl")
            .args(args)
            .args(["-inform", "DER", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "openssl {args:?}: {text}");
        text
    }

    #[test]
    fn lengths_use_the_short_and_long_forms() {
        assert_eq!(tlv(OCTET_STRING, &[1, 2]), [4, 2, 1, 2]);
        let long = tlv(OCTET_STRING, &[0; 200]);
        assert_eq!(&long[..3], &[4, 0x81, 200]);
        let longer = tlv(OCTET_STRING, &[0; 300]);
        assert_eq!(&longer[..4], &[4, 0x82, 1, 44]);
    }

    #[test]
    fn the_request_verifies_and_names_the_domain() {
        let key = CertKey::generate().unwrap();
        let der = csr(&key, "relay.example.org").unwrap();
        if !openssl_available() {
            eprintln!("skipped the openssl check: no openssl (make test-deps)");
            return;
        }
        let text = openssl(&["req", "-noout", "-text", "-verify"], &der);
        assert!(
            text.contains("verify OK")
                || text.contains("Certificate request self-signature verify OK"),
            "{text}"
        );
        assert!(text.contains("DNS:relay.example.org"), "{text}");
        assert!(
            text.contains("CN = relay.example.org") || text.contains("CN=relay.example.org"),
            "{text}"
        );
        assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    }

    #[test]
    fn the_challenge_certificate_is_rfc_8737s() {
        use crate::clock::Clock;
        // Today, so that openssl verify finds it valid now.
        let now = crate::clock::SystemClock.now();
        let key = CertKey::generate().unwrap();
        let der = challenge_cert(&key, "relay.example.org", "tok.thumb", now).unwrap();
        let info = crate::x509::cert_info(&der).unwrap();
        assert_eq!(info.dns_names, ["relay.example.org"]);
        assert_eq!(
            (info.not_before, info.not_after),
            (now - 86_400, now + 7 * 86_400)
        );
        // The extension's bytes: critical, OCTET STRING of the hash.
        let hash = ring::digest::digest(&ring::digest::SHA256, b"tok.thumb");
        let inner = [&[0x04u8, 0x20][..], hash.as_ref()].concat();
        let ext = extension(ACME_IDENTIFIER, true, &inner);
        assert!(der.windows(ext.len()).any(|w| w == ext.as_slice()));
        if !openssl_available() {
            eprintln!("skipped the openssl check: no openssl (make test-deps)");
            return;
        }
        let text = openssl(&["x509", "-noout", "-text"], &der);
        assert!(text.contains("DNS:relay.example.org"), "{text}");
        assert!(text.contains("1.3.6.1.5.5.7.1.31: critical"), "{text}");
        assert!(text.contains("Version: 3"), "{text}");
        // Self-signed: its own key verifies it. (openssl refuses the
        // critical extension it does not know, as it should.)
        let dir = crate::store::testdir::TestDir::new("acme-der-verify");
        let pem = dir.path().join("c.pem");
        let out = Command::new("openssl")
            .args(["x509", "-inform", "DER", "-out"])
            .arg(&pem)
            .arg("-in")
            .arg({
                let p = dir.path().join("c.der");
                std::fs::write(&p, &der).unwrap();
                p
            })
            .output()
            .unwrap();
        assert!(out.status.success());
        let out = Command::new("openssl")
            .args(["verify", "-ignore_critical", "-partial_chain", "-CAfile"])
            .arg(&pem)
            .arg(&pem)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("OK"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn times_read_back_as_written_on_both_sides_of_2050() {
        for t in [0, NOW, 2_524_608_000 /* 2050-01-01 */, 2_524_607_999] {
            let der = time(t);
            assert_eq!(crate::x509::parse_time(der[0], &der[2..]), Some(t), "{t}");
        }
        assert_eq!(time(NOW)[0], UTC_TIME);
        assert_eq!(time(2_524_608_000)[0], GENERALIZED_TIME);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x02],
        ] {
            assert!(crate::x509::cert_info(bad).is_none(), "{bad:?}");
        }
    }
}
