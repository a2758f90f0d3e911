//! Measurements on their way out. Each emitted group is written once to
//! `outbox/records/<seq>.json`; each sink keeps its own cursor (the last
//! sequence number it delivered) in `outbox/<sink>.cursor`. A sink that is
//! down falls behind and catches up in order when it is back; records every
//! sink has passed are deleted. One write per group, however many sinks,
//! so a failure can never leave a group queued for some sinks only.
//!
//! A record that cannot be read back (not UTF-8, not a record) would block
//! every sink behind it for good: the couriers move it to
//! `outbox/rejected/<seq>.json` instead, for every sink at once, and go on.

use super::atomic;
use crate::error::{Error, Fix, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct Outbox {
    dir: PathBuf,
    /// The sinks configured now: a record leaves once all of them have it.
    sinks: Vec<String>,
    /// The next sequence number. A plain u64 behind a lock: 32-bit MIPS has
    /// no 64-bit atomics.
    next_seq: Mutex<u64>,
}

fn seq_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    name.strip_suffix(".json")?.parse().ok()
}

/// Every stored record in the outbox at `dir`, oldest first.
fn records_in(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = dir.join("records");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
    let mut records: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| seq_of(&e.path()).map(|s| (s, e.path())))
        .collect();
    records.sort();
    Ok(records)
}

/// Read-only, for `status`: the sinks that have a cursor in the outbox at
/// `dir`, sorted; none when no `serve` has run yet.
pub fn sinks_in(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut sinks: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let sink = name.strip_suffix(".cursor")?;
            (!sink.starts_with('.')).then(|| sink.to_string())
        })
        .collect();
    sinks.sort();
    Ok(sinks)
}

/// Read-only, for `status`: the records `sink` has not delivered yet,
/// oldest first, without opening the outbox (which writes cursors). A sink
/// without a cursor has nothing waiting: `serve` starts it at the end.
pub fn undelivered_in(dir: &Path, sink: &str) -> Result<Vec<(u64, PathBuf)>> {
    let cursor: Option<u64> =
        atomic::read_json(&dir.join(format!("{sink}.cursor")), Fix::OutboxCursor)?;
    let Some(cursor) = cursor else {
        return Ok(Vec::new());
    };
    let mut records = match records_in(dir) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new())
        }
        other => other?,
    };
    records.retain(|(seq, _)| *seq > cursor);
    Ok(records)
}

impl Outbox {
    /// Opens the outbox for these sinks. A sink seen for the first time
    /// starts at the end: it gets what arrives from now on, not history.
    /// Leftover temp files are `StateDir::sweep_temp_files`'s to remove.
    pub fn open(dir: &Path, sinks: &[&str]) -> Result<Outbox> {
        atomic::ensure_dir(&dir.join("records"))?;
        atomic::ensure_dir(&dir.join("rejected"))?;
        let mut outbox = Outbox {
            dir: dir.to_path_buf(),
            sinks: sinks.iter().map(|s| s.to_string()).collect(),
            next_seq: Mutex::new(1),
        };
        let newest_record = outbox.records()?.last().map_or(0, |(seq, _)| *seq);
        let mut newest = newest_record;
        for sink in sinks {
            if let Some(cursor) = outbox.stored_cursor(sink)? {
                newest = newest.max(cursor);
            }
        }
        for sink in sinks {
            if outbox.stored_cursor(sink)?.is_none() {
                outbox.set_cursor(sink, newest)?;
            }
        }
        outbox.next_seq = Mutex::new(newest + 1);
        Ok(outbox)
    }

    fn cursor_path(&self, sink: &str) -> PathBuf {
        self.dir.join(format!("{sink}.cursor"))
    }

    fn stored_cursor(&self, sink: &str) -> Result<Option<u64>> {
        atomic::read_json(&self.cursor_path(sink), Fix::OutboxCursor)
    }

    /// The last sequence number `sink` delivered.
    pub fn cursor(&self, sink: &str) -> Result<u64> {
        Ok(self.stored_cursor(sink)?.unwrap_or(0))
    }

