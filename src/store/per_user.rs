//! One JSON file per Withings user in a directory: `<dir>/<userid>.json`.
//! Tokens (`users/`) and sync positions (`sync/`) are both kept this way.

use super::atomic;
use crate::error::{Error, Fix, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

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

/// What a per-user file holds.
pub trait UserFile: Serialize + DeserializeOwned {
    /// What the user should do when such a file is damaged.
    const IF_DAMAGED: Fix;

    /// The user the value names itself, if it does: a file whose content
    /// names another user than its file name is damaged, not to be trusted.
    fn owner(&self) -> Option<&str> {
        None
    }
}

pub struct PerUser<T> {
    dir: PathBuf,
    holds: PhantomData<fn() -> T>,
}

impl<T: UserFile> PerUser<T> {
    pub(super) fn new(dir: PathBuf) -> PerUser<T> {
        PerUser {
            dir,
            holds: PhantomData,
        }
    }

    fn path(&self, userid: &str) -> Result<PathBuf> {
        Ok(self.dir.join(format!("{}.json", checked_userid(userid)?)))
    }

    pub fn load(&self, userid: &str) -> Result<Option<T>> {
        let path = self.path(userid)?;
        let value: Option<T> = atomic::read_json(&path, T::IF_DAMAGED)?;
        match value.as_ref().and_then(UserFile::owner) {
            Some(owner) if owner != userid => Err(Error::corrupt(
                path,
                format!("it holds user {owner}"),
                T::IF_DAMAGED,
            )),
            _ => Ok(value),
        }
    }

    pub fn save(&self, userid: &str, value: &T) -> Result<()> {
        if value.owner().is_some_and(|owner| owner != userid) {
            return Err(Error::Internal(
                "a user's record was about to be saved under another user's id",
            ));
        }
        atomic::write_json(&self.path(userid)?, value)
    }

    /// Deletes the user's file; Ok(false) if there was none.
    pub fn remove(&self, userid: &str) -> Result<bool> {
        atomic::remove(&self.path(userid)?)
    }

    pub fn exists(&self, userid: &str) -> bool {
        self.path(userid).is_ok_and(|p| p.exists())
    }

    /// Every user with a file here, sorted.
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
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Named {
        userid: String,
        n: i64,
    }

    impl UserFile for Named {
        const IF_DAMAGED: Fix = Fix::Relink;

        fn owner(&self) -> Option<&str> {
            Some(&self.userid)
        }
    }

    fn named(id: &str, n: i64) -> Named {
        Named {
            userid: id.into(),
            n,
        }
    }

    #[test]
    fn save_load_and_list() {
        let dir = TestDir::new("per-user");
        let files = PerUser::<Named>::new(dir.path().to_path_buf());
        files.save("42", &named("42", 1)).unwrap();
        files.save("7", &named("7", 2)).unwrap();
        assert_eq!(files.list().unwrap(), vec!["42", "7"]);
        assert_eq!(files.load("42").unwrap(), Some(named("42", 1)));
        assert!(files.load("8").unwrap().is_none());
        assert!(files.exists("7"));
        assert!(!files.exists("8"));
    }

    #[test]
    fn a_file_naming_another_user_is_damaged() {
        let dir = TestDir::new("per-user-owner");
        let files = PerUser::<Named>::new(dir.path().to_path_buf());
        assert!(files.save("42", &named("43", 1)).is_err());
        std::fs::write(dir.path().join("42.json"), r#"{"userid":"43","n":1}"#).unwrap();
        assert!(matches!(
            files.load("42"),
            Err(Error::Corrupt {
                fix: Fix::Relink,
                ..
            })
        ));
    }

    #[test]
    fn user_ids_that_are_not_digits_never_become_paths() {
        let dir = TestDir::new("per-user-bad");
        let files = PerUser::<Named>::new(dir.path().to_path_buf());
        for bad in ["../x", "", "12/3", "1\0", "123456789012345678901", "-1"] {
            assert!(!is_valid_userid(bad));
            assert!(files.load(bad).is_err());
            assert!(files.save(bad, &named(bad, 1)).is_err());
            assert!(!files.exists(bad));
        }
    }
}
