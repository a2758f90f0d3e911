//! The three commands, and what they share.

pub mod authorize;
pub mod fetch;
pub mod serve;

use crate::cli::{Cli, Command};
use crate::config::{self, Env};
use crate::error::{Error, Result};
use crate::tls_roots;
use crate::withings::api::Api;

/// The Withings API client the flags describe.
pub fn api(cli: &Cli) -> Result<Api> {
    let base = config::url_option("--api-url", &cli.api_url)?;
    let extra_ca = match &cli.ca_file {
        Some(path) => tls_roots::read_pem("--ca-file", path)?,
        None => Vec::new(),
    };
    Ok(Api::new(base, extra_ca))
}

pub fn run(cli: &Cli, env: Env) -> Result<()> {
    match &cli.command {
        Some(Command::Serve(args)) => serve::run(cli, args, env),
        Some(Command::Authorize(args)) => authorize::run(cli, args, env),
        Some(Command::Fetch(args)) => fetch::run(cli, args, env),
        None => Err(Error::Config(
            "no command given: use serve, authorize or fetch (see --help)".into(),
        )),
    }
}
