//! Where measurements leave the relay. The worker hands each new group to
//! [`Emit`]; in `serve` that is the outbox, from which one courier thread
//! per [`Sink`] delivers in order (see `delivery.rs`).

pub mod delivery;
mod diagnostics;
mod exec;
mod hass;
mod jsonl;
mod mqtt;

pub use exec::ExecHook;
pub use hass::status_topic;
pub use jsonl::{JsonLines, JsonLinesTarget};
pub use mqtt::{MqttSink, Topics};

use crate::error::Result;
use crate::record::Record;
use std::time::Duration;

/// Takes a finished record; Ok means it will not be lost.
pub trait Emit: Send {
    fn emit(&mut self, record: &Record) -> Result<()>;
}

/// One output. `deliver` gets the record's JSON line and returns Ok only
/// once the record is really delivered (written, acknowledged, accepted).
pub trait Sink: Send {
    /// A short fixed name, used in logs and as the outbox cursor's file name.
    fn name(&self) -> &'static str;

    fn deliver(&mut self, line: &str) -> Result<()>;

    /// How often [`Sink::idle`] wants to run while nothing is delivered.
    fn idle_interval(&self) -> Option<Duration> {
        None
    }

    /// Housekeeping between deliveries (an MQTT keepalive, say).
    fn idle(&mut self) -> Result<()> {
        Ok(())
    }
}
