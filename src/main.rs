//! Wiring only: parse the command line, set up logging, run a command,
//! turn an error into one line on stderr and a non-zero exit.

use argh::FromArgs;
use log::LevelFilter;
use withings_relay::cli::{hoist_shared_options, Cli};
use withings_relay::commands;

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

fn init_logging(level: &str) -> Result<(), String> {
    let level: LevelFilter = level
        .parse()
        .map_err(|_| format!("--log-level: {level:?} is not one of error, warn, info, debug"))?;
    simple_logger::SimpleLogger::new()
        .with_level(level)
        // The HTTP and TLS crates are quiet unless something is wrong.
        .with_module_level("ureq", LevelFilter::Warn)
        .with_module_level("ureq_proto", LevelFilter::Warn)
        .with_module_level("rustls", LevelFilter::Warn)
        .init()
        .map_err(|e| e.to_string())
}

fn main() {
    let cli = parse_args();
    if cli.version {
        println!("withings-relay {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    if let Err(e) = init_logging(&cli.log_level) {
        eprintln!("withings-relay: {e}");
        std::process::exit(2);
    }
    let env = |name: &str| std::env::var(name).ok();
    if let Err(e) = commands::run(&cli, &env) {
        eprintln!("withings-relay: {e}");
        std::process::exit(1);
    }
}
