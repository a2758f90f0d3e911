//! The signed requests of RFC 8555 §6.2: a flattened JWS (RFC 7515 §7.2.2)
//! signed ES256 with the account key, whose protected header carries the
//! `jwk` for newAccount and the account URL (`kid`) after, the `nonce`
//! and the `url`. Also the account key's thumbprint (RFC 7638), which the
//! key authorization of a challenge ends with (RFC 8555 §8.1).

use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

/// base64url without padding, as JOSE writes every binary value.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The ACME account key: an ECDSA P-256 key, kept as PKCS#8.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

/// Who signs a request: a new account shows its key, a known one its URL.
pub enum Signer<'a> {
    Jwk,
    Kid(&'a str),
}

impl AccountKey {
    /// A fresh key, and its PKCS#8 form to store.
    pub fn generate() -> Result<(AccountKey, Vec<u8>)> {
        let pkcs8 = new_p256_pkcs8()?;
        Ok((AccountKey::from_pkcs8(&pkcs8)?, pkcs8))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<AccountKey> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|e| {
                Error::Config(format!(
                    "the ACME account key is not a P-256 PKCS#8 key ({e})"
                ))
            })?;
        Ok(AccountKey { pair, rng })
    }

    /// The public key as a JWK, members in the order RFC 7638 §3.2 hashes
    /// them (lexicographic), so [`AccountKey::thumbprint`] can hash this text.
    fn jwk(&self) -> String {
        // An uncompressed P-256 point: 0x04, then x and y, 32 bytes each.
        let point = self.pair.public_key().as_ref();
        format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(&point[1..33]),
            b64(&point[33..65])
        )
    }

    /// RFC 7638: base64url(SHA-256(the JWK's required members, sorted,
    /// without whitespace)).
    pub fn thumbprint(&self) -> String {
        b64(ring::digest::digest(&ring::digest::SHA256, self.jwk().as_bytes()).as_ref())
    }

    /// The key authorization of a challenge token (RFC 8555 §8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }

    /// The JWS body of a POST to `url`. `payload` is JSON text; None is
    /// POST-as-GET (RFC 8555 §6.3): an empty payload, not `{}`. Written as
    /// text rather than built as `serde_json::Value`s: smaller on a router.
    pub fn sign(
        &self,
        signer: &Signer,
        nonce: &str,
        url: &str,
        payload: Option<&str>,
    ) -> Result<String> {
        let who = match signer {
            Signer::Jwk => format!(r#""jwk":{}"#, self.jwk()),
            Signer::Kid(kid) => format!(r#""kid":{}"#, json_string(kid)),
        };
        let protected = format!(
            r#"{{"alg":"ES256",{who},"nonce":{},"url":{}}}"#,
            json_string(nonce),
            json_string(url)
        );
        let protected = b64(protected.as_bytes());
        let payload = payload.map_or_else(String::new, |p| b64(p.as_bytes()));
        let signing_input = format!("{protected}.{payload}");
        // ES256 is the 64-byte r || s of RFC 7518 §3.4: ring's FIXED form.
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| Error::Internal("ECDSA signing failed"))?;
        // base64url needs no escaping in a JSON string.
        Ok(format!(
            r#"{{"protected":"{protected}","payload":"{payload}","signature":"{}"}}"#,
            b64(signature.as_ref())
        ))
    }
}

/// `text` as a JSON string, quoted and escaped.
pub fn json_string(text: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// A fresh P-256 private key as PKCS#8: the account key and each
/// certificate's key.
pub fn new_p256_pkcs8() -> Result<Vec<u8>> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| Error::Internal("the system random source failed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn a_signed_request_verifies_with_the_key_it_shows() {
        let (key, pkcs8) = AccountKey::generate().unwrap();
        let body = key
            .sign(
                &Signer::Jwk,
                "n0nce",
                "https://ca/new-acct",
                Some(r#"{"a":1}"#),
            )
            .unwrap();
        let jws: serde_json::Value = serde_json::from_str(&body).unwrap();
        let text = |k: &str| jws[k].as_str().unwrap().to_string();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text("protected")).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "n0nce");
        assert_eq!(header["url"], "https://ca/new-acct");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(header.get("kid").is_none(), "jwk and kid are exclusive");
        let x = URL_SAFE_NO_PAD
            .decode(header["jwk"]["x"].as_str().unwrap())
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode(header["jwk"]["y"].as_str().unwrap())
            .unwrap();
        let point = [&[4u8][..], &x, &y].concat();
        let signature = URL_SAFE_NO_PAD.decode(text("signature")).unwrap();
        assert_eq!(signature.len(), 64, "r || s, not DER");
        let input = format!("{}.{}", text("protected"), text("payload"));
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(input.as_bytes(), &signature)
            .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(text("payload")).unwrap(),
            br#"{"a":1}"#
        );
        // The stored form gives back the same key.
        let again = AccountKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
    }

    #[test]
    fn after_the_account_exists_the_header_names_it_and_post_as_get_is_empty() {
        let (key, _) = AccountKey::generate().unwrap();
        let body = key
            .sign(
                &Signer::Kid("https://ca/acct/7"),
                "n",
                "https://ca/o/1",
                None,
            )
            .unwrap();
        let jws: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(jws["payload"], "");
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jws["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["kid"], "https://ca/acct/7");
        assert!(header.get("jwk").is_none());
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1 uses an RSA key; this checks the recipe on the
        // EC member order instead: hash of exactly the sorted members.
        let (key, _) = AccountKey::generate().unwrap();
        let jwk = key.jwk();
        assert!(
            jwk.starts_with(r#"{"crv":"P-256","kty":"EC","x":""#),
            "{jwk}"
        );
        let expected = b64(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()).as_ref());
        assert_eq!(key.thumbprint(), expected);
        assert_eq!(key.thumbprint().len(), 43);
        assert_eq!(key.key_authorization("tok"), format!("tok.{expected}"));
    }

    #[test]
    fn base64url_has_no_padding_and_the_url_alphabet() {
        assert_eq!(b64(&[0xfb, 0xff]), "-_8");
    }
}
