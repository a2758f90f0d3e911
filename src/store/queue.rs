//! The durable queue of acknowledged notifications: one file each in
//! `queue/`, written before the webhook answers 200 and removed only after
//! the sync it asked for succeeded. The name carries the arrival order and
//! the user id, which is all the worker needs: a notification is only a
//! hint to sync that user from its cursor (facts sheet §2.3), so no file
//! is ever read.

use super::atomic;
use super::per_user::{checked_userid, is_valid_userid};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// What Withings posted (facts sheet §3.3), as validated by the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub userid: String,
    pub appli: i64,
    pub startdate: Option<i64>,
    pub enddate: Option<i64>,
    pub received_at: i64,
}

#[cfg(test)]
impl Notification {
    /// A weigh-in notification for `userid`, for tests that need one
    /// queued (its fields are not stored: see [`Queue::push`]).
    pub fn for_tests(userid: &str) -> Notification {
        Notification {
            userid: userid.into(),
            appli: 1,
            startdate: Some(1),
            enddate: Some(2),
            received_at: 3,
        }
    }
}

static SEQUENCE: AtomicUsize = AtomicUsize::new(0);

/// A file name for something that arrives in `queue/` for `whom`:
/// nanoseconds + pid + a sequence keep names unique across restarts and
/// sort them in arrival order.
pub(super) fn arrival_name(whom: &str, extension: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!(
        "{nanos:020}-{}-{seq}-{whom}.{extension}",
        std::process::id()
    )
}

/// When the queue file at `path` arrived, in Unix seconds, from its name.
pub fn arrival_secs(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    // u64 nanoseconds last until 2554; no 128-bit arithmetic on MIPS.
    let nanos: u64 = name.split('-').next()?.parse().ok()?;
    i64::try_from(nanos / 1_000_000_000).ok()
}

pub struct Queue {
    dir: PathBuf,
}

impl Queue {
    pub(super) fn new(dir: PathBuf) -> Queue {
        Queue { dir }
    }

    /// Stores the notification durably; when this returns Ok it survives a
    /// kill -9 or power cut. The file holds `{}`: its name is what counts.
    /// (Earlier relays wrote the notification's fields, which nothing read;
    /// their files are taken by name like any other.)
    pub fn push(&self, n: &Notification) -> Result<()> {
        let userid = checked_userid(&n.userid)?;
        atomic::write(&self.dir.join(arrival_name(userid, "json")), b"{}\n")
    }

    /// Pending notification files, grouped by user id.
    pub fn pending(&self) -> Result<BTreeMap<String, Vec<PathBuf>>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?;
        let mut by_user: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(userid) = name
                .to_str()
                .filter(|n| !n.starts_with('.'))
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.rsplit('-').next())
                .filter(|id| is_valid_userid(id))
            else {
                continue;
            };
            by_user
                .entry(userid.to_string())
                .or_default()
                .push(entry.path());
        }
        for paths in by_user.values_mut() {
            paths.sort();
        }
        Ok(by_user)
    }

    /// Drops notifications whose sync is done.
    pub fn remove(&self, done: &[PathBuf]) -> Result<()> {
        for path in done {
            atomic::remove(path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    fn note(userid: &str) -> Notification {
        Notification::for_tests(userid)
    }

    #[test]
    fn pushed_notifications_are_pending_per_user_until_removed() {
        let dir = TestDir::new("queue");
        let q = Queue::new(dir.path().to_path_buf());
        q.push(&note("11")).unwrap();
        q.push(&note("11")).unwrap();
        q.push(&note("22")).unwrap();
        let pending = q.pending().unwrap();
        assert_eq!(pending["11"].len(), 2, "repeated deliveries are all kept");
        assert_eq!(pending["22"].len(), 1);
        let name = pending["22"][0].file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with("-22.json"), "{name}");
        let arrived = arrival_secs(&pending["22"][0]).unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!((arrived - now.as_secs() as i64).abs() <= 1, "{arrived}");
        q.remove(&pending["11"]).unwrap();
        assert!(!q.pending().unwrap().contains_key("11"));
    }

    #[test]
    fn a_file_of_an_earlier_relay_is_pending_by_its_name() {
        let dir = TestDir::new("queue-old");
        let q = Queue::new(dir.path().to_path_buf());
        let old = r#"{"userid":"33","appli":1,"startdate":1,"enddate":2,"received_at":3}"#;
        let path = dir.path().join("00000001700000000000000-42-0-33.json");
        std::fs::write(&path, old).unwrap();
        assert_eq!(q.pending().unwrap()["33"], std::slice::from_ref(&path));
        assert_eq!(arrival_secs(&path), Some(1_700_000));
    }

    #[test]
    fn the_arrival_time_is_read_from_the_name() {
        let dir = TestDir::new("queue-arrival");
        let q = Queue::new(dir.path().to_path_buf());
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        q.push(&note("11")).unwrap();
        let path = &q.pending().unwrap()["11"][0];
        let at = arrival_secs(path).unwrap();
        assert!((at - before.as_secs() as i64).abs() <= 1, "{at}");
        let old = std::path::Path::new("q/01700000000123456789-42-0-33.json");
        assert_eq!(arrival_secs(old), Some(1_700_000_000));
        assert_eq!(arrival_secs(std::path::Path::new("q/x-33.json")), None);
    }

    #[test]
    fn temp_and_foreign_files_are_not_pending() {
        let dir = TestDir::new("queue-foreign");
        let q = Queue::new(dir.path().to_path_buf());
        std::fs::write(dir.path().join(".tmp-1-2-x-11.json"), b"").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        assert!(q.pending().unwrap().is_empty());
        assert!(q.push(&note("../1")).is_err());
    }
}
