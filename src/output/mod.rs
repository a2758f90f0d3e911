//! Where measurements leave the relay. Each sink takes a finished
//! [`Record`]; an error means "not delivered", and the notification that
//! produced it stays queued.

mod jsonl;

pub use jsonl::JsonLines;

use crate::error::Result;
use crate::record::Record;

pub trait Sink: Send {
    fn emit(&mut self, record: &Record) -> Result<()>;
}
