//! What the state dir says, read without writing or locking anything, so
//! `status` (and the MQTT diagnostics, inside `serve`) can read it at any
//! moment: every file is replaced by an atomic rename, so a read sees the
//! old or the new file, and one that vanishes between listing and reading
//! is simply gone. A file that cannot be read is recorded in
//! [`Facts::unreadable`], never a reason to stop.

use crate::error::{Error, Result};
use crate::store::{arrival_secs, Health, ServeInfo, StateDir};
use std::time::UNIX_EPOCH;

/// What `users/<id>.json` says, without its tokens: status never holds one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub linked_at: i64,
    pub access_expires_at: i64,
    pub needs_reauth: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFacts {
    pub userid: String,
    /// None when the tokens are gone (unlinked) or unreadable.
    pub account: Option<Account>,
    pub health: Health,
    /// The sync cursor (`sync/<id>.json`): Withings' `modified` of the
    /// newest group synced, unix seconds.
    pub cursor: Option<i64>,
}

/// One output's outbox backlog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputFacts {
    pub name: String,
    pub waiting: usize,
    /// When the oldest undelivered record was written, unix seconds.
    pub oldest_at: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub serve: Option<ServeInfo>,
    /// Users with tokens, and users Withings unlinked (health says so).
    pub users: Vec<UserFacts>,
    /// Arrival times of the queued notifications, by user id, sorted.
    pub queue: Vec<(String, Vec<i64>)>,
    pub outputs: Vec<OutputFacts>,
    /// Files that could not be read, as the error says it (path and fix).
    pub unreadable: Vec<String>,
}

/// A directory that does not exist (yet) holds nothing.
fn or_empty<T: Default>(result: Result<T>) -> Result<T> {
    match result {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(T::default())
        }
        other => other,
    }
}

/// Ok(value), or the default with the error noted in `unreadable`.
fn noted<T: Default>(result: Result<T>, unreadable: &mut Vec<String>) -> T {
    or_empty(result).unwrap_or_else(|e| {
        unreadable.push(e.to_string());
        T::default()
    })
}

fn user_facts(store: &StateDir, userid: &str, unreadable: &mut Vec<String>) -> UserFacts {
    let account = noted(store.users.load(userid), unreadable).map(|r| Account {
        linked_at: r.linked_at,
        access_expires_at: r.access_expires_at,
        needs_reauth: r.needs_reauth,
    });
    UserFacts {
        userid: userid.to_string(),
        account,
        health: noted(store.health.read(userid), unreadable).unwrap_or_default(),
        cursor: noted(store.sync.load(userid), unreadable).map(|s| s.cursor),
    }
}

