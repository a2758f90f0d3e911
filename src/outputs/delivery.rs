//! From the outbox to the sinks: one courier thread per sink, so a sink
//! that is down (a broker restarting, a failing hook) holds up no other.
//! Each courier delivers in order and moves its cursor only after the sink
//! said the record is delivered. A record that cannot be read is moved
//! aside instead of blocking its sink for good.

use crate::error::{Error, Result};
use crate::outputs::{Emit, Sink};
use crate::record::{Record, RecordView};
use crate::store::Outbox;
use crate::timefmt::duration_text;
use crate::worker::retry::{classify, is_damaged_record, Disposition, Schedule};
use std::path::Path;
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
/// A record that cannot be read goes to `outbox/rejected/` and counts as
/// passed; any other failure stops here, to be retried.
pub fn deliver_pending(outbox: &Outbox, sink: &mut dyn Sink) -> Result<usize> {
    let name = sink.name();
    let waiting = outbox.waiting(name)?;
    let mut delivered = 0;
    for (seq, path) in &waiting {
        match deliver_one(outbox, sink, path) {
            Ok(true) => delivered += 1,
            // Moved aside by another courier meanwhile.
            Ok(false) => {}
            Err(e) if is_damaged_record(&e) => move_aside(outbox, name, path, &e)?,
            Err(e) => return Err(e),
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

/// Reads, checks and delivers one record; false when it is gone.
fn deliver_one(outbox: &Outbox, sink: &mut dyn Sink, path: &Path) -> Result<bool> {
    let Some(line) = outbox.read(path)? else {
        return Ok(false);
    };
    // Checked here, not only by the sinks that parse it, so every sink
    // skips the same records: JSON lines would otherwise pass garbage on.
    RecordView::parse(&line)?;
    sink.deliver(&line)?;
    Ok(true)
}

fn move_aside(outbox: &Outbox, name: &str, path: &Path, e: &Error) -> Result<()> {
    let detail = match e {
        Error::Corrupt { detail, .. } => detail.as_str(),
        _ => "",
    };
    if let Some(to) = outbox.reject(path)? {
        log::error!(
            "{name}: outbox record {} is damaged ({detail}) and is not delivered by any output; moved to {}, going on with the next group",
            path.display(),
            to.display()
        );
    }
    Ok(())
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

/// A sink with housekeeping is retried at least this often while its
/// fault may pass by itself. Its housekeeping runs more often (MQTT's
/// every 5 s), but each failed retry logs a warning, and one every 5 s
/// through a long broker outage would flood a router's small log.
const RETRY_HOUSEKEEPING_SINK_AT_LEAST: Duration = Duration::from_secs(30);

/// Pure: how long to wait after the `attempts`-th failure in a row. A sink
/// with housekeeping (MQTT) is retried at least every 30 s, or its idle
/// interval if longer, while the fault may pass by itself, so it is back
/// (and `online`) soon after its broker.
fn retry_wait(
    schedule: &Schedule,
    d: Disposition,
    attempts: u32,
    idle: Option<Duration>,
) -> Duration {
    let delay = schedule.delay(d, attempts);
    match (d, idle) {
        (Disposition::Transient, Some(idle)) if !idle.is_zero() => {
            delay.min(idle.max(RETRY_HOUSEKEEPING_SINK_AT_LEAST))
        }
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
    use crate::error::MqttKind;
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

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
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
    fn a_damaged_record_moves_aside_and_every_sink_goes_on() {
        let dir = TestDir::new("delivery-damaged");
        let outbox = Outbox::open(dir.path(), &["flaky", "other"]).unwrap();
        outbox.append(&record(1)).unwrap();
        outbox.append(r#"{"userid":"7","grp"#).unwrap(); // cut short
        outbox.append(&record(3)).unwrap();
        outbox.append(&record(4)).unwrap();
        let records = file_names(&dir.path().join("records"));
        // Not UTF-8 at all.
        std::fs::write(dir.path().join("records").join(&records[2]), b"\xff").unwrap();

        let mut sink = flaky(false);
        assert_eq!(deliver_pending(&outbox, &mut sink).unwrap(), 2);
        assert_eq!(sink.got, [record(1), record(4)]);
        assert_eq!(outbox.cursor("flaky").unwrap(), 4);
        assert_eq!(
            file_names(&dir.path().join("rejected")),
            &records[1..3],
            "both moved aside under their own names"
        );

        // The other sink never sees them either.
        let mut other = Flaky {
            name: "other",
            ..flaky(false)
        };
        assert_eq!(deliver_pending(&outbox, &mut other).unwrap(), 2);
        assert_eq!(other.got, [record(1), record(4)]);
    }

    #[test]
    fn a_failing_sink_does_not_move_records_aside() {
        let dir = TestDir::new("delivery-down");
        let outbox = Outbox::open(dir.path(), &["flaky"]).unwrap();
        outbox.append(&record(1)).unwrap();
        let err = deliver_pending(&outbox, &mut flaky(true)).unwrap_err();
        assert!(!is_damaged_record(&err));
        assert_eq!(outbox.cursor("flaky").unwrap(), 0);
        assert!(file_names(&dir.path().join("rejected")).is_empty());
    }

    #[test]
    fn a_transient_fault_of_a_keepalive_sink_is_retried_at_least_that_often() {
        let s = Schedule::default();
        let idle = Some(Duration::from_secs(30));
        let t = Disposition::Transient;
        assert_eq!(retry_wait(&s, t, 1, idle), Duration::from_secs(2));
        assert_eq!(retry_wait(&s, t, 9, idle), Duration::from_secs(30));
        assert_eq!(retry_wait(&s, t, 9, None), Duration::from_secs(300));
        let often = Some(Duration::from_secs(5));
        assert_eq!(
            retry_wait(&s, t, 9, often),
            Duration::from_secs(30),
            "a 5 s idle tick does not make a warning every 5 s"
        );
        let p = Disposition::Persistent;
        assert_eq!(retry_wait(&s, p, 1, idle), Duration::from_secs(300));
    }
}
