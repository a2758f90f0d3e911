//! Crash-safe files: every write goes to a temp file in the same directory,
//! is fsynced, renamed over the target, and the directory is fsynced, so a
//! kill -9 or power cut leaves either the old or the new file, never a torn
//! one.

use crate::error::{Error, Fix, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Temp files start with this, so listings and sweeps can tell them apart.
pub const TEMP_PREFIX: &str = ".tmp-";

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Replaces `path` with `bytes`, atomically and durably, mode 0600.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}-{name}", std::process::id()));
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(Error::io("write", path, e));
    }
    sync_dir(dir)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    // Only a map with non-string keys or a failing Serialize impl can fail
    // here: a bug, not a damaged file.
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| Error::corrupt(path, e, Fix::Report))?;
    bytes.push(b'\n');
    write(path, &bytes)
}

/// The file's JSON, or None when it does not exist. A file that does not
/// parse is [`Error::Corrupt`] with `if_damaged`, what fits that file.
pub fn read_json<T: DeserializeOwned>(path: &Path, if_damaged: Fix) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::corrupt(path, e, if_damaged)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Removes `path` durably. Returns false if it was already gone, which
/// callers use as "someone else consumed it first".
pub fn remove(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Makes a rename or unlink in `dir` survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))
}

/// Deletes temp files that a killed process left behind. Only the finished
/// rename counts, so these never hold anything that was acknowledged.
pub fn sweep_temp_files(dir: &Path) -> Result<usize> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path()).map_err(|e| Error::io("remove", entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_replaces_whole_file_with_private_mode() {
        let dir = TestDir::new("atomic-write");
        let path = dir.path().join("f.json");
        write(&path, b"old contents that are longer").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let dir = TestDir::new("atomic-fail");
        let path = dir.path().join("f");
        write(&path, b"old").unwrap();
        // A directory where the file should go makes rename fail.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        assert!(write(&blocked, b"new").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(sweep_temp_files(dir.path()).unwrap(), 0);
    }

    #[test]
    fn read_json_tells_missing_from_corrupt() {
        let dir = TestDir::new("atomic-read");
        let path = dir.path().join("v.json");
        assert_eq!(read_json::<u32>(&path, Fix::Relink).unwrap(), None);
        fs::write(&path, b"{\"half").unwrap();
        let err = read_json::<u32>(&path, Fix::SyncState).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { path: p, fix: Fix::SyncState, .. } if *p == path),
            "{err:?}"
        );
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let dir = TestDir::new("atomic-sweep");
        fs::write(dir.path().join(".tmp-1-0-x"), b"partial").unwrap();
        fs::write(dir.path().join("keep"), b"data").unwrap();
        assert_eq!(sweep_temp_files(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep").exists());
    }

    #[test]
    fn remove_reports_whether_it_removed() {
        let dir = TestDir::new("atomic-remove");
        let path = dir.path().join("once");
        write(&path, b"1").unwrap();
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
    }
}
