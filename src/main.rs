//! Wiring only: parse the command line, check it into settings, set up
//! logging, run the command. An error is one line on stderr and exit
//! code 1; a command line that does not parse exits 2 (README, "Exit
//! codes").

use argh::FromArgs;
use log::LevelFilter;
use withings_relay::cli::{hoist_shared_options, Cli};
use withings_relay::commands;
use withings_relay::config::Settings;
use withings_relay::error::{Error, Result};

fn parse_args() -> Cli {
    let raw: Vec<String> = std::env::args().collect();
    let args = hoist_shared_options(raw.get(1..).unwrap_or_default());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match Cli::from_args(&["withings-relay"], &refs) {
        Ok(cli) => cli,
        Err(early) => {
            if early.status.is_ok() {
                println!("{}", early.output);
                std::process::exit(0);
            }
            eprintln!("{}Run `withings-relay --help` for usage.", early.output);
            std::process::exit(2);
        }
    }
}

fn init_logging(level: LevelFilter) -> Result<()> {
    simple_logger::SimpleLogger::new()
        .with_level(level)
        // The HTTP and TLS crates are quiet unless something is wrong.
        .with_module_level("ureq", LevelFilter::Warn)
        .with_module_level("ureq_proto", LevelFilter::Warn)
        .with_module_level("rustls", LevelFilter::Warn)
        .init()
        .map_err(|e| Error::Config(e.to_string()))
}

fn run(cli: &Cli) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let settings = Settings::from_cli(cli, &env)?;
    init_logging(settings.shared.log_level)?;
    settings.log_warnings();
    commands::run(settings)
}

fn main() {
    let cli = parse_args();
    if cli.version {
        println!("withings-relay {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    if let Err(e) = run(&cli) {
        eprintln!("withings-relay: {e}");
        std::process::exit(1);
    }
}
