//! From the outbox to the sinks: one courier thread per sink, so a sink
//! that is down (a broker restarting, a failing hook) holds up no other.
//! Each courier delivers in order and moves its cursor only after the sink
//! said the record is delivered.

use crate::error::Result;
use crate::output::{Emit, Sink};
use crate::record::Record;
use crate::retry::{delay_secs, Disposition};
use crate::store::Outbox;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// With nothing to do, look at the outbox this often anyway.
const IDLE_RESCAN: Duration = Duration::from_secs(600);

/// What the worker emits into: the outbox, plus a nudge to every courier.
pub struct Dispatch {
    outbox: Arc<Outbox>,
    couriers: Vec<Sender<()>>,
}

impl Emit for Dispatch {
    fn emit(&mut self, record: &Record) -> Result<()> {
        self.outbox.append(&record.to_json_line())?;
        for courier in &self.couriers {
            let _ = courier.send(());
        }
        Ok(())
    }
}

/// Starts one courier per sink and returns what the worker emits into.
pub fn start(outbox: Arc<Outbox>, sinks: Vec<Box<dyn Sink>>) -> Dispatch {
    let mut couriers = Vec::new();
    for sink in sinks {
        let (nudge, nudged) = channel();
        let outbox = Arc::clone(&outbox);
        std::thread::spawn(move || run_courier(&outbox, sink, &nudged));
        couriers.push(nudge);
    }
    Dispatch { outbox, couriers }
}

/// Delivers everything `sink` has pending; returns how many it delivered.
pub fn deliver_pending(outbox: &Outbox, sink: &mut dyn Sink) -> Result<usize> {
    let pending = outbox.pending(sink.name())?;
    for (seq, line) in &pending {
        sink.deliver(line)?;
        outbox.set_cursor(sink.name(), *seq)?;
    }
    if !pending.is_empty() {
        if let Err(e) = outbox.collect_garbage() {
            log::warn!("cannot clean the outbox: {e}");
        }
    }
    Ok(pending.len())
}

fn run_courier(outbox: &Outbox, mut sink: Box<dyn Sink>, nudged: &Receiver<()>) {
    let name = sink.name();
    // Connect early (MQTT goes `online` at start, not at the first weigh-in).
    if let Err(e) = sink.idle() {
        log::warn!("{name}: {e}");
    }
    let mut attempts: u32 = 0;
    loop {
        let wait = match deliver_pending(outbox, &mut *sink) {
            Ok(n) => {
                if attempts > 0 {
                    log::info!("{name}: working again");
                }
                if n > 0 {
                    log::debug!("{name}: delivered {n} measurement group(s)");
                }
                attempts = 0;
                sink.idle_interval()
                    .map_or(IDLE_RESCAN, |i| i.min(IDLE_RESCAN))
            }
            Err(e) => {
                attempts = attempts.saturating_add(1);
                let delay = delay_secs(Disposition::Transient, attempts);
                let waiting = outbox.pending(name).map_or(0, |p| p.len());
                log::warn!(
                    "{name} is down: {e}; {waiting} measurement group(s) wait in the outbox, retrying in {delay} s"
                );
                Duration::from_secs(delay as u64)
            }
        };
        match nudged.recv_timeout(wait) {
            Ok(()) => while nudged.try_recv().is_ok() {},
            Err(RecvTimeoutError::Timeout) => {
                if attempts == 0 {
                    if let Err(e) = sink.idle() {
                        log::warn!("{name}: {e}");
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::store::testdir::TestDir;

    /// A sink that fails while `down` is set and records what it got.
    struct Flaky {
        down: bool,
        got: Vec<String>,
    }

    impl Sink for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn deliver(&mut self, line: &str) -> Result<()> {
            if self.down {
                return Err(Error::Mqtt("broker away".into()));
            }
            self.got.push(line.to_string());
            Ok(())
        }
    }

    #[test]
    fn a_down_sink_keeps_its_records_and_catches_up_in_order_once() {
        let dir = TestDir::new("delivery");
        let outbox = Outbox::open(dir.path(), &["flaky"]).unwrap();
        for line in ["1", "2", "3"] {
            outbox.append(line).unwrap();
        }
        let mut sink = Flaky {
            down: true,
            got: vec![],
        };
        assert!(deliver_pending(&outbox, &mut sink).is_err());
        assert_eq!(outbox.pending("flaky").unwrap().len(), 3);
        sink.down = false;
        assert_eq!(deliver_pending(&outbox, &mut sink).unwrap(), 3);
        assert_eq!(
            deliver_pending(&outbox, &mut sink).unwrap(),
            0,
            "nothing twice"
        );
        assert_eq!(sink.got, ["1", "2", "3"]);
    }
}
