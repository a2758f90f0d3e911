//! `callbacks/<userid>.json`: every notification URL this relay subscribed
//! the user with. After `--public-url` or the webhook secret changes, the
//! subscription check revokes the old ones, and `unlink` all of them; a URL
//! not recorded here (nor recognisably the relay's, see `keeper::plan`) is
//! never revoked. The URLs hold the webhook secret: mode 0600 like every
//! state file, and never logged whole.

use super::per_user::{PerUser, UserFile};
use crate::error::{Fix, Result};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallbackUrls {
    /// Oldest first, each once.
    pub urls: Vec<String>,
}

impl UserFile for CallbackUrls {
    const IF_DAMAGED: Fix = Fix::CallbackUrls;
}

/// The `callbacks/` files, with read-modify-write kept whole between the
/// threads of one process (the OAuth callback and the subscription check).
pub struct CallbackUrlFiles {
    files: PerUser<CallbackUrls>,
    writing: Mutex<()>,
}

impl CallbackUrlFiles {
    pub(super) fn new(files: PerUser<CallbackUrls>) -> CallbackUrlFiles {
        CallbackUrlFiles {
            files,
            writing: Mutex::new(()),
        }
    }

    /// The URLs recorded for the user; none when there is no file.
    pub fn load(&self, userid: &str) -> Result<Vec<String>> {
        Ok(self.files.load(userid)?.unwrap_or_default().urls)
    }

    /// Records `url`, before it is subscribed: a URL recorded but never
    /// subscribed costs nothing, one subscribed but not recorded could
    /// never be revoked.
    pub fn remember(&self, userid: &str, url: &str) -> Result<()> {
        self.update(userid, |urls| {
            if !urls.iter().any(|u| u == url) {
                urls.push(url.to_string());
            }
        })
    }

    /// Drops URLs Withings no longer lists.
    pub fn forget(&self, userid: &str, gone: &[String]) -> Result<()> {
        self.update(userid, |urls| urls.retain(|u| !gone.contains(u)))
    }

    fn update(&self, userid: &str, change: impl FnOnce(&mut Vec<String>)) -> Result<()> {
        let _whole = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut record = self.files.load(userid)?.unwrap_or_default();
        let before = record.clone();
        change(&mut record.urls);
        if record == before {
            return Ok(());
        }
        self.files.save(userid, &record)
    }

    /// Deletes the user's record; Ok(false) if there was none.
    pub fn remove(&self, userid: &str) -> Result<bool> {
        let _whole = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        self.files.remove(userid)
    }

    pub fn exists(&self, userid: &str) -> bool {
        self.files.exists(userid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    #[test]
    fn urls_are_remembered_once_in_order_and_forgotten() {
        let dir = TestDir::new("callback-urls");
        let files = CallbackUrlFiles::new(PerUser::new(dir.path().to_path_buf()));
        assert!(files.load("42").unwrap().is_empty());
        files.remember("42", "https://a/notify/1").unwrap();
        files.remember("42", "https://a/notify/2").unwrap();
        files.remember("42", "https://a/notify/1").unwrap();
        assert_eq!(
            files.load("42").unwrap(),
            ["https://a/notify/1", "https://a/notify/2"]
        );
        files.forget("42", &["https://a/notify/1".into()]).unwrap();
        assert_eq!(files.load("42").unwrap(), ["https://a/notify/2"]);
        assert!(files.remove("42").unwrap());
        assert!(!files.exists("42"));
    }
}
