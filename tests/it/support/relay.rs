//! Runs the real `withings-relay` binary on loopback against the fake.
//! `RELAY_BIN` overrides the binary and `RELAY_RUNNER` names an emulator
//! to run it under (e.g. `qemu-mipsel-static`), for cross-built smoke tests.

use crate::fake_withings::{FakeWithings, CLIENT_ID, CLIENT_SECRET};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for something the relay should do in well under
/// a second; generous because CI may run under emulation.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn bin() -> PathBuf {
    std::env::var_os("RELAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_withings-relay")))
}

/// A command that runs the relay binary (under the emulator, if any), with
/// the fake's credentials in the environment, never in argv.
pub fn command() -> Command {
    command_under(&[])
}

/// Like [`command`], with `wrapper` (a program and its arguments) in front,
/// e.g. to run the relay in a namespace of its own.
pub fn command_under(wrapper: &[String]) -> Command {
    let runner = std::env::var("RELAY_RUNNER").unwrap_or_default();
    let bin = bin().display().to_string();
    let mut argv = wrapper
        .iter()
        .map(String::as_str)
        .chain(runner.split_whitespace())
        .chain([bin.as_str()]);
    let mut cmd = Command::new(argv.next().unwrap());
    cmd.args(argv);
    cmd.env("WITHINGS_CLIENT_ID", CLIENT_ID)
        .env("WITHINGS_CLIENT_SECRET", CLIENT_SECRET)
        .env_remove("RUST_LOG");
    cmd
}

/// A fresh directory for one test, removed when it passes.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "withings-relay-it-{name}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it returns Some or PATIENCE runs out.
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One raw HTTP/1.1 request; returns (status, body). Raw, so tests can send
/// what a well-behaved client library would refuse to.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer 413 and close before reading all of it.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to {method} {path}: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A running relay and everything it writes.
pub struct Relay {
    child: Option<Child>,
    pub port: u16,
    pub state_dir: PathBuf,
    pub output: PathBuf,
    pub log: PathBuf,
    pub api_url: String,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    wrapper: Vec<String>,
    /// False: commands run without `--public-url` (poll-only `serve`).
    with_public_url: bool,
}

impl Relay {
    /// Starts `serve` with its state, output and log under `dir`.
    pub fn start(fake: &FakeWithings, dir: &Path, extra: &[&str]) -> Relay {
        let mut relay = Relay::configure(fake, dir, extra);
        relay.restart();
        relay
    }