    /// Records that `sink` delivered everything up to `seq`.
    pub fn set_cursor(&self, sink: &str, seq: u64) -> Result<()> {
        atomic::write_json(&self.cursor_path(sink), &seq)
    }

    /// Stores a record for every sink; when this returns Ok it survives a
    /// crash.
    pub fn append(&self, line: &str) -> Result<u64> {
        let mut next = self
            .next_seq
            .lock()
            .map_err(|_| Error::Internal("the outbox's sequence lock is poisoned"))?;
        let seq = *next;
        atomic::write(&self.record_path(seq), line.as_bytes())?;
        *next += 1;
        Ok(seq)
    }

    fn record_path(&self, seq: u64) -> PathBuf {
        self.dir.join("records").join(format!("{seq:020}.json"))
    }

    /// Every stored record, oldest first.
    fn records(&self) -> Result<Vec<(u64, PathBuf)>> {
        records_in(&self.dir)
    }

    /// The records `sink` has not delivered yet, oldest first.
    pub fn waiting(&self, sink: &str) -> Result<Vec<(u64, PathBuf)>> {
        let cursor = self.cursor(sink)?;
        let mut records = self.records()?;
        records.retain(|(seq, _)| *seq > cursor);
        Ok(records)
    }

    /// The text of the record at `path`; None when it is gone (another
    /// courier moved it aside). Bytes that are not UTF-8 are a damaged
    /// record ([`Fix::OutboxRecord`]); other failures are the disk's.
    pub fn read(&self, path: &Path) -> Result<Option<String>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(Error::corrupt(path, e, Fix::OutboxRecord))
            }
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Moves the record at `path` to `outbox/rejected/`, for every sink at
    /// once, and returns where it went; None when another courier was first.
    pub fn reject(&self, path: &Path) -> Result<Option<PathBuf>> {
        let rejected = self.dir.join("rejected");
        let to = rejected.join(path.file_name().unwrap_or_default());
        match std::fs::rename(path, &to) {
            Ok(()) => {
                atomic::sync_dir(&rejected)?;
                atomic::sync_dir(path.parent().unwrap_or(&self.dir))?;
                Ok(Some(to))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("move aside", path, e)),
        }
    }

    /// The records `sink` has not delivered yet, oldest first, with their text.
    #[cfg(test)]
    pub fn pending(&self, sink: &str) -> Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        for (seq, path) in self.waiting(sink)? {
            out.extend(self.read(&path)?.map(|text| (seq, text)));
        }
        Ok(out)
    }

    /// Deletes records that every configured sink has delivered.
    pub fn collect_garbage(&self) -> Result<usize> {
        let mut done = u64::MAX;
        for sink in &self.sinks {
            done = done.min(self.cursor(sink)?);
        }
        let mut removed = 0;
        for (seq, path) in self.records()? {
            if seq <= done && atomic::remove(&path)? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    #[test]
    fn each_sink_sees_records_in_order_until_it_moves_its_cursor() {
        let dir = TestDir::new("outbox");
        let outbox = Outbox::open(dir.path(), &["output", "mqtt"]).unwrap();
        assert_eq!(outbox.append("a").unwrap(), 1);
        assert_eq!(outbox.append("b").unwrap(), 2);
        outbox.set_cursor("output", 2).unwrap();
        assert!(outbox.pending("output").unwrap().is_empty());
        let mqtt: Vec<String> = outbox
            .pending("mqtt")
            .unwrap()
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(mqtt, ["a", "b"], "the slow sink still has both");
        assert_eq!(outbox.collect_garbage().unwrap(), 0);
        outbox.set_cursor("mqtt", 1).unwrap();
        assert_eq!(outbox.collect_garbage().unwrap(), 1, "a is done everywhere");
        assert_eq!(outbox.pending("mqtt").unwrap(), vec![(2, "b".to_string())]);
    }

    #[test]
    fn numbering_survives_restarts_even_when_everything_was_delivered() {
        let dir = TestDir::new("outbox-restart");
        let outbox = Outbox::open(dir.path(), &["output"]).unwrap();
        outbox.append("a").unwrap();
        outbox.append("b").unwrap();
        outbox.set_cursor("output", 2).unwrap();
        outbox.collect_garbage().unwrap();
        drop(outbox);
        let again = Outbox::open(dir.path(), &["output"]).unwrap();
        assert_eq!(
            again.append("c").unwrap(),
            3,
            "never reuses a delivered number"
        );
        assert_eq!(again.pending("output").unwrap(), vec![(3, "c".to_string())]);
    }

    #[test]
    fn a_rejected_record_leaves_every_sink_and_numbering_goes_on() {
        let dir = TestDir::new("outbox-reject");
        let outbox = Outbox::open(dir.path(), &["output", "mqtt"]).unwrap();
        outbox.append("a").unwrap();
        outbox.append("b").unwrap();
        let (seq, path) = outbox.waiting("mqtt").unwrap().remove(0);
        assert_eq!(seq, 1);
        let moved = outbox.reject(&path).unwrap().unwrap();
        assert_eq!(
            moved,
            dir.path().join("rejected").join(path.file_name().unwrap())
        );
        assert_eq!(std::fs::read_to_string(&moved).unwrap(), "a");
        assert_eq!(outbox.reject(&path).unwrap(), None, "already moved");
        assert_eq!(outbox.read(&path).unwrap(), None, "gone for every sink");
        assert_eq!(
            outbox.pending("output").unwrap(),
            vec![(2, "b".to_string())]
        );
        assert_eq!(outbox.append("c").unwrap(), 3);
    }

    #[test]
    fn a_record_that_is_not_utf8_is_damaged_not_a_disk_error() {
        let dir = TestDir::new("outbox-binary");
        let outbox = Outbox::open(dir.path(), &["output"]).unwrap();
        let seq = outbox.append("x").unwrap();
        std::fs::write(outbox.record_path(seq), b"\xff\xfe").unwrap();
        let (_, path) = outbox.waiting("output").unwrap().remove(0);
        assert!(matches!(
            outbox.read(&path),
            Err(Error::Corrupt {
                fix: Fix::OutboxRecord,
                ..
            })
        ));
    }

    #[test]
    fn status_reads_the_backlog_without_writing_anything() {
        let dir = TestDir::new("outbox-readonly");
        let outbox_dir = dir.path().join("outbox");
        assert!(sinks_in(&outbox_dir).unwrap().is_empty(), "no serve yet");
        let outbox = Outbox::open(&outbox_dir, &["mqtt", "exec"]).unwrap();
        outbox.append("a").unwrap();
        outbox.append("b").unwrap();
        outbox.set_cursor("exec", 2).unwrap();
        std::fs::write(outbox_dir.join(".tmp-1-2-exec.cursor"), b"7").unwrap();
        assert_eq!(sinks_in(&outbox_dir).unwrap(), ["exec", "mqtt"]);
        let seqs = |sink| -> Vec<u64> {
            undelivered_in(&outbox_dir, sink)
                .unwrap()
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        };
        assert_eq!(seqs("mqtt"), [1, 2]);
        assert!(seqs("exec").is_empty());
        assert!(seqs("jsonl").is_empty(), "no cursor: starts at the end");
        assert!(!outbox_dir.join("jsonl.cursor").exists(), "nothing written");
    }

    #[test]
    fn a_new_sink_starts_at_the_end_and_a_backlog_is_kept_for_old_ones() {
        let dir = TestDir::new("outbox-new-sink");
        let outbox = Outbox::open(dir.path(), &["output"]).unwrap();
        outbox.append("old").unwrap();
        drop(outbox);
        let again = Outbox::open(dir.path(), &["output", "exec"]).unwrap();
        assert!(
            again.pending("exec").unwrap().is_empty(),
            "no history replay"
        );
        assert_eq!(
            again.pending("output").unwrap().len(),
            1,
            "the backlog stays"
        );
    }
}
