//! Just enough DER to read what the relay needs of a certificate (RFC 5280
//! §4.1): its validity and its DNS names. The TLS listener reports when its
//! certificate expires, and ACME checks what it got and when to renew.
//! webpki checks validity but does not hand it out, and a full X.509
//! parser would cost the router binaries more than this walk. Untrusted
//! input: every length is checked, nothing panics, and None is the answer
//! to anything that is not a certificate.

use crate::timefmt::unix_from_civil;

/// One TLV: its tag, its contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form, at most 4 length bytes: a certificate is never 4 GiB,
        // and usize may be 32 bits.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes.iter().try_fold(0usize, |acc, &b| {
            acc.checked_mul(256)?.checked_add(usize::from(b))
        })?;
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const EXTENSIONS: u8 = 0xa3;
/// `dNSName [2] IA5String` in a GeneralName, implicitly tagged.
const DNS_NAME: u8 = 0x82;
/// 2.5.29.17 subjectAltName, as its DER content.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// What the relay reads of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// The subjectAltName DNS names, lower-cased.
    pub dns_names: Vec<String>,
}

/// The TLV at the start of `input` if it has tag `want`: its contents and
/// what follows it.
fn expect(want: u8, input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, contents, after) = tlv(input)?;
    (tag == want).then_some((contents, after))
}

/// Validity and DNS names of the DER certificate `cert`; None when it does
/// not parse.
pub fn cert_info(cert: &[u8]) -> Option<CertInfo> {
    let (cert, _) = expect(SEQUENCE, cert)?;
    let (tbs, _) = expect(SEQUENCE, cert)?;
    let (mut tag, _, mut rest) = tlv(tbs)?;
    if tag == VERSION {
        (tag, _, rest) = tlv(rest)?;
    }
    if tag != INTEGER {
        return None; // no serial number
    }
    let rest = expect(SEQUENCE, rest)?.1; // signature algorithm
    let rest = expect(SEQUENCE, rest)?.1; // issuer
    let (validity, rest) = expect(SEQUENCE, rest)?;
    let (tag, time, after) = tlv(validity)?;
    let not_before = parse_time(tag, time)?;
    let (tag, time, _) = tlv(after)?;
    let not_after = parse_time(tag, time)?;
    let rest = expect(SEQUENCE, rest)?.1; // subject
    let mut rest = expect(SEQUENCE, rest)?.1; // subjectPublicKeyInfo
    let mut dns_names = Vec::new();
    while !rest.is_empty() {
        let (tag, contents, after) = tlv(rest)?;
        rest = after;
        if tag == EXTENSIONS {
            dns_names.extend(san_dns_names(contents)?);
        } // else issuerUniqueID, subjectUniqueID
    }
    Some(CertInfo {
        not_before,
        not_after,
        dns_names,
    })
}

/// The DNS names of the subjectAltName among `extensions` ([3] contents).
fn san_dns_names(extensions: &[u8]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let (mut list, _) = expect(SEQUENCE, extensions)?;
    while !list.is_empty() {
        let (ext, after) = expect(SEQUENCE, list)?;
        list = after;
        let (oid, mut rest) = expect(OID, ext)?;
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        if let Some((_, after)) = expect(BOOLEAN, rest) {
            rest = after; // critical
        }
        let (value, _) = expect(OCTET_STRING, rest)?;
        let (mut general_names, _) = expect(SEQUENCE, value)?;
        while !general_names.is_empty() {
            let (tag, name, after) = tlv(general_names)?;
            general_names = after;
            if tag == DNS_NAME {
                names.push(String::from_utf8_lossy(name).to_ascii_lowercase());
            }
        }
    }
    Some(names)
}

/// The notAfter of a DER certificate, in unix seconds; None when it does
/// not parse.
pub fn not_after(cert: &[u8]) -> Option<i64> {
    cert_info(cert).map(|info| info.not_after)
}

/// UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime
/// (YYYYMMDDHHMMSSZ), the only forms RFC 5280 §4.1.2.5 allows.
pub(crate) fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let (year, rest) = match tag {
        UTC_TIME if text.len() == 13 => {
            let yy = digits(text.get(..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME if text.len() == 15 => (digits(text.get(..4)?)?, text.get(4..)?),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(rest.get(i..i + 2)?);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(unix_from_civil(year, month, day) + hour * 3600 + minute * 60 + second)
}

fn digits(text: &[u8]) -> Option<i64> {
    text.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_time_forms_read() {
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20500101000000Z"),
            Some(2_524_608_000)
        );
        assert_eq!(parse_time(UTC_TIME, b"491231235959+0100"), None);
        assert_eq!(parse_time(UTC_TIME, b"491331235959Z"), None);
        assert_eq!(parse_time(GENERALIZED_TIME, b"2050010100000aZ"), None);
    }

    #[test]
    fn truncated_or_odd_certificates_give_none_not_a_panic() {
        let der = der_of(include_str!("inbound/tls/testdata/relay.test.crt"));
        assert_eq!(not_after(&der), Some(2_110_876_638));
        for cut in 0..der.len() {
            let _ = not_after(&der[..cut]);
        }
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x88, 1, 1, 1, 1, 1, 1, 1, 1]), None);
    }

    fn der_of(pem: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }
}
