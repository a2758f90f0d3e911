//! Values that must never reach a log: tokens, the client secret, the
//! webhook path secret. `Debug` prints a placeholder.

use crate::error::{Error, Result};
use std::fmt;
use std::io::Read;

#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `bytes` random bytes from the kernel, hex-encoded. /dev/urandom exists on
/// every Linux the relay targets, OpenWrt included.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("read randomness from", "/dev/urandom", e))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// True when `s` is exactly `len` lowercase hex digits: how every random
/// value the relay hands out looks, checked before it touches a path.
pub fn is_hex_token(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn random_hex_is_fresh_and_well_formed() {
        let a = random_hex(16).unwrap();
        let b = random_hex(16).unwrap();
        assert!(is_hex_token(&a, 32));
        assert_ne!(a, b);
    }

    #[test]
    fn hex_token_check_rejects_paths_and_case() {
        assert!(!is_hex_token("../../etc/passwd", 16));
        assert!(!is_hex_token("ABCDEF0123456789", 16));
        assert!(!is_hex_token("abc", 16));
    }
}
