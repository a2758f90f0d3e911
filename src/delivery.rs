//! From the outbox to the sinks: one courier thread per sink, so a sink
//! that is down (a broker restarting, a failing hook) holds up no other.
//! Each courier delivers in order and moves its cursor only after the sink
//! said the record is delivered.

use crate::error::Result;
use crate::output::{Emit, Sink};
use crate::record::Record;
use crate::retry::{classify, Disposition, Schedule};
use crate::store::Outbox;
use crate::timefmt::duration_text;
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

/// Starts one courier per sink, each retrying on `schedule`, and returns
/// what the worker emits into.
pub fn start(outbox: Arc<Outbox>, sinks: Vec<Box<dyn Sink>>, schedule: Schedule) -> Dispatch {
    let mut couriers = Vec::new();
    for sink in sinks {
        let (nudge, nudged) = channel();
        let outbox = Arc::clone(&outbox);
        std::thread::spawn(move || run_courier(&outbox, sink, &nudged, schedule));
        couriers.push(nudge);
    }
    Dispatch { outbox, couriers }
}

/// Delivers everything `sink` has pending; returns how many it delivered.
pub fn deliver_pending(outbox: &Outbox, sink: &mut dyn Sink) -> Result<usize> {
    let name = sink.name();
    let waiting = outbox.waiting(name)?;
    let mut delivered = 0;
    for (seq, path) in &waiting {
        if let Some(line) = outbox.read(path)? {
            sink.deliver(&line)?;
            delivered += 1;
        }
        outbox.set_cursor(name, *seq)?;
    }
    if !waiting.is_empty() {
        if let Err(e) = outbox.collect_garbage() {
            log::warn!("cannot clean the outbox: {e}");
        }
    }
    Ok(delivered)
}

/// Delivers what is pending; with nothing to deliver, lets the sink do its
/// housekeeping (connect, keep alive), so a sink that is down is noticed
/// and retried even while no measurement arrives.
fn attempt(outbox: &Outbox, sink: &mut dyn Sink) -> Result<usize> {
    let delivered = deliver_pending(outbox, sink)?;
    if delivered == 0 {
        sink.idle()?;
    }
    Ok(delivered)
}

/// Pure: how long to wait after the `attempts`-th failure in a row. A sink
/// with housekeeping (MQTT) is retried at least that often while the fault
/// may pass by itself, so it is back (and `online`) soon after its broker.
fn retry_wait(
    schedule: &Schedule,
    d: Disposition,
    attempts: u32,
    idle: Option<Duration>,
) -> Duration {
    let delay = schedule.delay(d, attempts);
    match (d, idle) {
        (Disposition::Transient, Some(idle)) if !idle.is_zero() => delay.min(idle),
        _ => delay,
    }
}

fn run_courier(
    outbox: &Outbox,
    mut sink: Box<dyn Sink>,
    nudged: &Receiver<()>,
    schedule: Schedule,
) {
    let name = sink.name();
    let mut attempts: u32 = 0;
    loop {
        let wait = match attempt(outbox, &mut *sink) {
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
                // A sink never asks for re-authorization; were it to, it
                // would be no outage either.
                let d = match classify(&e) {
                    Disposition::Transient => Disposition::Transient,
                    Disposition::Persistent | Disposition::NeedsReauth => Disposition::Persistent,
                };
                let wait = retry_wait(&schedule, d, attempts, sink.idle_interval());
                let waiting = outbox.waiting(name).map_or(0, |p| p.len());
                let delay = duration_text(wait);
                match d {
                    Disposition::Transient => log::warn!(
                        "{name} is down: {e}; {waiting} measurement group(s) wait in the outbox, retrying in {delay}"
                    ),
                    _ => log::error!(
                        "{name} is down and will not fix itself: {e}; {waiting} measurement group(s) wait in the outbox, retrying in {delay}"
                    ),
                }
                wait
            }
        };
        match nudged.recv_timeout(wait) {
            Ok(()) => while nudged.try_recv().is_ok() {},
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, MqttKind};
    use crate::store::testdir::TestDir;

    /// A sink that fails while `down` is set and records what it got.
    struct Flaky {
        name: &'static str,
        down: bool,
        got: Vec<String>,
    }

    impl Sink for Flaky {
        fn name(&self) -> &'static str {
            self.name
        }
        fn deliver(&mut self, line: &str) -> Result<()> {
            if self.down {
                return Err(Error::mqtt(
                    "b:1883",
                    MqttKind::Unreachable("broker away".into()),
                ));
            }
            self.got.push(line.to_string());
            Ok(())
        }
    }

    fn flaky(down: bool) -> Flaky {
        Flaky {
            name: "flaky",
            down,
            got: vec![],
        }
    }

    /// A record line as the worker writes it, told apart by its grpid.
    fn record(grpid: i64) -> String {
        format!(r#"{{"userid":"7","grpid":{grpid},"date":1,"time":"t","measures":[]}}"#)
    }

    #[test]
    fn a_down_sink_keeps_its_records_and_catches_up_in_order_once() {
        let dir = TestDir::new("delivery");
        let outbox = Outbox::open(dir.path(), &["flaky"]).unwrap();
        let lines = [record(1), record(2), record(3)];
        for line in &lines {
            outbox.append(line).unwrap();
        }
        let mut sink = flaky(true);
        assert!(deliver_pending(&outbox, &mut sink).is_err());
        assert_eq!(outbox.pending("flaky").unwrap().len(), 3);
        sink.down = false;
        assert_eq!(deliver_pending(&outbox, &mut sink).unwrap(), 3);
        assert_eq!(
            deliver_pending(&outbox, &mut sink).unwrap(),
            0,
            "nothing twice"
        );
        assert_eq!(sink.got, lines);
    }

    #[test]
    fn a_transient_fault_of_a_keepalive_sink_is_retried_at_least_that_often() {
        let s = Schedule::default();
        let idle = Some(Duration::from_secs(30));
        let t = Disposition::Transient;
        assert_eq!(retry_wait(&s, t, 1, idle), Duration::from_secs(2));
        assert_eq!(retry_wait(&s, t, 9, idle), Duration::from_secs(30));
        assert_eq!(retry_wait(&s, t, 9, None), Duration::from_secs(300));
        let p = Disposition::Persistent;
        assert_eq!(retry_wait(&s, p, 1, idle), Duration::from_secs(300));
    }
}