    /// Like [`Relay::start`], but leaves it stopped so a test can change
    /// where it writes first.
    pub fn configure(fake: &FakeWithings, dir: &Path, extra: &[&str]) -> Relay {
        Relay {
            child: None,
            port: free_port(),
            state_dir: dir.join("state"),
            output: dir.join("out.jsonl"),
            log: dir.join("relay.log"),
            api_url: fake.url(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            wrapper: Vec::new(),
            with_public_url: true,
        }
    }

    /// Leaves `--public-url` out of every later command: `serve` then runs
    /// in poll-only mode.
    pub fn without_public_url(&mut self) {
        self.with_public_url = false;
    }

    /// Sets an environment variable for every later start of `serve`.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Runs every later start of `serve` under `wrapper` (see [`command_under`]).
    pub fn set_wrapper(&mut self, wrapper: &[&str]) {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
    }

    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Options every command of this relay shares.
    pub fn shared_args(&self) -> Vec<String> {
        let level = if self.extra.iter().any(|a| a == "--log-level") {
            vec![]
        } else {
            vec!["--log-level".into(), "debug".into()]
        };
        let mut args: Vec<String> =
            vec!["--state-dir".into(), self.state_dir.display().to_string()];
        if self.with_public_url {
            args.extend(["--public-url".into(), self.public_url()]);
        }
        args.extend([
            "--api-url".into(),
            self.api_url.clone(),
            "--account-url".into(),
            self.api_url.clone(),
        ]);
        args.extend(level);
        args
    }

    /// (Re)starts `serve` after a kill, appending to the same log.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = command_under(&self.wrapper)
            .args(self.shared_args())
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--output", &self.output.display().to_string()])
            .args(&self.extra)
            .args(self.quick_sync_gap())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start withings-relay");
        self.child = Some(child);
        let port = self.port;
        wait_for("the relay to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// `--sync-gap 100ms` unless the test gives its own: the real 5 s
    /// between a user's notification syncs (tested in api_budget.rs)
    /// would make every test that notifies twice wait for it.
    fn quick_sync_gap(&self) -> &'static [&'static str] {
        match self.extra.iter().any(|a| a == "--sync-gap") {
            true => &[],
            false => &["--sync-gap", "100ms"],
        }
    }

    /// The process id of the running `serve`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How the relay ended, if it has (None while it runs).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL: no chance to clean up, as in a power cut.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs another command (authorize, fetch) against the same state.
    pub fn run(&self, args: &[&str]) -> Output {
        command()
            .args(self.shared_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run withings-relay")
    }

    pub fn webhook_secret(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("webhook-secret"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn notify_path(&self) -> String {
        format!("/notify/{}", self.webhook_secret())
    }

    pub fn notify_url(&self) -> String {
        format!("{}{}", self.public_url(), self.notify_path())
    }

    /// Links Withings user `userid` the way a person would: run
    /// `authorize`, open the link, follow the redirect back to the relay.
    /// Returns the page the relay showed.
    pub fn link(&self, fake: &FakeWithings, userid: u64) -> (u16, String) {
        fake.login_as(userid);
        let out = self.run(&["authorize"]);
        assert!(
            out.status.success(),
            "authorize failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let url = stdout.trim();
        assert_eq!(
            stdout.lines().count(),
            1,
            "the URL is alone on stdout: {stdout:?}"
        );
        let (status, location) = fake.browser_get(url);
        assert_eq!(status, 302, "authorize2 should redirect");
        let location = location.unwrap();
        let path = location
            .strip_prefix(&self.public_url())
            .expect("redirect back to the relay");
        http(self.port, "GET", path, &[], b"")
    }

    /// Posts a notification as Withings would; returns the HTTP status.
    pub fn notify(&self, form: &str) -> u16 {
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        http(
            self.port,
            "POST",
            &self.notify_path(),
            &headers,
            form.as_bytes(),
        )
        .0
    }

    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    pub fn records(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// The grpid of each record written, in order.
    pub fn grpids(&self) -> Vec<i64> {
        self.records()
            .iter()
            .map(|r| r["grpid"].as_i64().unwrap())
            .collect()
    }

    /// Waits until the output holds at least `n` lines, and returns them.
    pub fn wait_lines(&self, n: usize) -> Vec<String> {
        wait_for(&format!("{n} output line(s)"), || {
            let lines = self.lines();
            (lines.len() >= n).then_some(lines)
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str) {
        wait_for(&format!("{needle:?} in the log"), || {
            self.log_text().contains(needle).then_some(())
        })
    }

    /// Files in a state subdirectory, not counting unfinished temp files.
    fn count_files(&self, sub: &str) -> usize {
        std::fs::read_dir(self.state_dir.join(sub))
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Acknowledged notifications not yet synced.
    pub fn queued(&self) -> usize {
        self.count_files("queue")
    }

    /// Measurement groups some sink has yet to deliver.
    pub fn outbox_records(&self) -> usize {
        self.count_files("outbox/records")
    }

    pub fn user_file(&self, userid: u64) -> Value {
        let text =
            std::fs::read_to_string(self.state_dir.join(format!("users/{userid}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A relay with `userid` linked and subscribed through the real flow.
pub fn start_linked(fake: &FakeWithings, dir: &TestDir, userid: u64, extra: &[&str]) -> Relay {
    fake.add_user(userid);
    let relay = Relay::start(fake, dir.path(), extra);
    let (status, page) = relay.link(fake, userid);
    assert_eq!(status, 200, "{page}");
    relay
}

/// The form Withings posts for new weight data of `userid` (§3.3).
pub fn notification_form(fake: &FakeWithings, userid: u64) -> String {
    let now = fake.now() as i64;
    format!(
        "userid={userid}&appli=1&startdate={}&enddate={now}",
        now - 60
    )
}
