//! The one error type of the relay. Every message says what went wrong and,
//! where the user can do something about it, how to fix it.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// A command-line option or environment variable is missing or malformed.
    /// The text names the flag and how to fix it.
    Config(String),
    /// A file or directory could not be read or written.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A state file exists but does not hold what the relay wrote there.
    Corrupt { path: PathBuf, detail: String },
    /// Withings could not be reached, did not answer in time, or answered
    /// with something that is not its JSON envelope (HTTP 5xx, cut-off JSON).
    Transport(String),
    /// Withings answered HTTP 200 with a non-zero `status` (facts sheet §0, §4.1).
    Api {
        endpoint: &'static str,
        status: i64,
        message: String,
    },
    /// Withings refused the stored refresh token: only a new authorization helps.
    ReauthNeeded { userid: String },
    /// A command named a user the relay has never linked.
    UnknownUser(String),
    /// A measurement could not be handed to an output.
    Output { sink: String, source: io::Error },
    /// The MQTT broker could not be reached, refused us, or broke the
    /// protocol. The text says which and what to check.
    Mqtt(String),
    /// The listening socket stopped working (accept kept failing) or the
    /// request threads could not start: `serve` ends so that procd or
    /// systemd starts the relay afresh.
    Listen(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(text) => f.write_str(text),
            Error::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())?;
                match source.kind() {
                    io::ErrorKind::PermissionDenied => f.write_str(
                        " (run as the user that owns the state dir, or pass another --state-dir)",
                    ),
                    io::ErrorKind::StorageFull => {
                        f.write_str(" (the disk is full: free some space; nothing was lost)")
                    }
                    _ => Ok(()),
                }
            }
            Error::Corrupt { path, detail } => write!(
                f,
                "state file {} is damaged ({detail}); move it aside and link the user again with `withings-relay authorize`",
                path.display()
            ),
            Error::Transport(text) => write!(f, "withings unreachable or answered oddly: {text}"),
            Error::Api {
                endpoint,
                status,
                message,
            } => {
                write!(f, "withings {endpoint} answered status {status}")?;
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            Error::ReauthNeeded { userid } => write!(
                f,
                "withings rejected the refresh token of user {userid}: run `withings-relay authorize` and link that account again (queued notifications are kept)"
            ),
            Error::UnknownUser(userid) => write!(
                f,
                "user {userid} is not linked: run `withings-relay authorize` to link it"
            ),
            Error::Output { sink, source } => write!(f, "cannot write to {sink}: {source}"),
            Error::Mqtt(text) => write!(f, "mqtt: {text}"),
            Error::Listen(text) => write!(
                f,
                "stopped serving: {text} (exiting so that procd or systemd restarts the relay; if it recurs, check `ulimit -n` and the task limit)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Output { source, .. } => Some(source),
            _ => None,
        }
    }
}
