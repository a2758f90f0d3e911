//! CA files given on the command line (`--ca-file`, `--mqtt-ca`).

use crate::error::{Error, Result};
use std::path::Path;
use ureq::tls::{parse_pem, Certificate, PemItem};

/// The certificates in the PEM file `path`, given with `flag`. A file with
/// none is a configuration error: retrying would not help.
pub fn read_certificates(flag: &'static str, path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let certs: Vec<Certificate<'static>> = parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{flag} {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}
