//! Linked Withings accounts: one file per user with its tokens, in
//! `users/<userid>.json`.

use super::atomic;
use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    pub userid: String,
    pub access_token: Secret,
    /// Unix seconds after which the access token must not be used.
    pub access_expires_at: i64,
    pub refresh_token: Secret,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub linked_at: i64,
    /// Set when Withings rejected the refresh token: the worker stops calling
    /// Withings for this user until it is linked again.
    #[serde(default)]
    pub needs_reauth: bool,
}

/// Withings user ids are numbers (facts sheet §5). Checking for plain
/// digits before a user id becomes part of a path shuts out traversal.
pub fn is_valid_userid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The user id itself, if it may become part of a file name; otherwise the
/// error every store gives for a user it cannot know.
pub fn checked_userid(userid: &str) -> Result<&str> {
    if is_valid_userid(userid) {
        Ok(userid)
    } else {
        Err(Error::UnknownUser(userid.escape_debug().to_string()))
    }
}

pub struct Users {
    dir: PathBuf,
}

impl Users {
    pub(super) fn new(dir: PathBuf) -> Users {
        Users { dir }
    }

    fn path(&self, userid: &str) -> Result<PathBuf> {
        Ok(self.dir.join(format!("{}.json", checked_userid(userid)?)))
    }

    pub fn load(&self, userid: &str) -> Result<Option<UserRecord>> {
        let path = self.path(userid)?;
        let record: Option<UserRecord> = atomic::read_json(&path)?;
        match record {
            Some(r) if r.userid != userid => Err(Error::Corrupt {
                path,
                detail: format!("it holds user {}", r.userid),
            }),
            other => Ok(other),
        }
    }

    pub fn is_linked(&self, userid: &str) -> bool {
        self.path(userid).is_ok_and(|p| p.exists())
    }

    pub fn save(&self, record: &UserRecord) -> Result<()> {
        atomic::write_json(&self.path(&record.userid)?, record)
    }

    /// Every linked user id, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        list_ids(&self.dir, ".json")
    }
}

/// The user ids named by `<userid><suffix>` files in `dir`.
pub(super) fn list_ids(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(suffix)?;
            is_valid_userid(id).then(|| id.to_string())
        })
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    fn record(id: &str) -> UserRecord {
        UserRecord {
            userid: id.into(),
            access_token: Secret::new("a"),
            access_expires_at: 10,
            refresh_token: Secret::new("r"),
            scope: "user.metrics".into(),
            linked_at: 1,
            needs_reauth: false,
        }
    }

    #[test]
    fn save_load_and_list() {
        let dir = TestDir::new("users");
        let users = Users::new(dir.path().to_path_buf());
        users.save(&record("42")).unwrap();
        users.save(&record("7")).unwrap();
        assert_eq!(users.list().unwrap(), vec!["42", "7"]);
        assert_eq!(
            users.load("42").unwrap().unwrap().refresh_token.expose(),
            "r"
        );
        assert!(users.load("8").unwrap().is_none());
        assert!(users.is_linked("7"));
    }

    #[test]
    fn user_ids_that_are_not_digits_never_become_paths() {
        let dir = TestDir::new("users-bad");
        let users = Users::new(dir.path().to_path_buf());
        for bad in ["../x", "", "12/3", "1\0", "123456789012345678901", "-1"] {
            assert!(!is_valid_userid(bad));
            assert!(users.load(bad).is_err());
            assert!(users.save(&record(bad)).is_err());
            assert!(!users.is_linked(bad));
        }
    }
}