/// When the file at `path` was last written, unix seconds; None if it is gone.
fn written_at(path: &std::path::Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let secs = modified.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

fn output_facts(store: &StateDir, name: &str, unreadable: &mut Vec<String>) -> OutputFacts {
    let waiting = noted(store.outbox_undelivered(name), unreadable);
    OutputFacts {
        name: name.to_string(),
        waiting: waiting.len(),
        // The first that is still there: a courier may deliver meanwhile.
        oldest_at: waiting.iter().find_map(|(_, path)| written_at(path)),
    }
}

/// Reads everything `status` shows from the state dir.
pub fn collect(store: &StateDir) -> Facts {
    let mut unreadable = Vec::new();
    let serve = noted(store.serve_info(), &mut unreadable);
    let mut ids = noted(store.users.list(), &mut unreadable);
    for id in noted(store.health.list(), &mut unreadable) {
        // Only the unlinked: other health files without tokens belong to
        // users removed on purpose (`unlink`).
        let unlinked = store.health.load(&id).unlinked.is_some();
        if unlinked && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.sort();
    let users = ids
        .iter()
        .map(|id| user_facts(store, id, &mut unreadable))
        .collect();
    let queue = noted(store.queue.pending(), &mut unreadable)
        .into_iter()
        .map(|(id, paths)| (id, paths.iter().filter_map(|p| arrival_secs(p)).collect()))
        .collect();
    // The outputs `serve` runs with, as serve.json names them: a cursor
    // left by an output no longer configured would show a backlog that is
    // not its own. Without serve.json (or when it names an output without
    // a cursor), every output that has a cursor.
    let cursors = noted(store.outbox_sinks(), &mut unreadable);
    let names = match &serve {
        Some(s) if !s.outputs.is_empty() && s.outputs.iter().all(|o| cursors.contains(o)) => {
            s.outputs.clone()
        }
        _ => cursors,
    };
    let outputs = names
        .iter()
        .map(|name| output_facts(store, name, &mut unreadable))
        .collect();
    Facts {
        serve,
        users,
        queue,
        outputs,
        unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;
    use crate::store::{Notification, Unlinked};

    #[test]
    fn reads_users_queue_outbox_and_damage_without_writing() {
        let dir = TestDir::new("status-facts");
        let store = StateDir::open(dir.path()).unwrap();
        std::fs::write(
            dir.path().join("users/42.json"),
            r#"{"userid":"42","access_token":"a-secret","access_expires_at":200,"refresh_token":"r-secret","linked_at":100,"needs_reauth":true}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("users/43.json"), b"{torn").unwrap();
        store
            .health
            .update("44", |h| {
                h.unlinked = Some(Unlinked {
                    at: 5,
                    action: "delete".into(),
                })
            })
            .unwrap();
        store
            .health
            .update("45", |h| h.last_sync_ok_at = Some(1))
            .unwrap();
        store.queue.push(&Notification::for_tests("42")).unwrap();
        let outbox = store.outbox(&["mqtt"]).unwrap();
        outbox.append("{}").unwrap();
        let before: Vec<_> = walk(dir.path());

        let facts = collect(&StateDir::open_existing(dir.path()).unwrap());
        let ids: Vec<&str> = facts.users.iter().map(|u| u.userid.as_str()).collect();
        assert_eq!(ids, ["42", "43", "44"], "45 was removed on purpose");
        assert_eq!(
            facts.users[0].account,
            Some(Account {
                linked_at: 100,
                access_expires_at: 200,
                needs_reauth: true
            })
        );
        assert_eq!(facts.users[1].account, None);
        assert!(facts.users[2].health.unlinked.is_some());
        assert_eq!(facts.queue.len(), 1);
        assert_eq!(
            (facts.queue[0].0.as_str(), facts.queue[0].1.len()),
            ("42", 1)
        );
        assert_eq!(facts.outputs.len(), 1);
        assert_eq!(facts.outputs[0].waiting, 1);
        assert!(facts.outputs[0].oldest_at.is_some());
        assert_eq!(facts.unreadable.len(), 1, "{:?}", facts.unreadable);
        assert!(facts.unreadable[0].contains("43.json"));
        assert!(!format!("{facts:?}").contains("secret"), "no token held");
        assert_eq!(walk(dir.path()), before, "nothing written");
    }

    fn walk(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push((e.path(), meta.modified().ok()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_outputs_are_those_serve_runs_unless_it_names_one_without_a_cursor() {
        let dir = TestDir::new("status-facts-outputs");
        let store = StateDir::open(dir.path()).unwrap();
        store.outbox(&["mqtt", "exec"]).unwrap();
        let names = |store: &StateDir| -> Vec<String> {
            collect(store).outputs.into_iter().map(|o| o.name).collect()
        };
        assert_eq!(
            names(&store),
            ["exec", "mqtt"],
            "no serve.json: every cursor"
        );
        let mut info = ServeInfo {
            outputs: vec!["mqtt".into()],
            ..ServeInfo::default()
        };
        store.save_serve_info(&info).unwrap();
        assert_eq!(names(&store), ["mqtt"], "exec is no longer configured");
        info.outputs = vec!["jsonl".into()];
        store.save_serve_info(&info).unwrap();
        assert_eq!(names(&store), ["exec", "mqtt"]);
    }

    #[test]
    fn a_bare_directory_reads_as_nothing() {
        let dir = TestDir::new("status-facts-bare");
        let facts = collect(&StateDir::open_existing(dir.path()).unwrap());
        assert_eq!(facts, Facts::default());
    }
}
