//! Measure groups Withings sent that the relay could not read: each is kept
//! with its JSON verbatim and the reason, so nothing is dropped silently and
//! the group can be reported or replayed by hand.

use super::atomic;
use super::per_user::checked_userid;
use crate::error::Result;
use crate::withings::measure::Rejected;
use serde::Serialize;
use serde_json::value::RawValue;
use std::path::PathBuf;

pub struct Rejects {
    dir: PathBuf,
}

/// What a file in `rejected/` holds.
#[derive(Serialize)]
struct RejectFile<'a> {
    userid: &'a str,
    grpid: Option<i64>,
    modified: Option<i64>,
    reason: &'a str,
    rejected_at: i64,
    /// The group as Withings sent it, byte for byte.
    group: &'a RawValue,
}

/// FNV-1a, 32 bits: names a group that has no readable grpid by its
/// bytes, so the same group read again lands in the same file.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Pure: the file name of one rejected group version:
/// `<userid>-<grpid>-<modified>.json`, or with `nogrpid` / `nomodified` and
/// a hash of its bytes when those cannot be read. Only a checked userid and
/// formatted integers go in, so no name can leave the directory.
pub fn file_name(userid: &str, r: &Rejected) -> Result<String> {
    let userid = checked_userid(userid)?;
    let modified = r
        .modified
        .map_or("nomodified".to_string(), |m| m.to_string());
    Ok(match r.grpid {
        Some(grpid) => format!("{userid}-{grpid}-{modified}.json"),
        None => format!(
            "{userid}-nogrpid-{modified}-{:08x}.json",
            fnv1a32(r.raw.get().as_bytes())
        ),
    })
}

impl Rejects {
    pub(super) fn new(dir: PathBuf) -> Rejects {
        Rejects { dir }
    }

    /// Writes the rejected group (atomically, mode 0600) and returns where.
    /// The same group version rejected again replaces its own file.
    pub fn save(&self, userid: &str, r: &Rejected, now: i64) -> Result<PathBuf> {
        let path = self.dir.join(file_name(userid, r)?);
        let file = RejectFile {
            userid,
            grpid: r.grpid,
            modified: r.modified,
            reason: &r.reason,
            rejected_at: now,
            group: &r.raw,
        };
        atomic::write_json(&path, &file)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;
    use std::os::unix::fs::PermissionsExt;

    fn rejected(grpid: Option<i64>, modified: Option<i64>, raw: &str) -> Rejected {
        Rejected {
            grpid,
            modified,
            reason: "measures[0].value: not a number".into(),
            raw: RawValue::from_string(raw.into()).unwrap(),
        }
    }

    #[test]
    fn names_hold_only_the_userid_and_integers() {
        let r = rejected(Some(5_109_691_089), Some(1_703_530_448), "{}");
        assert_eq!(
            file_name("42", &r).unwrap(),
            "42-5109691089-1703530448.json"
        );
        let r = rejected(None, None, r#"{"grpid":"../../x"}"#);
        let name = file_name("42", &r).unwrap();
        assert!(name.starts_with("42-nogrpid-nomodified-"), "{name}");
        assert!(!name.contains('/') && !name.contains(".."), "{name}");
        assert!(file_name("../42", &r).is_err());
    }

    #[test]
    fn groups_without_grpid_are_told_apart_by_their_bytes() {
        let a = file_name("1", &rejected(None, Some(5), r#"{"a":1}"#)).unwrap();
        let b = file_name("1", &rejected(None, Some(5), r#"{"a":2}"#)).unwrap();
        let a_again = file_name("1", &rejected(None, Some(5), r#"{"a":1}"#)).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, a_again);
    }

    #[test]
    fn the_file_keeps_the_raw_group_and_the_reason_privately() {
        let dir = TestDir::new("rejects");
        let rejects = Rejects::new(dir.path().to_path_buf());
        let raw = r#"{"grpid": 7, "measures": [{"value": "abc"}],  "x": 1.50}"#;
        let path = rejects
            .save("42", &rejected(Some(7), Some(20), raw), 1000)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(raw), "verbatim: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["userid"], "42");
        assert_eq!(v["grpid"], 7);
        assert_eq!(v["reason"], "measures[0].value: not a number");
        assert_eq!(v["rejected_at"], 1000);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
